package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.ControlListener;
import io.vportd.console.control.ControlMachine;
import io.vportd.console.control.ControlMessage;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.console.endpoint.Handed;
import io.vportd.vhost.Session;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The hand-over state record: what is written is read back the same; versions and damage are refused. */
class HandoverStateTest {

    private static HandoverState.Daemon sample() {
        ControlMachine m = new ControlMachine(8, ControlListener.NONE);
        m.addPort(PortSpecParser.parse("nr=0,console,cols=100,rows=30,socket=/tmp/con.sock"));
        m.addPort(PortSpecParser.parse("nr=3,name=agent,,x,socket=/tmp/agent.sock"));
        byte[] ready = new byte[8];
        ControlMessage.encodeHeader(ready, 0, ControlMessage.NO_ID, ControlMessage.DEVICE_READY, 1);
        m.onGuestMessage(ready, 0, 8); // PORT_ADDs pending: undelivered control messages
        m.removePort(3);
        DeviceSnapshot.Port con = new DeviceSnapshot.Port(m.portConfig(0), true, 17, 65535, 4096,
                "boot log\n".getBytes(StandardCharsets.UTF_8), 100 << 16 | 30, new Handed().fd("listener", 40).fd("peer", 41),
                new long[] {5, 6, 7}, "last lines\n".getBytes(StandardCharsets.UTF_8));
        DeviceSnapshot.Port pty = new DeviceSnapshot.Port(PortSpecParser.parse("nr=5,pty=/tmp/link"), false, 0, 0, 0,
                new byte[0], 0, new Handed().fd("master", 50).fd("slave", 51).fact("slave-path", "/dev/pts/7"), new long[8],
                new byte[0]);
        DeviceSnapshot device = new DeviceSnapshot(8, m.snapshot(), true, List.of(con, pty),
                List.of(PortSpecParser.parse("nr=3,name=agent,,x,socket=/tmp/agent.sock")), 123456789L);
        List<Session.Replay> replay = List.of(new Session.Replay(5, new byte[] {1, 2, 3}, new int[] {60, 61}),
                new Session.Replay(12, new byte[0], new int[0]));
        return new HandoverState.Daemon("/run/vm/vportd.sock", "/run/vm/api.sock", "127.0.0.1:9100", true, 30, 31, 32,
                replay, device, java.util.Map.of("vportd_x_total\u0000queue\u00003", 12L));
    }

    @Test
    void whatIsWrittenIsReadBackWithTheReceivedDescriptors() throws IOException {
        HandoverState.Daemon d = sample();
        HandoverState.Encoded e = HandoverState.encode(d);
        assertEquals(9, e.fds().length, "every descriptor once: hand-over, vhost, 2 replay, 4 endpoint, connection");
        int[] received = new int[e.fds().length];
        for (int i = 0; i < received.length; i++) {
            received[i] = 1000 + e.fds()[i]; // the numbers another process would get
        }
        HandoverState.Daemon back = HandoverState.decode(HandoverState.parse(e.json()), received);
        assertEquals(d.socketPath(), back.socketPath());
        assertEquals(d.apiSocket(), back.apiSocket());
        assertEquals(d.metricsListen(), back.metricsListen());
        assertEquals(d.allowUnsealedMemory(), back.allowUnsealedMemory());
        assertEquals(1030, back.handoverListenerFd());
        assertEquals(1031, back.vhostListenerFd());
        assertEquals(1032, back.vhostConnectionFd());
        assertEquals(2, back.replay().size());
        assertEquals(5, back.replay().get(0).request());
        assertArrayEquals(new byte[] {1, 2, 3}, back.replay().get(0).payload());
        assertArrayEquals(new int[] {1060, 1061}, back.replay().get(0).fds());
        DeviceSnapshot s = back.device();
        assertEquals(d.device().control(), s.control(), "the control machine, pending messages included");
        assertEquals(d.device().removing(), s.removing());
        assertEquals(d.device().frozenAtNanos(), s.frozenAtNanos());
        assertEquals(d.counters(), back.counters());
        assertEquals(true, s.deviceReadySeen());
        for (int i = 0; i < 2; i++) {
            DeviceSnapshot.Port a = d.device().ports().get(i);
            DeviceSnapshot.Port b = s.ports().get(i);
            assertEquals(a.config(), b.config());
            assertEquals(a.added(), b.added());
            assertEquals(a.carriedHead(), b.carriedHead());
            assertEquals(a.carriedAvail(), b.carriedAvail());
            assertEquals(a.carriedTaken(), b.carriedTaken());
            assertArrayEquals(a.consoleBacklog(), b.consoleBacklog());
            assertEquals(a.terminalSize(), b.terminalSize());
            assertArrayEquals(a.counters(), b.counters());
            assertArrayEquals(a.replay(), b.replay());
            assertEquals(a.endpoint().facts(), b.endpoint().facts());
            a.endpoint().fds().forEach((role, fd) -> assertEquals(1000 + fd, b.endpoint().fds().get(role), role));
        }
    }

