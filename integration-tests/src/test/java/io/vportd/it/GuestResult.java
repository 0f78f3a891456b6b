package io.vportd.it;

import java.util.List;
import java.util.Optional;

/**
 * How a guest run ended: the scenario's exit status as the guest reported it (or the rig's
 * code: 124 timeout, 125 kernel panic, 126 no report) and the whole console output.
 */
public record GuestResult(int status, String output) {

    public List<String> lines() {
        return output.lines().toList();
    }

    /** Values of every {@code VPORTD-MARK <key> [value]} line, in order. */
    public List<String> marks(String key) {
        return lines().stream().map(l -> Guest.markValue(l, key)).flatMap(Optional::stream).toList();
    }

    /** The value of the single {@code VPORTD-MARK <key>} line; fails if there is none or several. */
    public String mark(String key) {
        List<String> all = marks(key);
        if (all.size() != 1) {
            throw new AssertionError("expected exactly one guest mark '" + key + "', found " + all.size()
                    + "\n--- guest output ---\n" + output);
        }
        return all.getFirst();
    }

    /** Fails with the console output when the guest did not exit with status 0. */
    public GuestResult assertSucceeded() {
        if (status != 0) {
            throw new AssertionError("guest exited with status " + status + describe(status)
                    + "\n--- guest output ---\n" + output);
        }
        return this;
    }

    static String describe(int status) {
        return switch (status) {
            case 124 -> " (rig: timeout, QEMU killed)";
            case 125 -> " (rig: kernel panic)";
            case 126 -> " (rig: the guest ended without reporting a status)";
            case 2 -> " (rig: usage or set-up problem, or the scenario's own status 2)";
            default -> "";
        };
    }
}
