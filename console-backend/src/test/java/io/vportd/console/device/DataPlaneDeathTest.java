package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;
import io.vportd.console.endpoint.Endpoint;
import io.vportd.console.endpoint.EndpointHost;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** Issue 11.3c: a data plane that dies on its own tells the daemon (which then exits non-zero); a close does not. */
class DataPlaneDeathTest {

    /** A null endpoint whose tick throws an Error (a defect no cycle handler catches) once armed. */
    private static final class Bomb extends io.vportd.console.endpoint.NullEndpoint {
        final AtomicBoolean armed = new AtomicBoolean();

        @Override
        public String describe() {
            return "bomb";
        }

        @Override
        public boolean wantsTicks() {
            return true;
        }

        @Override
        public void tick(long nanoTime) {
            if (armed.get()) {
                throw new AssertionError("simulated defect on the data-plane thread");
            }
        }
    }

    private static final PortConfig PORT = new PortConfig(1, "org.test.bomb", false, 0, 0, null, new EndpointSpec.Null());

    @Test
    void aDataPlaneThatDiesRunsTheStopAction() throws Exception {
        Bomb bomb = new Bomb();
        try (ConsoleDevice device = new ConsoleDevice(2, List.of(PORT), c -> bomb)) {
            CountDownLatch stopped = new CountDownLatch(1);
            device.dataPlane().onUnexpectedStop(stopped::countDown);
            bomb.armed.set(true);
            assertTrue(stopped.await(10, TimeUnit.SECONDS), "the stop action ran");
        }
    }

    @Test
    void closingIsNotAnUnexpectedStop() throws Exception {
        Bomb bomb = new Bomb();
        CountDownLatch stopped = new CountDownLatch(1);
        try (ConsoleDevice device = new ConsoleDevice(2, List.of(PORT), c -> bomb)) {
            device.dataPlane().onUnexpectedStop(stopped::countDown);
        }
        assertEquals(1, stopped.getCount(), "close() is an expected stop");
    }
}
