package io.vportd.console.device;

/**
 * Receives {@link PortEvent}s. Called on the data-plane thread: an implementation must return
 * quickly and never block (hand the event to a bounded queue and drop, counted, when it is full).
 */
@FunctionalInterface
public interface PortEventListener {

    void onPortEvent(PortEvent event);

    PortEventListener NONE = e -> { };
}
