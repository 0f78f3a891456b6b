package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * systemd's service notification protocol, spoken without libsystemd: one datagram of
 * newline-separated {@code KEY=VALUE} assignments to the AF_UNIX socket named by
 * {@code $NOTIFY_SOCKET} (a path, or {@code @name} for an abstract name), with descriptors as
 * SCM_RIGHTS when the message stores them.
 *
 * <p>What vportd sends: {@code READY=1} once serving, {@code STATUS=} free text, {@code MAINPID=},
 * {@code STOPPING=1}, and the file descriptor store: {@code FDSTORE=1} + {@code FDNAME=} with the
 * descriptors attached ({@link #storeFds}) and {@code FDSTOREREMOVE=1} + {@code FDNAME=}
 * ({@link #removeFds}). Stored descriptors come back to the next process of the service through
 * {@link ListenFds}.
 *
 * <p>Every call opens its own socket, sends, and closes it (as libsystemd does): nothing stays
 * connected to a manager that may re-execute and re-create its socket, and the object is
 * immutable, so any thread may use it. These are set-up calls, not data-path calls: they allocate
 * and throw {@link NativeException} when the manager cannot be reached. The socket is blocking,
 * like libsystemd's: a send waits while PID 1's receive queue is full, so call these from a
 * control thread, never from a ring worker.
 *
 * <p>Without {@code $NOTIFY_SOCKET} (not started by systemd, or the unit is not
 * {@code Type=notify} and has no {@code NotifyAccess=}) every call does nothing and returns
 * false. The manager accepts a message only from the unit's main process unless the unit says
 * otherwise ({@code NotifyAccess=main} is the default for {@code Type=notify}): the JVM must be
 * the process systemd started, as {@code bin/vportd} arranges with {@code exec}. A store message
 * is accepted silently and its descriptors dropped when the unit has no
 * {@code FileDescriptorStoreMax=}: the sender cannot tell, so the unit file must set it.
 */
public final class SdNotify {

    /** The environment variable naming the manager's notification socket. */
    public static final String ENV_NOTIFY_SOCKET = "NOTIFY_SOCKET";

    /** Longest descriptor name systemd accepts (its FDNAME_MAX). */
    public static final int FDNAME_MAX = 255;

    private final String address;

    private SdNotify(String address) {
        this.address = address;
    }

    /** Notifications to {@code $NOTIFY_SOCKET} of this process; disabled when it is unset or empty. */
    public static SdNotify fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** Notifications to {@code env}'s {@code NOTIFY_SOCKET}; disabled when it is unset or empty. */
    public static SdNotify fromEnvironment(Map<String, String> env) {
        return forAddress(env.get(ENV_NOTIFY_SOCKET));
    }

    /** Notifications to {@code address} (a path or {@code @abstract}); null or empty: disabled. */
    public static SdNotify forAddress(String address) {
        return new SdNotify(address == null || address.isEmpty() ? null : address);
    }

    /** True when there is a manager to notify. */
    public boolean enabled() {
        return address != null;
    }

    /** {@code READY=1}: start-up finished (the manager then considers a Type=notify unit started). */
    public boolean ready() throws NativeException {
        return send("READY=1");
    }

    /** {@code READY=1} and {@code STATUS=status} in one message. */
    public boolean ready(String status) throws NativeException {
        return send("READY=1\nSTATUS=" + checkValue("status", status));
    }

    /** {@code STATUS=status}: one line shown by {@code systemctl status}. */
    public boolean status(String status) throws NativeException {
        return send("STATUS=" + checkValue("status", status));
    }

    /** {@code STOPPING=1}: the service is shutting down on purpose. */
    public boolean stopping() throws NativeException {
        return send("STOPPING=1");
    }

    /** {@code MAINPID=pid}: the process the manager should watch from now on. */
    public boolean mainPid(long pid) throws NativeException {
        if (pid <= 0) {
            throw new IllegalArgumentException("not a process id: " + pid);
        }
        return send("MAINPID=" + pid);
    }

    /**
     * {@code FDSTORE=1}, {@code FDNAME=name}: the manager keeps duplicates of {@code fds} under
     * {@code name} (one name may hold several descriptors; storing a descriptor of a file already
     * stored is ignored by the manager) and passes them to the service's next process. The
     * caller keeps its own descriptors.
     *
     * <p>With {@code poll} true the manager watches each descriptor and drops it from the store
     * on POLLHUP or POLLERR: right for a connected socket whose peer going away ends its use.
     * With {@code poll} false ({@code FDPOLL=0}) it keeps the descriptor until
     * {@link #removeFds}: right for memfds and eventfds (never hung up, nothing to watch), and
     * required for anything that reports POLLHUP while still worth keeping, such as a pty master
     * whose other side is closed for now.
     *
     * @throws IllegalArgumentException when {@code name} is not a valid descriptor name
     *         ({@link #isValidFdName}) or no descriptor is given
     */
    public boolean storeFds(String name, boolean poll, int... fds) throws NativeException {
        checkFdName(name);
        if (fds.length == 0 || fds.length > UnixSockets.MAX_RECV_FDS) {
            throw new IllegalArgumentException("FDSTORE needs 1 to " + UnixSockets.MAX_RECV_FDS + " descriptors, got " + fds.length);
        }
        return send("FDSTORE=1\nFDNAME=" + name + (poll ? "" : "\nFDPOLL=0"), fds);
    }

    /** {@code FDSTOREREMOVE=1}, {@code FDNAME=name}: the manager closes every descriptor stored under {@code name}. */
    public boolean removeFds(String name) throws NativeException {
        checkFdName(name);
        return send("FDSTOREREMOVE=1\nFDNAME=" + name);
    }

    /**
     * Sends {@code state} (newline-separated assignments) with {@code fds} attached: true when
     * sent, false when disabled.
     *
     * @throws NativeException when the manager's socket cannot be reached or refuses the message
     */
    public boolean send(String state, int... fds) throws NativeException {
        if (address == null) {
            return false;
        }
        byte[] text = state.getBytes(StandardCharsets.UTF_8);
        if (text.length == 0 || state.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("a notification is non-empty text without NUL");
        }
        try (Arena arena = Arena.ofConfined(); Fd socket = UnixSockets.connectDatagram(address)) {
            MemorySegment buf = arena.allocate(text.length);
            MemorySegment.copy(text, 0, buf, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, text.length);
            long r = UnixSockets.sendWithFds(socket.fd(), buf, text.length, fds);
            if (r < 0) {
                throw new NativeException("sendmsg(" + ENV_NOTIFY_SOCKET + "=" + address + ")", (int) -r);
            }
            if (r != text.length) { // a datagram goes whole or not at all
                throw new NativeException("sendmsg(" + ENV_NOTIFY_SOCKET + "=" + address + ") sent " + r + " of " + text.length, Errno.EMSGSIZE);
            }
            return true;
        }
    }

    /**
     * systemd's rule for descriptor names: printable ASCII (0x20..0x7e) without {@code ':'} (the
     * separator of {@code $LISTEN_FDNAMES}), at most {@link #FDNAME_MAX} characters. systemd also
     * allows the empty name; vportd does not (it would come back as an empty field, too easy to
     * confuse with a missing one).
     */
    public static boolean isValidFdName(String name) {
        if (name == null || name.isEmpty() || name.length() > FDNAME_MAX) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c < ' ' || c >= 127 || c == ':') {
                return false;
            }
        }
        return true;
    }

    /** Throws {@link IllegalArgumentException} unless {@link #isValidFdName}. */
    public static String checkFdName(String name) {
        if (!isValidFdName(name)) {
            throw new IllegalArgumentException("not a valid file descriptor name (printable ASCII without ':', 1.."
                    + FDNAME_MAX + " characters): " + name);
        }
        return name;
    }

    private static String checkValue(String what, String value) {
        if (value.indexOf('\n') >= 0 || value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(what + " must be one line: " + value);
        }
        return value;
    }

    @Override
    public String toString() {
        return address == null ? "SdNotify[disabled]" : "SdNotify[" + address + "]";
    }
}
