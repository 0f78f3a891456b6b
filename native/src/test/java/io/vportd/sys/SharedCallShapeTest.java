package io.vportd.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link Libc#linkInt}: once one function of the shared shape is linked, linking and calling
 * another makes the JVM generate no class, where a function with a descriptor of its own makes
 * it generate several (the 10-20 ms a start-up paid per call shape). Each case runs in a JVM of
 * its own, since this test's JVM has linked everything long ago.
 */
@Timeout(120)
class SharedCallShapeTest {

    @Test
    void aSecondFunctionOfTheSharedShapeGeneratesNoClass() throws Exception {
        assertEquals(0, classesGenerated("shared"), "classes loaded by linking and calling epoll_ctl after close");
    }

    @Test
    void aFunctionWithADescriptorOfItsOwnGeneratesClasses() throws Exception {
        assertTrue(classesGenerated("own") > 0, "the JVM generated nothing for a new call shape: the test shows nothing");
    }

    @Test
    void callsThroughTheSharedShapeWork() throws Exception {
        Fd[] pair = UnixSockets.pair();
        try {
            assertEquals(0, Sockets.shutdown(pair[0].fd(), Sockets.SHUT_WR));
            assertEquals(-Errno.EBADF, Sockets.shutdown(-1, Sockets.SHUT_WR));
            Fd ep = Epoll.create();
            try {
                assertEquals(0, Epoll.ctl(ep.fd(), Epoll.EPOLL_CTL_ADD, pair[1].fd(), Epoll.EPOLLIN, 42L));
                try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                    java.lang.foreign.MemorySegment events = Epoll.allocateEvents(a, 4);
                    assertEquals(1, Epoll.poll(ep.fd(), events, 4, 1000), "the peer's shutdown makes it readable");
                }
            } finally {
                ep.closeQuietly();
            }
        } finally {
            pair[0].closeQuietly();
            pair[1].closeQuietly();
        }
    }

    private static long classesGenerated(String mode) throws Exception {
        return FreshJvm.lastNumber(Probe.class, "generated", mode);
    }

    /**
     * Runs in the fresh JVM: links and calls close (the shared shape), loads the classes of
     * epoll_ctl's binding, then counts the classes that linking and calling epoll_ctl loads:
     * through the shared shape ("shared"), or with a descriptor of its own ("own").
     */
    public static final class Probe {
        public static void main(String[] args) throws Throwable {
            Io.close(-1);
            ClassLoader loader = Probe.class.getClassLoader();
            Class.forName("io.vportd.sys.Epoll", false, loader);
            Class.forName("io.vportd.sys.Epoll$EpollCtl", false, loader);
            MemorySegment ev = Libc.scratch().event; // the struct epoll_ctl fills: its accessors are not what is counted
            ev.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 0);
            ev.set(ValueLayout.JAVA_LONG_UNALIGNED, 4, 0L);
            java.lang.management.ClassLoadingMXBean classes = java.lang.management.ManagementFactory.getClassLoadingMXBean();
            long before = classes.getTotalLoadedClassCount();
            int r;
            if (args[0].equals("shared")) {
                r = Epoll.ctl(-1, Epoll.EPOLL_CTL_ADD, -1, Epoll.EPOLLIN, 0L);
            } else {
                java.lang.invoke.MethodHandle own = Libc.link("epoll_ctl", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                r = (int) own.invokeExact(Libc.capture(), -1, Epoll.EPOLL_CTL_ADD, -1, 0L);
            }
            long after = classes.getTotalLoadedClassCount();
            if (r >= 0) {
                throw new AssertionError("epoll_ctl(-1) returned " + r);
            }
            System.out.println("generated " + (after - before));
        }
    }
}
