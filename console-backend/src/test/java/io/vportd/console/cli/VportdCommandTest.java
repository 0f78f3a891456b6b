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
        assertEquals(300, DaemonConfig.parse("--socket-path", "/run/v.sock", "--poll-us", "300").pollMicros());
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

    // ------------------------------------------------------------------ the quick parse

    /** What parsing {@code args} gives: the invocation's text, or the error's (or help's) message. */
    private static String outcome(boolean quick, String... args) {
        try {
            return "ok " + VportdCommand.parseInvocation(quick, args);
        } catch (UsageException e) {
            return (e.isInformational() ? "info " : "error ") + e.exitCode() + " " + e.getMessage();
        }
    }

    @Test
    void theQuickParseGivesWhatPicocliGives(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path toml = dir.resolve("v.toml");
        java.nio.file.Files.writeString(toml, "api-socket = \"" + dir.resolve("api.sock") + "\"\n\n[[device]]\nid = \"vm1\"\n"
                + "socket = \"" + dir.resolve("vm1.sock") + "\"\nports = [\"nr=0,console,null\"]\n");
        String[][] lines = {
                {"--socket-path", "/run/v.sock"},
                {"--socket-path=/run/v.sock", "--max-ports", "7", "--port", "nr=0,console,null", "--port=nr=1,name=a.b,socket=/run/a"},
                {"--socket-path", "/run/v.sock", "--api-socket", "/run/api", "--metrics-listen", "127.0.0.1:0",
                        "--log-level", "debug", "--allow-unsealed-memory", "--fd-store", "--poll-us", "50"},
                {"--socket-path", "/run/v.sock", "--web-listen", "0", "--web-token-file", "/run/token"},
                {"--socket-path", "/run/v.sock", "--take-over"},
                {"--socket-path", "/run/v.sock", "--take-over", "--port", "nr=1,null"},
                {"--socket-path", "/run/v.sock", "--take-over", "--fd-store"},
                {"--config", toml.toString()},
                {"--config", toml.toString(), "--log-level", "warning"},
                {"--config", toml.toString(), "--port", "nr=1,null"},
                {"--config", toml.toString(), "--take-over"},
                {"--max-ports", "9"},
                {"--socket-path", ""},
                {"--socket-path", "/run/v.sock", "--max-ports", "0"},
                {"--socket-path", "/run/v.sock", "--max-ports", "512"},
                {"--socket-path", "/run/v.sock", "--max-ports", "07"},
                {"--socket-path", "/run/v.sock", "--max-ports", "x"},
                {"--socket-path", "/run/v.sock", "--poll-us", "-1"},
                {"--socket-path", "/run/v.sock", "--log-level", "loud"},
                {"--socket-path", "/run/v.sock", "--port", "nr=1,bogus"},
                {"--socket-path", "/run/v.sock", "--socket-path", "/run/w.sock"},
                {"--socket-path", "/run/v.sock", "--take-over=true"},
                {"--socket-path", "/run/v.sock", "--port"},
                {"--socket-path", "--port", "nr=1,null"},
                {"--socket-path", "/run/v.sock", "--unknown"},
                {"--socket-path", "/run/v.sock", "extra"},
                {"--socket", "/run/v.sock"},
                {"--help"},
                {"--version"},
                {},
        };
        for (String[] line : lines) {
            assertEquals(outcome(false, line), outcome(true, line), "vportd " + String.join(" ", line));
        }
    }

    @Test
    void theQuickParseKnowsEveryOptionOfTheCommand() {
        java.util.Map<String, Boolean> model = new java.util.TreeMap<>();
        for (picocli.CommandLine.Model.OptionSpec o : VportdCommand.commandLine().getCommandSpec().options()) {
            if (!o.usageHelp() && !o.versionHelp()) {
                model.put(o.longestName(), o.arity().max() > 0);
            }
        }
        assertEquals(model, new java.util.TreeMap<>(VportdCommand.QUICK_OPTIONS),
                "each option and whether it takes a value, in picocli's model and in the quick parse");
    }

    @Test
    void theAotCacheTrainingWalksRun() {
        // the daemon's sample --config text must stay a valid file: the launcher's training runs these
        VportdCommand.walkDaemonForAotCache();
        VportdCommand.walkCliForAotCache();
    }

    @Test
    @org.junit.jupiter.api.Timeout(120)
    void aCommonCommandLineNeedsNoPicocliModel(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        assertFalse(picocliInitialized(dir, "quick"), "picocli was initialized for a command line the quick parse takes");
        assertTrue(picocliInitialized(dir, "picocli"), "the probe does not see picocli being initialized: it shows nothing");
    }

    /** Runs {@link ParseProbe} in a fresh JVM; whether it initialized picocli's CommandLine or generated an annotation proxy. */
    private static boolean picocliInitialized(Path dir, String mode) throws Exception {
        Path log = dir.resolve(mode + ".log");
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xlog:class+init=info:file=" + log, "-cp", System.getProperty("java.class.path"),
                ParseProbe.class.getName(), mode).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "probe did not finish");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("parsed /run/vm1/vportd.sock"), out);
        String inits = java.nio.file.Files.readString(log);
        return inits.contains("'picocli/CommandLine'") || inits.contains("$Proxy");
    }

    /** In the fresh JVM: parses a daemon's usual command line, quickly or through picocli. */
    public static final class ParseProbe {
        public static void main(String[] args) throws Exception {
            String[] line = {"--socket-path", "/run/vm1/vportd.sock", "--max-ports", "31", "--api-socket", "/run/vm1/api.sock",
                    "--port", "nr=0,console,null", "--port", "nr=1,name=org.example.log,socket=/run/vm1/log.sock"};
            DaemonConfig c = (DaemonConfig) VportdCommand.parseInvocation(args[0].equals("quick"), line);
            System.out.println("parsed " + c.socketPath());
        }
    }
}
