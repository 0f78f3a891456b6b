package io.vportd.console.device;

import io.vportd.console.portlog.JournalLogTarget;
import java.nio.file.Path;
import java.util.Objects;

/**
 * What port logs need to know about the daemon: the device's name for journal entries
 * ({@code VPORTD_DEVICE}, the vhost-user socket path) and the journal's socket (tests point it at
 * a listener of their own).
 */
public record PortLogContext(String device, Path journalSocket) {

    public static final PortLogContext DEFAULT = new PortLogContext("vportd", JournalLogTarget.DEFAULT_SOCKET);

    public PortLogContext {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(journalSocket, "journalSocket");
    }
}
