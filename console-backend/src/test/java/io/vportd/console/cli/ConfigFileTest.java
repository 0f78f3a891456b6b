package io.vportd.console.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vportd --config FILE}: what a good file gives, and that every error names the file, line and key. */
class ConfigFileTest {

    private static final Path FILE = Path.of("/etc/vportd/vportd.toml");

    private static final String GOOD = """
            api-socket = "/run/vportd/api.sock"
            metrics-listen = "127.0.0.1:9100"
            log-level = "debug"

            [[device]]
            id = "vm1"
            socket = "/run/vportd/vm1.sock"
            max-ports = 8
            ports = ["nr=0,console,pty", "nr=1,name=org.qemu.guest_agent.0,socket=/run/vm1/qga.sock"]

            [[device]]
            id = "vm2"
            socket = "/run/vportd/vm2.sock"
            allow-unsealed-memory = true
            ports = [
              "nr=0,console,null",
              "nr=1,name=org.qemu.guest_agent.0,socket=/run/vm2/qga.sock",
            ]
            """;

    private static DevicesConfig parse(String text) {
        return ConfigFile.parse(FILE, text, null);
    }

    /** The message of the refusal of {@code text}; it must name the file. */
    private static String refusal(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> parse(text));
        assertTrue(e.getMessage().startsWith(FILE.toString()), e.getMessage());
        return e.getMessage();
    }

    @Test
    void aGoodFileGivesEveryDeviceWithItsPorts() {
        DevicesConfig c = parse(GOOD);
        assertEquals(Path.of("/run/vportd/api.sock"), c.apiSocket());
        assertEquals(new HostPort("127.0.0.1", 9100), c.metricsListen());
        assertEquals(System.Logger.Level.DEBUG, c.logLevel());
        assertEquals(List.of("vm1", "vm2"), c.devices().stream().map(DeviceConfig::id).toList());
        DeviceConfig vm1 = c.devices().get(0);
        assertEquals(Path.of("/run/vportd/vm1.sock"), vm1.socketPath());
        assertEquals(8, vm1.maxPorts());
        assertEquals(18, vm1.queueCount());
        assertFalse(vm1.allowUnsealedMemory());
        assertEquals("org.qemu.guest_agent.0", vm1.ports().get(1).name());
        DeviceConfig vm2 = c.devices().get(1);
        assertEquals(DaemonConfig.DEFAULT_MAX_PORTS, vm2.maxPorts());
        assertTrue(vm2.allowUnsealedMemory());
        assertEquals(2, vm2.ports().size());
    }

    @Test
    void eventLoopsAreOptionalAndBounded() {
        assertEquals(0, parse(GOOD).eventLoops(), "the default: chosen from the CPU count");
        assertEquals(3, parse("event-loops = 3\n" + GOOD).eventLoops());
        assertTrue(refusal("event-loops = 0\n" + GOOD).contains(":1: key 'event-loops': must be a whole number 1..64"));
        assertTrue(refusal("event-loops = 65\n" + GOOD).contains("key 'event-loops'"));
        assertTrue(refusal("event-loops = \"2\"\n" + GOOD).contains("key 'event-loops'"));
    }

    @Test
    void theCommandLineLogLevelWinsOverTheFiles() {
        assertEquals(System.Logger.Level.WARNING, ConfigFile.parse(FILE, GOOD, System.Logger.Level.WARNING).logLevel());
    }

    @Test
    void aSyntaxErrorNamesItsLine() {
        String m = refusal("api-socket = \"/a\"\n\n[[device]]\nid = \n");
        assertTrue(m.startsWith(FILE + ":4: not valid TOML"), m);
    }

    @Test
    void anUnknownTopLevelKeyIsNamedWithItsLine() {
        String m = refusal("api-socket = \"/a\"\napi-sokcet = \"/b\"\n");
        assertTrue(m.startsWith(FILE + ":2: key 'api-sokcet': unknown key"), m);
    }

    @Test
    void anUnknownDeviceKeyIsNamedWithItsDeviceAndLine() {
        String m = refusal(GOOD.replace("allow-unsealed-memory = true", "max-port = 4"));
        assertTrue(m.startsWith(FILE + ":14: device 2: key 'max-port': unknown device key"), m);
    }

    @Test
    void aDuplicateDeviceIdIsRefusedAtTheSecond() {
        String m = refusal(GOOD.replace("id = \"vm2\"", "id = \"vm1\""));
        assertTrue(m.startsWith(FILE + ":12: device 2: key 'id': device id 'vm1' is used by an earlier device too (line 6)"), m);
    }

    @Test
    void twoDevicesOnOneSocketAreRefused() {
        String m = refusal(GOOD.replace("/run/vportd/vm2.sock", "/run/vportd/../vportd/vm1.sock"));
        assertTrue(m.startsWith(FILE + ":13: device 2: key 'socket': "), m);
        assertTrue(m.contains("use the same path"), m);
    }

    @Test
    void anEndpointPathOfAnotherDeviceIsRefused() {
        String m = refusal(GOOD.replace("/run/vm2/qga.sock", "/run/vm1/qga.sock"));
        assertTrue(m.startsWith(FILE + ":15: device 2: key 'ports': "), m);
        assertTrue(m.contains("device vm2: port 1") && m.contains("device vm1: port 1") && m.contains("same path"), m);
    }

    @Test
    void aDeviceSocketThatIsTheApiSocketIsRefused() {
        String m = refusal(GOOD.replace("/run/vportd/vm1.sock", "/run/vportd/api.sock"));
        assertTrue(m.contains("device 1: key 'socket'") && m.contains("same path"), m);
    }

    @Test
    void aPortNotBelowMaxPortsIsNamedWithItsLine() {
        String m = refusal(GOOD.replace("max-ports = 8", "max-ports = 1"));
        assertTrue(m.startsWith(FILE + ":9: device 1: key 'ports': "), m);
        assertTrue(m.contains("port 1: nr must be below max-ports 1"), m);
    }

    @Test
    void aBadPortSpecIsNamedWithTheLineOfItsSpec() {
        String m = refusal(GOOD.replace("\"nr=0,console,null\"", "\"nr=0,console,nul\""));
        assertTrue(m.startsWith(FILE + ":16: device 2: key 'ports': 'nr=0,console,nul': "), m);
    }

    @Test
    void wrongTypesAndRangesAreNamed() {
        assertTrue(refusal(GOOD.replace("max-ports = 8", "max-ports = \"8\"")).contains(":8: device 1: key 'max-ports': must be a whole number"));
        assertTrue(refusal(GOOD.replace("max-ports = 8", "max-ports = 512")).contains("key 'max-ports': must be a whole number 1..511"));
        assertTrue(refusal(GOOD.replace("max-ports = 8", "max-ports = 99999999999")).contains("key 'max-ports'"));
        assertTrue(refusal(GOOD.replace("allow-unsealed-memory = true", "allow-unsealed-memory = 1")).contains("must be true or false"));
        assertTrue(refusal(GOOD.replace("id = \"vm1\"", "id = \"vm 1\"")).contains(":6: device 1: key 'id': a device id is"));
        assertTrue(refusal(GOOD.replace("log-level = \"debug\"", "log-level = \"loud\"")).contains(":3: key 'log-level': unknown level"));
        assertTrue(refusal(GOOD.replace("metrics-listen = \"127.0.0.1:9100\"", "metrics-listen = \"x:y\"")).contains(":2: key 'metrics-listen'"));
        assertTrue(refusal(GOOD.replace("ports = [\"nr=0,console,pty\", ", "ports = [1, ")).contains("a port is a spec string"));
        assertTrue(refusal("[device]\nid = \"a\"\n").contains("write [[device]]"));
    }

    @Test
    void aDeviceWithoutIdOrSocketIsRefused() {
        assertTrue(refusal("[[device]]\nsocket = \"/s\"\n").contains(":1: device 1: device 1 has no id"));
        assertTrue(refusal("[[device]]\nid = \"a\"\n").contains("device 1: key 'id': device a has no socket"));
    }

    @Test
    void aFileWithNothingToServeIsRefused() {
        assertTrue(refusal("log-level = \"info\"\n").contains("nothing to serve"));
        DevicesConfig onlyApi = parse("api-socket = \"/run/vportd/api.sock\"\n");
        assertTrue(onlyApi.devices().isEmpty());
        assertNull(onlyApi.metricsListen());
    }

    @Test
    void theCommandLineTakesTheFileAndRefusesDeviceOptionsBesideIt(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("v.toml");
        Files.writeString(f, GOOD);
        Invocation i = VportdCommand.parseInvocation("--config", f.toString(), "--log-level", "error");
        DevicesConfig c = assertInstanceOf(DevicesConfig.class, i);
        assertEquals(System.Logger.Level.ERROR, c.logLevel());
        for (List<String> extra : List.of(List.of("--socket-path", "/s"), List.of("--port", "nr=1,null"),
                List.of("--fd-store"), List.of("--api-socket", "/a"), List.of("--poll-us", "50"))) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("--config", f.toString()),
                    extra.stream()).toArray(String[]::new);
            UsageException e = assertThrows(UsageException.class, () -> VportdCommand.parseInvocation(args));
            assertTrue(e.getMessage().contains("--config: " + extra.get(0) + " may not be given with it"), e.getMessage());
        }
        assertTrue(!c.takeOver() && c.handover().equals(Path.of("/run/vportd/api.sock.handover")),
                "a daemon with an API socket listens for hand-overs beside it: " + c.handover());
        UsageException missing = assertThrows(UsageException.class,
                () -> VportdCommand.parseInvocation("--config", dir.resolve("none.toml").toString()));
        assertTrue(missing.getMessage().contains("none.toml: cannot read it"), missing.getMessage());
        UsageException neither = assertThrows(UsageException.class, VportdCommand::parseInvocation);
        assertTrue(neither.getMessage().contains("--socket-path") && neither.getMessage().contains("--config"),
                neither.getMessage());
    }

    @Test
    void takeOverGoesWithAFileThatSaysWhereTheRunningDaemonListens(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("v.toml");
        Files.writeString(f, GOOD);
        DevicesConfig c = assertInstanceOf(DevicesConfig.class,
                VportdCommand.parseInvocation("--take-over", "--config", f.toString()));
        assertTrue(c.takeOver());
        assertEquals(Path.of("/run/vportd/api.sock.handover"), c.handover());

        Path own = dir.resolve("own.toml");
        Files.writeString(own, "handover-socket = \"/run/vportd/h.sock\"\n" + GOOD);
        assertEquals(Path.of("/run/vportd/h.sock"), parse(Files.readString(own)).handover(),
                "handover-socket names the hand-over socket, API socket or not");

        Path none = dir.resolve("none.toml");
        Files.writeString(none, GOOD.replace("api-socket = \"/run/vportd/api.sock\"\n", ""));
        assertEquals(null, assertInstanceOf(DevicesConfig.class, VportdCommand.parseInvocation("--config",
                none.toString())).handover(), "without api-socket or handover-socket there is no hand-over socket");
        UsageException e = assertThrows(UsageException.class,
                () -> VportdCommand.parseInvocation("--take-over", "--config", none.toString()));
        assertTrue(e.getMessage().contains("neither api-socket nor handover-socket"), e.getMessage());

        IllegalArgumentException clash = assertThrows(IllegalArgumentException.class,
                () -> parse("handover-socket = \"/run/vportd/api.sock\"\n" + GOOD));
        assertTrue(clash.getMessage().contains("handover-socket"), clash.getMessage());
    }

    private static <T> T assertInstanceOf(Class<T> type, Object o) {
        assertTrue(type.isInstance(o), () -> "expected a " + type.getSimpleName() + ", got " + o);
        return type.cast(o);
    }
}
