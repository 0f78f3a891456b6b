package io.vportd.console.device;

/** One port as a listing shows it; counters are live views read without locks. */
public record PortStatus(int id, String name, boolean console, String endpoint, boolean guestOpen,
        boolean hostConnected, boolean holdingGuestData, PortCounters counters, String log) {

    /** Without log settings (a port that logs nothing and keeps no replay ring). */
    public PortStatus(int id, String name, boolean console, String endpoint, boolean guestOpen,
                      boolean hostConnected, boolean holdingGuestData, PortCounters counters) {
        this(id, name, console, endpoint, guestOpen, hostConnected, holdingGuestData, counters, null);
    }
}
