package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * One scenario script, run against QEMU's built-in virtio-serial and against vportd: the guest
 * must see the same thing — the same ports, names, links, console, the same end of file and poll
 * state while the host is away, the same bytes once it is there. Every observation the script
 * makes is a mark; the two lists of marks must be equal.
 */
class DifferentialIT {

    static final List<PortSpec> PORTS = List.of(
            PortSpec.console(0, null),
            PortSpec.port(1, "org.diff.alpha"),
            PortSpec.port(2, "org.diff.beta"),
            PortSpec.port(5, "org.diff.gamma"));

    static final String SCRIPT = """
            need_ports org.diff.alpha org.diff.beta org.diff.gamma
            for d in /sys/class/virtio-ports/*; do
              n=""; [ -f "$d/name" ] && n=$(cat "$d/name")
              mark port "${d##*/}" "$n"
            done
            for l in /dev/virtio-ports/*; do [ -L "$l" ] && mark link "${l##*/}" "$(readlink "$l")"; done
            [ -c /dev/hvc0 ] && mark hvc0 yes
            mark alpha-eof-while-away "$(head -c 1 "$(port org.diff.alpha)" | wc -c)"
            mark alpha-poll-while-away "$(porttool poll < "$(port org.diff.alpha)")"
            mark gamma-token "$(recv_token "$(port org.diff.gamma)" 5)"
            mark beta-poll-connected "$(porttool poll < "$(port org.diff.beta)")"
            # Keep the port open until the acknowledgement is in: host bytes that reach a port the
            # guest has just closed are thrown away by the guest (a race in any device).
            exec 3<> "$(port org.diff.beta)"
            printf 'guest-to-host' >&3 || fail "write beta"
            mark ack "$(head -c 4 <&3)"
            exec 3>&-
            mark finished
            """;

    @Test
    @Timeout(400)
    void builtinAndVportdLookTheSameToTheGuest() throws IOException {
        List<String> builtin = run(new BuiltinVirtioSerial());
        List<String> vportd = run(new VportdDevice());
        assertFalse(builtin.isEmpty());
        assertEquals(builtin, vportd, "guest-visible behaviour of vportd differs from QEMU's built-in device");
    }

    private static List<String> run(SerialDeviceUnderTest device) throws IOException {
        Rig.require();
        Path dir = Files.createTempDirectory("vportd-diff-");
        List<HostPort> hosts = new ArrayList<>();
        try (SerialDeviceUnderTest.Attachment a = device.attach(dir, PORTS);
             Guest g = Guest.builder().name(device.name() + "-diff").scenario(GuestScripts.script(SCRIPT))
                     .qemuArgs(a.qemuArgs()).socketDir(dir).timeout(Duration.ofSeconds(150)).start()) {
            Duration step = Duration.ofSeconds(90);
            g.awaitMark("alpha-poll-while-away", step);
            HostPort gamma = a.connectHost(PORTS.get(3), step);
            hosts.add(gamma);
            HostPort beta = a.connectHost(PORTS.get(2), step);
            hosts.add(beta);
            gamma.write("hello", step);
            assertEquals("guest-to-host", beta.readString(13, step), device.name() + ": guest bytes reach the host");
            beta.write("done", step);
            GuestResult r = g.awaitExit().assertSucceeded();
            List<String> marks = new ArrayList<>();
            for (String line : r.lines()) {
                if (line.startsWith(Guest.MARK + " ")) {
                    marks.add(line.substring(Guest.MARK.length() + 1).strip());
                }
            }
            return marks;
        } finally {
            hosts.forEach(HostPort::close);
            TempDirs.removeFlat(dir);
        }
    }
}
