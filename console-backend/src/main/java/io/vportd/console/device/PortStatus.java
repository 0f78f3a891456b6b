package io.vportd.console.device;

/** One port as a listing shows it; counters are live views read without locks. */
public record PortStatus(int id, String name, boolean console, String endpoint, boolean guestOpen,
        boolean hostConnected, boolean holdingGuestData, PortCounters counters) {
}
