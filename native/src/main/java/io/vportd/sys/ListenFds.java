package io.vportd.sys;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The descriptors systemd passed to this process at start ({@code $LISTEN_PID},
 * {@code $LISTEN_FDS}, {@code $LISTEN_FDNAMES}, descriptors from 3 on): sockets of socket units
 * and, for vportd, the descriptors it put into its file descriptor store ({@link SdNotify#storeFds})
 * before it crashed or was restarted. Each one is wrapped in an owning {@link Fd} and grouped by
 * name, in the order systemd passed them; the caller {@link #take}s what it uses and
 * {@link #close()} closes the rest (the manager keeps its own copies of stored descriptors, so
 * closing ours removes nothing from the store).
 *
 * <p>The variables describe this process only when {@code $LISTEN_PID} is our pid; otherwise
 * (inherited from a parent that did not clear them) they are ignored and nothing is touched.
 * Descriptors without a name are called {@value #UNNAMED}, as libsystemd calls them.
 *
 * <p><b>Keeping the variables from children.</b> libsystemd unsets the variables after reading
 * them; Java cannot: {@code System.getenv()} is a copy taken when the JVM started and
 * {@code ProcessBuilder} builds a child's environment from that copy, so a libc
 * {@code unsetenv} would change nothing a child gets (and would race other threads reading the
 * C environment). Their effect is removed instead: (1) every passed descriptor is made
 * close-on-exec here, so none reaches a child; (2) a child has another pid, so it ignores
 * {@code $LISTEN_PID}/{@code $LISTEN_FDS} as the protocol requires; (3) {@link #scrub} removes
 * the variables from a {@code ProcessBuilder}'s environment for children that do not check the
 * pid; (4) {@link #fromEnvironment()} hands the descriptors out once per process: a second call
 * gets nothing, so no descriptor gets two owners.
 */
public final class ListenFds implements AutoCloseable {

    public static final String ENV_PID = "LISTEN_PID";
    public static final String ENV_FDS = "LISTEN_FDS";
    public static final String ENV_FDNAMES = "LISTEN_FDNAMES";

    /** The first passed descriptor (SD_LISTEN_FDS_START). */
    public static final int FIRST_FD = 3;

    /** The name of a descriptor passed without one. */
    public static final String UNNAMED = "unknown";

    /** More than any unit could pass: a larger count is a corrupt environment, not a real one. */
    static final int MAX_FDS = 65536;

    private static final AtomicBoolean TAKEN = new AtomicBoolean();

    private final LinkedHashMap<String, List<Fd>> byName;

    private ListenFds(LinkedHashMap<String, List<Fd>> byName) {
        this.byName = byName;
    }

    /**
     * Descriptors passed some other way than the environment (an in-process test playing the
     * service manager), by name; the result owns them.
     */
    public static ListenFds of(Map<String, List<Fd>> byName) {
        LinkedHashMap<String, List<Fd>> copy = new LinkedHashMap<>();
        byName.forEach((name, fds) -> copy.put(SdNotify.checkFdName(name), new ArrayList<>(fds)));
        return new ListenFds(copy);
    }

    /** No descriptors. */
    public static ListenFds none() {
        return new ListenFds(new LinkedHashMap<>());
    }

    /**
     * The descriptors passed to this process, taken once: later calls return {@link #none()}.
     *
     * @throws IllegalArgumentException when the variables are addressed to us but malformed
     *         (not numbers, more names than descriptors or fewer, an invalid name); the passed
     *         descriptors are closed first
     * @throws NativeException when a descriptor the variables announce is not open
     */
    public static ListenFds fromEnvironment() throws NativeException {
        if (!TAKEN.compareAndSet(false, true)) {
            return none();
        }
        return parse(ProcessHandle.current().pid(), System.getenv(), FIRST_FD);
    }

    /** {@link #fromEnvironment()} on an explicit environment, pid and first descriptor (tests). */
    static ListenFds parse(long ourPid, Map<String, String> env, int firstFd) throws NativeException {
        String pidText = env.get(ENV_PID);
        String fdsText = env.get(ENV_FDS);
        if (pidText == null || fdsText == null) {
            return none();
        }
        long pid = parseNumber(ENV_PID, pidText);
        if (pid != ourPid) {
            return none(); // meant for another process
        }
        long count = parseNumber(ENV_FDS, fdsText);
        if (count > MAX_FDS) {
            throw new IllegalArgumentException(ENV_FDS + "=" + fdsText + " is more than " + MAX_FDS);
        }
        int n = (int) count;
        // close-on-exec first, so that no passed descriptor can reach a child whatever follows
        for (int i = 0; i < n; i++) {
            try {
                Io.setCloseOnExec(firstFd + i, true);
            } catch (NativeException e) {
                throw new NativeException(ENV_FDS + "=" + n + " announces descriptor " + (firstFd + i)
                        + ", which is not open", e.errno());
            }
        }
        String[] names = names(env.get(ENV_FDNAMES), n);
        if (names == null) {
            closeRange(firstFd, n);
            throw new IllegalArgumentException(ENV_FDNAMES + "=" + env.get(ENV_FDNAMES) + " does not name "
                    + n + " descriptors with valid names");
        }
        LinkedHashMap<String, List<Fd>> byName = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            byName.computeIfAbsent(names[i], k -> new ArrayList<>()).add(Fd.adopt(firstFd + i));
        }
        return new ListenFds(byName);
    }

    /** The names for {@code n} descriptors, or null when {@code text} does not give exactly that many valid ones. */
    private static String[] names(String text, int n) {
        String[] names = new String[n];
        if (text == null) {
            java.util.Arrays.fill(names, UNNAMED);
            return names;
        }
        String[] parts = n == 0 ? new String[0] : text.split(":", -1);
        if (parts.length != n) {
            return null;
        }
        for (int i = 0; i < n; i++) {
            // systemd itself allows an empty name; we read it as unnamed rather than refuse it
            names[i] = parts[i].isEmpty() ? UNNAMED : parts[i];
            if (!SdNotify.isValidFdName(names[i])) {
                return null;
            }
        }
        return names;
    }

    private static long parseNumber(String var, String text) {
        try {
            long v = Long.parseLong(text);
            if (v >= 0) {
                return v;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(var + "=" + text + " is not a non-negative number");
    }

    private static void closeRange(int firstFd, int n) {
        for (int i = 0; i < n; i++) {
            Io.close(firstFd + i);
        }
    }

    /** Removes the variables from a child's environment (for example {@code ProcessBuilder.environment()}). */
    public static void scrub(Map<String, String> childEnv) {
        childEnv.remove(ENV_PID);
        childEnv.remove(ENV_FDS);
        childEnv.remove(ENV_FDNAMES);
    }

    /** The names still holding descriptors, in the order they were passed. */
    public synchronized Set<String> names() {
        return Collections.unmodifiableSet(new java.util.LinkedHashSet<>(byName.keySet()));
    }

    /** How many descriptors are still held. */
    public synchronized int count() {
        int n = 0;
        for (List<Fd> fds : byName.values()) {
            n += fds.size();
        }
        return n;
    }

    /** True when no descriptor is held. */
    public boolean isEmpty() {
        return count() == 0;
    }

    /** The descriptors passed under {@code name} (empty when none), now owned by the caller. */
    public synchronized List<Fd> take(String name) {
        List<Fd> fds = byName.remove(name);
        return fds == null ? List.of() : List.copyOf(fds);
    }

    /** Closes every descriptor nobody took. Errors are ignored: each descriptor is released by close whatever it reports. */
    @Override
    public synchronized void close() {
        for (List<Fd> fds : byName.values()) {
            for (Fd fd : fds) {
                fd.closeQuietly();
            }
        }
        byName.clear();
    }

    @Override
    public synchronized String toString() {
        StringBuilder b = new StringBuilder("ListenFds[");
        byName.forEach((name, fds) -> b.append(name).append('=').append(fds.size()).append(' '));
        return b.append(']').toString();
    }
}
