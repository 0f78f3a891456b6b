package io.vportd.sys;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ListenFds} on descriptors laid out the way systemd passes them: consecutive, without
 * close-on-exec, from a first number (3 under systemd; a free high number here, since the JVM
 * owns 3 and up).
 */
class ListenFdsTest {

    private static final int F_DUPFD = 0;
    private static final long PID = ProcessHandle.current().pid();

    private long fdsBefore;

    @BeforeEach
    void countFds() {
        fdsBefore = FdCount.now();
    }

    @AfterEach
    void noLeak() {
        assertEquals(fdsBefore, FdCount.now(), "open descriptors before and after the test");
    }

    /** Copies of {@code sources} at consecutive numbers from a free base, without FD_CLOEXEC (as exec leaves them). */
    private static int passed(int... sources) throws NativeException {
        int base = 3000;
        while (true) {
            boolean free = true;
            for (int i = 0; i < sources.length; i++) {
                if (isOpen(base + i)) {
                    free = false;
                }
            }
            if (free) {
                break;
            }
            base += 100;
        }
        for (int i = 0; i < sources.length; i++) {
            int src = sources[i];
            int want = base + i;
            long got = Libc.check("fcntl(F_DUPFD)", cap -> (int) Io.Fcntl.H.invokeExact(cap, src, F_DUPFD, want));
            assertEquals(want, got, "consecutive descriptors");
            assertFalse(Io.isCloseOnExec(want));
        }
        return base;
    }

    private static boolean isOpen(int fd) {
        return Libc.once(cap -> (int) Io.Fcntl.H.invokeExact(cap, fd, 1 /* F_GETFD */, 0)) >= 0;
    }

    private static Map<String, String> env(long pid, String fds, String names) {
        Map<String, String> env = new HashMap<>();
        env.put(ListenFds.ENV_PID, Long.toString(pid));
        env.put(ListenFds.ENV_FDS, fds);
        if (names != null) {
            env.put(ListenFds.ENV_FDNAMES, names);
        }
        return env;
    }

    @Test
    void groupsByNameInOrderAndSetsCloseOnExec() throws Exception {
        Fd[] pair = UnixSockets.pair();
        try (Fd state = MemFd.create("state"); Fd a = pair[0]; Fd b = pair[1]) {
            int base = passed(state.fd(), a.fd(), b.fd());
            try (ListenFds passed = ListenFds.parse(PID, env(PID, "3", "vportd.state:conn:conn"), base)) {
                assertEquals(List.of("vportd.state", "conn"), List.copyOf(passed.names()));
                assertEquals(3, passed.count());
                for (int i = 0; i < 3; i++) {
                    assertTrue(Io.isCloseOnExec(base + i), "fd " + (base + i) + " close-on-exec");
                }
                List<Fd> conns = passed.take("conn");
                assertEquals(2, conns.size());
                assertEquals(Io.fileId(a.fd()), Io.fileId(conns.get(0).fd()));
                assertEquals(Io.fileId(b.fd()), Io.fileId(conns.get(1).fd()));
                assertEquals(List.of(), passed.take("conn"), "taken once");
                assertEquals(1, passed.count());
                for (Fd fd : conns) {
                    fd.close();
                }
            } // close() closes the state copy nobody took
            assertFalse(isOpen(base), "untaken descriptor closed");
        }
    }

    @Test
    void withoutNamesEveryDescriptorIsUnknown() throws Exception {
        try (Fd x = MemFd.create("x"); Fd y = MemFd.create("y")) {
            int base = passed(x.fd(), y.fd());
            try (ListenFds passed = ListenFds.parse(PID, env(PID, "2", null), base)) {
                assertEquals(List.of(ListenFds.UNNAMED), List.copyOf(passed.names()));
                assertEquals(2, passed.count());
            }
        }
    }

    @Test
    void anotherProcessesVariablesAreIgnoredAndNothingIsTouched() throws Exception {
        try (Fd x = MemFd.create("x")) {
            int base = passed(x.fd());
            try (ListenFds passed = ListenFds.parse(PID, env(PID + 1, "1", "x"), base)) {
                assertTrue(passed.isEmpty());
            }
            assertFalse(Io.isCloseOnExec(base), "left as it was");
            Io.close(base);
        }
        assertTrue(ListenFds.parse(PID, Map.of(), 3).isEmpty());
        assertTrue(ListenFds.parse(PID, Map.of(ListenFds.ENV_FDS, "2"), 3).isEmpty(), "no LISTEN_PID");
        assertTrue(ListenFds.parse(PID, env(PID, "0", ""), 3).isEmpty());
    }

    @Test
    void malformedVariablesAreRefusedAndThePassedDescriptorsClosed() throws Exception {
        for (String names : new String[] {"one", "a:b:c", "a:b:c:d", "ok:bad\tname"}) {
            try (Fd x = MemFd.create("x"); Fd y = MemFd.create("y")) {
                int base = passed(x.fd(), y.fd());
                assertThrows(IllegalArgumentException.class, () -> ListenFds.parse(PID, env(PID, "2", names), base), names);
                assertFalse(isOpen(base), names);
                assertFalse(isOpen(base + 1), names);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> ListenFds.parse(PID, env(PID, "two", null), 3));
        assertThrows(IllegalArgumentException.class, () -> ListenFds.parse(PID, env(PID, "-1", null), 3));
        assertThrows(IllegalArgumentException.class, () -> ListenFds.parse(PID, env(PID, "99999999", null), 3));
        assertThrows(IllegalArgumentException.class,
                () -> ListenFds.parse(PID, Map.of(ListenFds.ENV_PID, "self", ListenFds.ENV_FDS, "1"), 3));
    }

    @Test
    void aDescriptorThatIsNotOpenIsANativeException() throws Exception {
        int base = passed(); // an empty range: base is free
        NativeException e = assertThrows(NativeException.class, () -> ListenFds.parse(PID, env(PID, "1", "x"), base));
        assertEquals(Errno.EBADF, e.errno());
    }

    @Test
    void scrubRemovesTheVariablesFromAChildEnvironment() {
        Map<String, String> child = env(PID, "2", "a:b");
        child.put("PATH", "/bin");
        ListenFds.scrub(child);
        assertEquals(Map.of("PATH", "/bin"), child);
    }
}
