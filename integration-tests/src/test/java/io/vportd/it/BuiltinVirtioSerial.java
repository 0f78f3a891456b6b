package io.vportd.it;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * QEMU's own virtio-serial device: the reference implementation the vportd tests are held to.
 * Each port is a listening Unix socket chardev in the socket folder ({@code port-<nr>.sock});
 * the host connects to it as a client.
 */
public final class BuiltinVirtioSerial implements SerialDeviceUnderTest {

    @Override
    public String name() {
        return "qemu-virtio-serial";
    }

    @Override
    public Attachment attach(Path socketDir, List<PortSpec> ports) {
        int maxNr = ports.stream().mapToInt(PortSpec::nr).max().orElse(0);
        List<String> args = new ArrayList<>(List.of(
                "-device", "virtio-serial-pci,id=vser0,max_ports=" + Math.max(8, maxNr + 1)));
        for (PortSpec p : ports) {
            String id = "vport" + p.nr();
            args.add("-chardev");
            args.add("socket,id=" + id + ",path=" + socket(socketDir, p) + ",server=on,wait=off");
            args.add("-device");
            args.add((p.console() ? "virtconsole" : "virtserialport") + ",bus=vser0.0,chardev=" + id
                    + ",nr=" + p.nr() + (p.name() != null ? ",name=" + p.name() : ""));
        }
        List<String> frozen = List.copyOf(args);
        return new Attachment() {
            @Override
            public List<String> qemuArgs() {
                return frozen;
            }

            @Override
            public HostPort connectHost(PortSpec port, Duration within) {
                return HostPort.connect(socket(socketDir, port), within);
            }

            @Override
            public void close() {
                // QEMU owns everything; the guest's close() ends it
            }
        };
    }

    static Path socket(Path dir, PortSpec p) {
        return dir.resolve("port-" + p.nr() + ".sock");
    }
}