    @Test
    void aRecordFromAFutureVersionIsRefusedNamingBothVersions() {
        byte[] json = new String(HandoverState.encode(sample()).json(), StandardCharsets.UTF_8)
                .replace("\"version\":1", "\"version\":99").getBytes(StandardCharsets.UTF_8);
        IOException e = assertThrows(IOException.class, () -> HandoverState.parse(json));
        assertTrue(e.getMessage().contains("version 99") && e.getMessage().contains("version 1"), e.getMessage());
    }

    @Test
    void damagedRecordsAreRefusedNotMisread() throws IOException {
        HandoverState.Encoded e = HandoverState.encode(sample());
        String json = new String(e.json(), StandardCharsets.UTF_8);
        assertThrows(IOException.class, () -> HandoverState.parse("{\"format\":\"other\",\"version\":1}".getBytes()));
        assertThrows(IOException.class, () -> HandoverState.decode(HandoverState.parse(
                json.replace("\"vhost\"", "\"vhostX\"").getBytes(StandardCharsets.UTF_8)), e.fds()));
        assertThrows(IOException.class, () -> HandoverState.decode(HandoverState.parse(e.json()), new int[2]),
                "descriptor indexes beyond what was received");
        assertThrows(IOException.class, () -> HandoverState.decode(HandoverState.parse(
                json.replace("\"nr=5,pty=/tmp/link\"", "\"nr=5,bogus\"").getBytes(StandardCharsets.UTF_8)), e.fds()));
    }

    /** Two devices of a --config daemon: the same device twice under two ids, its descriptors listed once per device. */
    private static HandoverState.Daemons twoDevices() {
        HandoverState.Daemon one = sample();
        HandoverState.Daemon device = new HandoverState.Daemon(one.socketPath(), null, null, one.allowUnsealedMemory(), -1,
                one.vhostListenerFd(), one.vhostConnectionFd(), one.replay(), one.device(), one.counters());
        HandoverState.Daemon other = new HandoverState.Daemon("/run/vm2/vportd.sock", null, null, false, -1, 70, -1,
                List.of(), one.device(), java.util.Map.of());
        return new HandoverState.Daemons("/run/api.sock", null, "/run/api.sock.handover", 29,
                List.of(new HandoverState.Named("vm1", device), new HandoverState.Named("vm2", other)),
                java.util.Map.of("vportd_devices_added_total", 2L));
    }

