package io.vportd.it;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * vportd as the device under test: a vportd process serves the ports (each a listening Unix
 * socket {@code port-<nr>.sock} in the socket folder, like the built-in device's chardevs) and
 * QEMU reaches it through {@code vhost-user-test-device-pci} with virtio-id 3.
 */
public final class VportdDevice implements SerialDeviceUnderTest {

    private final int maxPorts;
    private final List<String> extraArgs;

    public VportdDevice(int maxPorts, List<String> extraArgs) {
        this.maxPorts = maxPorts;
        this.extraArgs = List.copyOf(extraArgs);
    }

    public VportdDevice() {
        this(8, List.of());
    }

    @Override
    public String name() {
        return "vportd";
    }

    /** The QEMU arguments that attach a vhost-user console with {@code maxPorts} ports to {@code socket}. */
    public static List<String> qemuArgs(Path socket, int maxPorts) {
        return List.of(
                "-chardev", "socket,id=vportd0,path=" + socket,
                "-device", "vhost-user-test-device-pci,chardev=vportd0,virtio-id=3,num_vqs=" + 2 * (maxPorts + 1)
                        + ",config_size=12,vq_size=256");
    }

    @Override
    public Attachment attach(Path socketDir, List<PortSpec> ports) throws IOException {
        Path vhost = socketDir.resolve("vportd.sock");
        List<String> args = new ArrayList<>(List.of("--max-ports", Integer.toString(maxPorts)));
        for (PortSpec p : ports) {
            args.add("--port");
            args.add("nr=" + p.nr() + (p.console() ? ",console" : "") + (p.name() != null ? ",name=" + p.name() : "")
                    + ",socket=" + BuiltinVirtioSerial.socket(socketDir, p));
        }
        args.addAll(extraArgs);
        VportdProcess daemon = VportdProcess.start(socketDir.getFileName().toString(), vhost, args, Duration.ofSeconds(30));
        List<String> qemu = qemuArgs(vhost, maxPorts);
        return new Attachment() {
            @Override
            public List<String> qemuArgs() {
                return qemu;
            }

            @Override
            public HostPort connectHost(PortSpec port, Duration within) {
                return HostPort.connect(BuiltinVirtioSerial.socket(socketDir, port), within);
            }

            @Override
            public String log() {
                return daemon.log();
            }

            @Override
            public void close() {
                daemon.close();
            }
        };
    }
}
