package io.vportd.console.device;

/**
 * What removing a port did with the guest's output that was still in flight: bytes written to
 * the host endpoint during the removal, and bytes that could not be (the host was absent or
 * full); those are reported here, counted and logged, never dropped silently.
 *
 * @param id                 the port id
 * @param name               the port name, or null
 * @param deliveredBytes     guest output written to the host during the removal
 * @param undeliveredBytes   guest output that could not be written (completed to the guest unsent)
 * @param undeliveredChains  guest buffers completed unsent
 * @param guestWasOpen       the guest had the port open when it was removed
 * @param files              files of the endpoint (socket file, pty link) the remover deletes, off the data-plane thread
 */
public record RemovalReport(int id, String name, long deliveredBytes, long undeliveredBytes, long undeliveredChains,
        boolean guestWasOpen, java.util.List<java.nio.file.Path> files) {

    public RemovalReport {
        files = files == null ? java.util.List.of() : java.util.List.copyOf(files);
    }
}
