package io.vportd.console.control;

import java.util.BitSet;

/**
 * A strict model of what a guest may receive, used to check every message the machine sends:
 * PORT_ADD only for an id below max that the guest does not have, PORT_REMOVE only for one it
 * has, other messages only for ports it has, well-formed lengths. {@link #reset} forgets all
 * ports (a fresh driver). Violations throw AssertionError.
 */
final class GuestModel {
    final int maxPorts;
    final BitSet added = new BitSet();

    GuestModel(int maxPorts) {
        this.maxPorts = maxPorts;
    }

    void reset() {
        added.clear();
    }

    /** Checks one outgoing message and updates the model. */
    ControlMessage accept(byte[] buf, int len) {
        ControlMessage m = ControlMessage.decode(buf, 0, len);
        if (m == null) {
            throw new AssertionError("undecodable outgoing message of length " + len);
        }
        int id = m.id();
        if (id < 0 || id >= maxPorts) {
            throw new AssertionError("outgoing " + m + " has id outside 0.." + (maxPorts - 1));
        }
        switch (m.event()) {
            case ControlMessage.PORT_ADD -> {
                if (added.get(id)) {
                    throw new AssertionError("PORT_ADD for existing port " + id);
                }
                expectLength(m, 8);
                added.set(id);
            }
            case ControlMessage.PORT_REMOVE -> {
                if (!added.get(id)) {
                    throw new AssertionError("PORT_REMOVE for port " + id + " that was not added");
                }
                expectLength(m, 8);
                added.clear(id);
            }
            case ControlMessage.CONSOLE_PORT, ControlMessage.PORT_OPEN, ControlMessage.PORT_NAME,
                 ControlMessage.RESIZE -> {
                if (!added.get(id)) {
                    throw new AssertionError(m + " for port " + id + " that was not added");
                }
                if (m.event() == ControlMessage.RESIZE) {
                    expectLength(m, 12);
                } else if (m.event() == ControlMessage.PORT_NAME) {
                    if (m.payload().length < 1 || m.payload().length > 255) {
                        throw new AssertionError("bad name length in " + m);
                    }
                } else {
                    expectLength(m, 8);
                }
                if (m.event() != ControlMessage.RESIZE && m.value() > 1) {
                    throw new AssertionError("non-boolean value in " + m);
                }
            }
            default -> throw new AssertionError("device sent guest-only event " + m);
        }
        return m;
    }

    private static void expectLength(ControlMessage m, int len) {
        if (m.length() != len) {
            throw new AssertionError(m + " has length " + m.length() + ", expected " + len);
        }
    }
}
