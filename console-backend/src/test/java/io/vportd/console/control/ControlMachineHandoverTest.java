package io.vportd.console.control;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vportd.console.endpoint.EndpointSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A control machine restored from another's {@link ControlMachine#snapshot} behaves exactly as the
 * original from there on: for random histories cut at a random point (pending messages, ports
 * mid-removal with a re-add queued, resizes and opens in flight), both machines get the same
 * further inputs and must produce the same messages, byte for byte, and the same snapshots.
 */
class ControlMachineHandoverTest {

    static final int MAX = 6;

    private static PortConfig config(int id, int variant) {
        return switch (variant % 3) {
            case 0 -> new PortConfig(id, "p" + id + "v" + variant, false, 0, 0, null, new EndpointSpec.Null());
            case 1 -> new PortConfig(id, null, true, 80, 24, ResizeOrder.COLS_ROWS, new EndpointSpec.Null());
            default -> PortConfig.generic(id, new EndpointSpec.Null());
        };
    }

    /** One random input; the same seed gives the same input to both machines. */
    private static void step(ControlMachine m, SplittableRandom r, int[] variants) {
        int id = r.nextInt(MAX);
        byte[] b = new byte[8];
        switch (r.nextInt(9)) {
            case 0 -> {
                try {
                    m.addPort(config(id, ++variants[id]));
                } catch (IllegalArgumentException | IllegalStateException taken) {
                    // an id or name in use: both machines refuse it alike
                }
            }
            case 1 -> m.removePort(id);
            case 2 -> m.hostConnected(id);
            case 3 -> m.hostDisconnected(id);
            case 4 -> m.resize(id, 1 + r.nextInt(200), 1 + r.nextInt(60));
            case 5 -> {
                ControlMessage.encodeHeader(b, 0, id, ControlMessage.PORT_READY, 1);
                m.onGuestMessage(b, 0, 8);
            }
            case 6 -> {
                ControlMessage.encodeHeader(b, 0, id, ControlMessage.PORT_OPEN, r.nextInt(2));
                m.onGuestMessage(b, 0, 8);
            }
            case 7 -> {
                byte[] out = new byte[ControlMessage.MAX_MESSAGE_SIZE];
                m.pollOutgoing(out);
            }
            default -> {
                ControlMessage.encodeHeader(b, 0, ControlMessage.NO_ID, ControlMessage.DEVICE_READY, 1);
                m.onGuestMessage(b, 0, 8);
            }
        }
    }

    private static List<byte[]> drain(ControlMachine m) {
        List<byte[]> out = new ArrayList<>();
        byte[] buf = new byte[ControlMessage.MAX_MESSAGE_SIZE];
        int n;
        while ((n = m.pollOutgoing(buf)) > 0) {
            out.add(java.util.Arrays.copyOf(buf, n));
        }
        return out;
    }

    @Test
    void aRestoredMachineContinuesExactlyLikeTheOriginal() {
        for (long seed = 1; seed <= 300; seed++) {
            SplittableRandom r = new SplittableRandom(seed);
            ControlMachine original = new ControlMachine(MAX, ControlListener.NONE);
            original.setSizeNegotiated(true);
            int[] variants = new int[MAX];
            int cut = r.nextInt(60);
            for (int i = 0; i < cut; i++) {
                step(original, r, variants);
            }
            ControlMachine restored = new ControlMachine(MAX, ControlListener.NONE);
            restored.restore(original.snapshot());
            assertEquals(original.snapshot(), restored.snapshot(), "seed " + seed);
            long next = r.nextLong();
            SplittableRandom a = new SplittableRandom(next);
            SplittableRandom b = new SplittableRandom(next);
            int[] va = variants.clone();
            int[] vb = variants.clone();
            for (int i = 0; i < 40; i++) {
                step(original, a, va);
                step(restored, b, vb);
            }
            List<byte[]> x = drain(original);
            List<byte[]> y = drain(restored);
            assertEquals(x.size(), y.size(), "seed " + seed + ": messages after the hand-over");
            for (int i = 0; i < x.size(); i++) {
                assertArrayEquals(x.get(i), y.get(i), "seed " + seed + " message " + i);
            }
            assertEquals(original.snapshot(), restored.snapshot(), "seed " + seed);
        }
    }

    @Test
    void restoreRefusesStateThatDoesNotFit() {
        ControlMachine original = new ControlMachine(MAX, ControlListener.NONE);
        original.addPort(config(5, 0));
        MachineState s = original.snapshot();
        assertThrows(IllegalArgumentException.class, () -> new ControlMachine(4, ControlListener.NONE).restore(s),
                "a port id not below the new machine's max ports");
        ControlMachine used = new ControlMachine(MAX, ControlListener.NONE);
        used.addPort(config(1, 0));
        assertThrows(IllegalStateException.class, () -> used.restore(s), "only a fresh machine takes a hand-over");
        MachineState.PortRecord p = s.ports().get(0);
        MachineState bad = new MachineState(true, true, true, 0, List.of(new MachineState.PortRecord(p.config(), p.state(),
                false, false, 0, 0, 0x7f, false, 0, 0, false, null, false)));
        assertThrows(IllegalArgumentException.class, () -> new ControlMachine(MAX, ControlListener.NONE).restore(bad),
                "a pending set this machine never makes");
    }
}
