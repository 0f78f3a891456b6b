package io.vportd.console.endpoint;

import io.vportd.sys.Fd;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What one endpoint carries through a live hand-over: its descriptors by role ({@code listener},
 * {@code peer}, {@code master}, {@code slave}) and a few facts that are not descriptors (a pty's
 * slave path). In the handing process the numbers are the endpoint's own (still owned by it); in
 * the receiving process {@link #take} gives each descriptor to the endpoint that adopts it.
 */
public final class Handed {

    private final Map<String, Integer> fds = new LinkedHashMap<>();
    private final Map<String, String> facts = new LinkedHashMap<>();

    /** The fact that marks an endpoint a recovering process opens afresh from its spec. */
    public static final String REOPEN = "reopen";

    /** An endpoint that keeps nothing across a crash: the recovering process opens it again. */
    public static Handed reopen() {
        return new Handed().fact(REOPEN, "yes");
    }

    public boolean reopens() {
        return facts.containsKey(REOPEN);
    }

    public Handed fd(String role, int fd) {
        if (fd >= 0) {
            fds.put(role, fd);
        }
        return this;
    }

    public Handed fact(String key, String value) {
        if (value != null) {
            facts.put(key, value);
        }
        return this;
    }

    public Map<String, Integer> fds() {
        return fds;
    }

    public Map<String, String> facts() {
        return facts;
    }

    /** The descriptor received for {@code role}, owned by the caller from now on; null when none came. */
    public Fd take(String role) {
        Integer fd = fds.remove(role);
        return fd == null ? null : Fd.adopt(fd);
    }

    /** Closes descriptors nobody took (an endpoint that failed to adopt, or roles it does not know). */
    public void closeRest() {
        for (int fd : fds.values()) {
            Fd.adopt(fd).closeQuietly();
        }
        fds.clear();
    }
}
