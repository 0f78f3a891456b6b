package io.vportd.it;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The multiport virtio-console a guest test runs against. The same scenarios run against
 * QEMU's built-in virtio-serial ({@link BuiltinVirtioSerial}, the reference) and against vportd:
 * a device only says which QEMU arguments create it and how the host reaches each port.
 */
public interface SerialDeviceUnderTest {

    /** Short name for logs and test names. */
    String name();

    /**
     * Prepares the device for one guest with these ports: starts whatever serves it (nothing for
     * the built-in device, a vportd process for vportd). Sockets go in {@code socketDir}, which
     * the rig bind-mounts at the same path inside QEMU's chroot.
     */
    Attachment attach(Path socketDir, List<PortSpec> ports) throws IOException;

    /** The device prepared for one guest. */
    interface Attachment extends AutoCloseable {

        /** QEMU arguments that add the device and its ports. */
        List<String> qemuArgs();

        /** Connects the host side of {@code port}; the guest sees the host connect. */
        HostPort connectHost(PortSpec port, Duration within);

        /** What the device's own process logged so far (empty for the built-in device). */
        default String log() {
            return "";
        }

        /** Stops what {@link #attach} started; never throws. */
        @Override
        void close();
    }
}
