package io.vportd.console.control;

/**
 * Callbacks of {@link ControlMachine}, invoked synchronously on the thread that fed the input,
 * after the machine has updated its own state (so a callback may call back into the machine).
 * Every callback reports a change; none is repeated for an unchanged state.
 */
public interface ControlListener {
    /** The guest opened the port (PORT_OPEN 1): host data may now be delivered to it. */
    void guestOpened(int id);

    /** The guest closed the port (PORT_OPEN 0), or the device was reset while it was open. */
    void guestClosed(int id);

    /** The guest created the port (PORT_READY 1). */
    void portReady(int id);

    /** The guest could not create the port (PORT_READY 0). */
    void portFailed(int id, String why);

    /** The guest driver reported DEVICE_READY (ok = value 1), or readiness was implied by a restore. */
    void deviceReady(boolean ok);

    /**
     * The port left the machine: PORT_REMOVE was handed out, or the port was removed before
     * the guest ever heard of it. Its id may be added again from now on.
     */
    default void portRemoved(int id) {
    }

    /** A listener that ignores everything (tests, tools). */
    ControlListener NONE = new ControlListener() {
        @Override public void guestOpened(int id) { }
        @Override public void guestClosed(int id) { }
        @Override public void portReady(int id) { }
        @Override public void portFailed(int id, String why) { }
        @Override public void deviceReady(boolean ok) { }
    };
}
