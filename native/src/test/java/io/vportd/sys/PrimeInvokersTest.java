package io.vportd.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link Io#primeInvokers}: in a fresh JVM, the 128th call of a method handle makes the JDK
 * generate a class (its customized invoker); after priming, a burst of recvmsg calls loads none.
 * Each case runs in a JVM of its own, since this test's JVM has long crossed the threshold.
 */
@Timeout(120)
class PrimeInvokersTest {

    @Test
    void withoutPrimingTheHundredAndTwentyEighthCallGeneratesAClass() throws Exception {
        assertTrue(classesLoadedByCalls(false) > 0, "the JDK generated no class at the threshold: the priming has nothing to do");
    }

    @Test
    void afterPrimingTheCallsGenerateNoClass() throws Exception {
        assertEquals(0, classesLoadedByCalls(true), "classes loaded by 200 recvmsg calls after priming");
    }

    private static long classesLoadedByCalls(boolean prime) throws Exception {
        return FreshJvm.lastNumber(Probe.class, "loaded", Boolean.toString(prime));
    }

    /** Runs in the fresh JVM: optionally primes, then counts classes loaded by 200 recvmsg calls. */
    public static final class Probe {
        public static void main(String[] args) throws Exception {
            Fd[] pair = UnixSockets.pair();
            try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
                java.lang.foreign.MemorySegment buf = a.allocate(16);
                int[] fds = new int[4];
                Io.setNonBlocking(pair[0].fd(), true);
                UnixSockets.recvWithFds(pair[0].fd(), buf, 16, fds); // links recvmsg (nothing to read: EAGAIN)
                if (Boolean.parseBoolean(args[0])) {
                    Io.primeInvokers();
                }
                java.lang.management.ClassLoadingMXBean classes = java.lang.management.ManagementFactory.getClassLoadingMXBean();
                classes.getTotalLoadedClassCount();
                long before = classes.getTotalLoadedClassCount();
                for (int i = 0; i < 200; i++) {
                    UnixSockets.recvWithFds(pair[0].fd(), buf, 16, fds);
                }
                System.out.println("loaded " + (classes.getTotalLoadedClassCount() - before));
            } finally {
                pair[0].closeQuietly();
                pair[1].closeQuietly();
            }
        }
    }
}