    @Test
    void aRecordOfSeveralDevicesIsReadBackDeviceByDevice() throws IOException {
        HandoverState.Daemons d = twoDevices();
        HandoverState.Encoded e = HandoverState.encode(d);
        assertEquals(1 + 8 + 5, e.fds().length, "hand-over listener, then each device's own: vm1 8, vm2 5 (no connection)");
        int[] received = new int[e.fds().length];
        for (int i = 0; i < received.length; i++) {
            received[i] = 1000 + e.fds()[i];
        }
        HandoverState.Daemons back = HandoverState.decodeDevices(HandoverState.parse(e.json(), HandoverState.DEVICES_VERSION),
                received);
        assertEquals("/run/api.sock", back.apiSocket());
        assertEquals("/run/api.sock.handover", back.handoverSocket());
        assertEquals(1029, back.handoverListenerFd());
        assertEquals(d.counters(), back.counters());
        assertEquals(List.of("vm1", "vm2"), back.devices().stream().map(HandoverState.Named::id).toList());
        HandoverState.Daemon vm1 = back.devices().get(0).device();
        assertEquals("/run/vm/vportd.sock", vm1.socketPath());
        assertEquals(1031, vm1.vhostListenerFd());
        assertEquals(1032, vm1.vhostConnectionFd());
        assertArrayEquals(new int[] {1060, 1061}, vm1.replay().get(0).fds());
        assertEquals(d.devices().get(0).device().device().control(), vm1.device().control());
        assertEquals(1040, vm1.device().ports().get(0).endpoint().fds().get("listener"));
        HandoverState.Daemon vm2 = back.devices().get(1).device();
        assertEquals(1070, vm2.vhostListenerFd());
        assertEquals(-1, vm2.vhostConnectionFd(), "a device without a frontend");
        assertEquals(1040, vm2.device().ports().get(0).endpoint().fds().get("listener"));
    }

    @Test
    void aRecordOfSeveralDevicesIsCheckedAsStrictlyAsOne() throws IOException {
        HandoverState.Encoded e = HandoverState.encode(twoDevices());
        String json = new String(e.json(), StandardCharsets.UTF_8);
        IOException single = assertThrows(IOException.class, () -> HandoverState.parse(e.json()),
                "a single-device reader does not take a record of several");
        assertTrue(single.getMessage().contains("version 2") && single.getMessage().contains("single device"),
                single.getMessage());
        IOException several = assertThrows(IOException.class,
                () -> HandoverState.parse(HandoverState.encode(sample()).json(), HandoverState.DEVICES_VERSION));
        assertTrue(several.getMessage().contains("version 1") && several.getMessage().contains("several devices"),
                several.getMessage());
        // Damage, each refused with a reason naming the device where there is one.
        record Damage(String what, String from, String to, String says) {
        }
        for (Damage d : List.of(
                new Damage("a later version", "\"version\":2", "\"version\":3", "version 3"),
                new Damage("the same id twice", "\"id\":\"vm2\"", "\"id\":\"vm1\"", "listed twice"),
                new Damage("an id no device may have", "\"id\":\"vm2\"", "\"id\":\"../x\"", "device id"),
                new Damage("no device list", "\"devices\":[", "\"devicesX\":[", "devices"),
                new Damage("a device without its session", "\"vhost\":{\"listener\":9", "\"vhostX\":{\"listener\":9",
                        "device vm2"),
                new Damage("a descriptor index beyond those received", "\"vhost\":{\"listener\":9", "\"vhost\":{\"listener\":14",
                        "descriptor index 14"),
                new Damage("a negative descriptor index", "\"vhost\":{\"listener\":9", "\"vhost\":{\"listener\":-5", "descriptor index -5"))) {
            assertTrue(json.contains(d.from()), () -> d.what() + ": the record has no " + d.from() + ":\n" + json);
            byte[] damaged = json.replace(d.from(), d.to()).getBytes(StandardCharsets.UTF_8);
            IOException x = assertThrows(IOException.class, () -> HandoverState.decodeDevices(
                    HandoverState.parse(damaged, HandoverState.DEVICES_VERSION), e.fds()), d.what());
            assertTrue(x.getMessage().contains(d.says()), () -> d.what() + ": " + x.getMessage());
        }
    }
}
