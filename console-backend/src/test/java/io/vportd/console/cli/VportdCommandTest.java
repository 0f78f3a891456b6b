package io.vportd.console.cli;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VportdCommandTest {

    private static UsageException fails(String expectedFragment, String... args) {
        UsageException e = assertThrows(UsageException.class, () -> DaemonConfig.parse(args));
        assertFalse(e.isInformational());
        assertEquals(2, e.exitCode());
        assertTrue(e.getMessage().contains(expectedFragment),
                "message '" + e.getMessage() + "' should mention '" + expectedFragment + "'");
        return e;
    }

    // ------------------------------------------------------------------ accepted command lines

    @Test
    void pollWindowDefaultsAndBounds() throws UsageException {
        assertEquals(DaemonConfig.DEFAULT_POLL_MICROS, DaemonConfig.parse("--socket-path", "/run/v.sock").pollMicros());
        assertEquals(0, DaemonConfig.parse("--socket-path", "/run/v.sock", "--poll-us", "0").pollMicros());
        assertEquals(200, DaemonConfig.parse("--socket-path", "/run/v.sock", "--poll-us", "200").pollMicros());
        fails("--poll-us must be 0..1000000", "--socket-path", "/run/v.sock", "--poll-us", "-1");
        fails("--poll-us must be 0..1000000", "--socket-path", "/run/v.sock", "--poll-us", "1000001");
        assertTrue(DaemonConfig.usage().contains("--poll-us"), "documented in --help");
    }

    @Test
    void minimalCommandLineUsesDefaults() throws UsageException {
        DaemonConfig c = DaemonConfig.parse("--socket-path", "/run/vm1/vportd.sock");
        assertEquals(Path.of("/run/vm1/vportd.sock"), c.socketPath());
        assertEquals(31, c.maxPorts());
        assertEquals(64, c.queueCount());
        assertEquals(List.of(), c.ports());
        assertNull(c.apiSocket());
        assertNull(c.metricsListen());
        assertEquals(System.Logger.Level.INFO, c.logLevel());
    }

    @Test
    void fullCommandLine() throws UsageException {
        DaemonConfig c = DaemonConfig.parse(
                "--socket-path=/run/vm1/vportd.sock", "--max-ports", "511",
                "--port", "nr=4,name=org.example.log,file=/var/log/x.log",
                "--port", "nr=0,console,stdio",
                "--port", "nr=3,name=org.qemu.clipboard,socket=/run/vm1/clip.sock",
                "--api-socket", "/run/vm1/api.sock", "--metrics-listen", "0.0.0.0:9100", "--log-level", "DEBUG");
        assertEquals(1024, c.queueCount());
        assertEquals(List.of(0, 3, 4), c.ports().stream().map(PortConfig::id).toList());
        assertEquals(Path.of("/run/vm1/api.sock"), c.apiSocket());
        assertEquals(new HostPort("0.0.0.0", 9100), c.metricsListen());
        assertEquals(System.Logger.Level.DEBUG, c.logLevel());
        assertThrows(UnsupportedOperationException.class, () -> c.ports().clear());
    }

    @Test
    void fdStoreIsOffByDefaultDocumentedAndNotWithTakeOver() throws UsageException {
        assertEquals(false, DaemonConfig.parse("--socket-path", "/s").fdStore());
        assertEquals(true, DaemonConfig.parse("--socket-path", "/s", "--fd-store").fdStore());
        UsageException help = assertThrows(UsageException.class, () -> DaemonConfig.parse("--help"));
        assertTrue(help.getMessage().contains("--fd-store"), help.getMessage());
        assertTrue(help.getMessage().contains("FileDescriptorStoreMax"), help.getMessage());
        UsageException both = assertThrows(UsageException.class,
                () -> DaemonConfig.parse("--socket-path", "/s", "--take-over", "--fd-store"));
        assertTrue(both.getMessage().contains("--take-over and --fd-store"), both.getMessage());
    }

    @Test
    void allowUnsealedMemoryIsOffByDefaultAndDocumented() throws UsageException {
        assertEquals(false, DaemonConfig.parse("--socket-path", "/s").allowUnsealedMemory());
        assertEquals(true, DaemonConfig.parse("--socket-path", "/s", "--allow-unsealed-memory").allowUnsealedMemory());
        UsageException e = assertThrows(UsageException.class, () -> DaemonConfig.parse("--help"));
        assertTrue(e.getMessage().contains("--allow-unsealed-memory"), e.getMessage());
        assertTrue(e.getMessage().contains("hugetlbfs"), e.getMessage());
    }

    @Test
    void portOptionWithEqualsSign() throws UsageException {
        DaemonConfig c = DaemonConfig.parse("--socket-path=/s", "--port=nr=0,console,cols=80,rows=24,stdio");
        assertEquals(80, c.ports().get(0).cols());
        assertTrue(c.ports().get(0).console());
    }

    @Test
    void logLevelSpellings() {
        assertEquals(System.Logger.Level.WARNING, VportdCommand.level("warn"));
        assertEquals(System.Logger.Level.WARNING, VportdCommand.level("Warning"));
        assertEquals(System.Logger.Level.OFF, VportdCommand.level("off"));
        assertEquals(System.Logger.Level.TRACE, VportdCommand.level("trace"));
    }

    // ------------------------------------------------------------------ help and version

    @Test
    void helpExplainsEverything() {
        UsageException e = assertThrows(UsageException.class, () -> DaemonConfig.parse("--help"));
        assertTrue(e.isInformational());
        assertEquals(0, e.exitCode());
        String help = e.getMessage();
        for (String s : List.of("--socket-path", "--max-ports", "--port", "--api-socket", "--metrics-listen",
                "--log-level", "--help", "--version", "nr=N", "name=NAME", "console", "cols=N", "resize-order",
                "stdio", "socket=PATH", "unix-client=PATH", "tcp=[HOST:]PORT", "pty[=LINK]", "file=PATH", "null",
                "rows-cols", "cols-rows", "6.15", "reverted",
                "qemu-system-x86_64 -machine q35,memory-backend=mem",
                "-object memory-backend-memfd,id=mem,size=1G,share=on",
                "-chardev socket,id=vp,path=/run/vm1/vportd.sock",
                "-device vhost-user-test-device-pci,chardev=vp,virtio-id=3,num_vqs=64,config_size=12",
                "2*(max-ports+1)")) {
            assertTrue(help.contains(s), "help lacks '" + s + "'");
        }
        assertEquals(help, DaemonConfig.usage());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        VportdCommand.printUsage(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        assertEquals(help, bytes.toString(StandardCharsets.UTF_8));
    }

    @Test
    void helpNeedsNoOtherOption() {
        UsageException e = assertThrows(UsageException.class, () -> DaemonConfig.parse("-h"));
        assertTrue(e.isInformational());
    }

    @Test
    void version() {
        UsageException e = assertThrows(UsageException.class, () -> DaemonConfig.parse("--version"));
        assertTrue(e.isInformational());
        assertEquals(BuildInfo.current().versionText(), e.getMessage());
        assertTrue(e.getMessage().startsWith("vportd " + VportdCommand.VERSION + "\ncommit:  "), e.getMessage());
    }

    // ------------------------------------------------------------------ one test per error

    @Test void missingSocketPath() { fails("--socket-path", "--port", "nr=0,null"); }
    @Test void emptySocketPath() { fails("--socket-path must not be empty", "--socket-path", ""); }
    @Test void socketPathTooLong() { fails("at most 107 bytes", "--socket-path", "/" + "x".repeat(107)); }
    @Test void unknownOption() { fails("--colour", "--socket-path", "/s", "--colour"); }
    @Test void strayArgument() { fails("extra", "--socket-path", "/s", "extra"); }
    @Test void maxPortsNotANumber() { fails("'abc' is not an int", "--socket-path", "/s", "--max-ports", "abc"); }
    @Test void maxPortsZero() { fails("--max-ports must be 1..511", "--socket-path", "/s", "--max-ports", "0"); }
    @Test void maxPortsTooMany() { fails("--max-ports must be 1..511", "--socket-path", "/s", "--max-ports", "512"); }
    @Test void badPortSpec() { fails("--port: port spec 'nr=1' : ".replace(" : ", ": "), "--socket-path", "/s", "--port", "nr=1"); }
    @Test void portIdNotBelowMax() { fails("nr must be below --max-ports 4", "--socket-path", "/s", "--max-ports", "4", "--port", "nr=4,null"); }
    @Test void duplicatePortId() { fails("nr=2 is given twice", "--socket-path", "/s", "--port", "nr=2,null", "--port", "nr=2,stdio"); }
    @Test void duplicateName() { fails("same name 'a'", "--socket-path", "/s", "--port", "nr=1,name=a,null", "--port", "nr=2,name=a,null"); }
    @Test void twoStdioPorts() { fails("both use stdio", "--socket-path", "/s", "--port", "nr=1,stdio", "--port", "nr=2,stdio"); }
    @Test void samePathTwice() { fails("use the same path", "--socket-path", "/s", "--port", "nr=1,socket=/tmp/a.sock", "--port", "nr=2,file=/tmp/../tmp/a.sock"); }
    @Test void portPathIsTheVhostSocket() { fails("use the same path", "--socket-path", "/run/v.sock", "--port", "nr=1,socket=/run/v.sock"); }
    @Test void apiSocketIsTheVhostSocket() { fails("use the same path", "--socket-path", "/run/v.sock", "--api-socket", "/run/v.sock"); }
    @Test void ptyLinkClash() { fails("use the same path", "--socket-path", "/s", "--port", "nr=1,pty=/tmp/t", "--port", "nr=2,file=/tmp/t"); }
    @Test void sameTcpAddressTwice() { fails("already used", "--socket-path", "/s", "--port", "nr=1,tcp=4555", "--port", "nr=2,tcp=127.0.0.1:4555"); }
    @Test
    void portZeroIsAnyFreePortAndNeverClashes() throws UsageException {
        DaemonConfig c = DaemonConfig.parse("--socket-path", "/s", "--metrics-listen", "127.0.0.1:0",
                "--port", "nr=1,tcp=127.0.0.1:0", "--port", "nr=2,tcp=0");
        assertEquals(new HostPort("127.0.0.1", 0), c.metricsListen());
        assertEquals(List.of(0, 0), c.ports().stream()
                .map(p -> ((io.vportd.console.endpoint.EndpointSpec.Tcp) p.endpoint()).port()).toList());
    }
    @Test void tcpClashesWithMetrics() { fails("already used", "--socket-path", "/s", "--metrics-listen", "9100", "--port", "nr=1,tcp=9100"); }
    @Test void badMetricsAddress() { fails("--metrics-listen:", "--socket-path", "/s", "--metrics-listen", "host:port"); }
    @Test void badLogLevel() { fails("--log-level: unknown level 'loud'", "--socket-path", "/s", "--log-level", "loud"); }
    @Test void optionWithoutValue() { fails("--max-ports", "--socket-path", "/s", "--max-ports"); }

    @Test
    void errorsPointToHelp() {
        assertTrue(fails("Try 'vportd --help'", "--socket-path", "/s", "--max-ports", "0").getMessage()
                .contains("--max-ports"));
    }

    @Test
    void atFilesAreNotExpanded() {
        fails("@", "--socket-path", "/s", "@/etc/hostname");
    }

    @Test
    void daemonConfigChecksAlsoApplyWhenBuiltDirectly() {
        assertThrows(IllegalArgumentException.class, () -> new DaemonConfig(Path.of("/s"), 0, List.of(), null, null,
                System.Logger.Level.INFO));
        PortConfig p = PortConfig.generic(1, new EndpointSpec.Null());
        assertThrows(IllegalArgumentException.class, () -> new DaemonConfig(Path.of("/s"), 4, List.of(p, p), null,
                null, System.Logger.Level.INFO));
    }
}
