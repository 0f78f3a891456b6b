package io.vportd.console.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.control.PortConfig;
import io.vportd.console.portlog.LogSpec;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** The port-spec keys of issue 15: log=, log-max=, log-keep=, log-timestamps, log=journal, replay=. */
class PortSpecLogKeysTest {

    @Test
    void aFullLogSpec() {
        PortConfig c = PortSpecParser.parse("nr=0,console,pty,log=/var/log/vm1,,con.log,log-max=8M,log-keep=3,log-timestamps");
        LogSpec l = c.log();
        assertEquals(Path.of("/var/log/vm1,con.log"), l.path());
        assertEquals(8L << 20, l.maxBytes());
        assertEquals(3, l.keep());
        assertTrue(l.timestamps());
        assertFalse(l.journal());
        assertEquals(LogSpec.CONSOLE_REPLAY_DEFAULT, l.replayBytes(), "a console keeps its default replay ring");
        assertEquals("log=/var/log/vm1,con.log,log-max=8388608,log-keep=3,log-timestamps,replay=65536", l.describe());
    }

    @Test
    void defaultsConsolesReplayGenericPortsNothing() {
        assertEquals(LogSpec.CONSOLE, PortSpecParser.parse("nr=0,console,null").log());
        assertEquals(LogSpec.NONE, PortSpecParser.parse("nr=1,null").log());
        assertNull(PortSpecParser.parse("nr=1,null").log().describe());
        assertEquals(0, PortSpecParser.parse("nr=0,console,null,replay=0").log().replayBytes());
        assertEquals(4096, PortSpecParser.parse("nr=2,null,replay=4K").log().replayBytes());
        assertEquals(LogSpec.MAX_REPLAY, PortSpecParser.parse("nr=2,null,replay=1M").log().replayBytes());
        assertTrue(PortSpecParser.parse("nr=2,null,log=journal").log().journal());
        assertEquals(LogSpec.DEFAULT_LOG_MAX, PortSpecParser.parse("nr=2,null,log=/x").log().maxBytes());
        assertEquals(new PortConfig(0, null, true, 0, 0, null, new io.vportd.console.endpoint.EndpointSpec.Null()).log(),
                LogSpec.CONSOLE, "the old constructor gives the defaults");
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "nr=1,null,log=                         | 'log' needs a value",
        "nr=1,null,log-max=1M                   | log-max, log-keep and log-timestamps apply to a log file",
        "nr=1,null,log=journal,log-timestamps   | the journal rotates and stamps entries itself",
        "nr=1,null,log=/x,log-max=lots          | log-max: 'lots' is not a size",
        "nr=1,null,log=/x,log-max=4095          | log-max must be at least 4096 bytes, got 4095",
        "nr=1,null,log=/x,log-max=1K            | log-max must be at least 4096 bytes, got 1024",
        "nr=1,null,log=/x,log-max=99999999999999G | log-max: '99999999999999G' is not a size",
        "nr=1,null,log=/x,log-keep=0            | log-keep must be 1..1000, got 0",
        "nr=1,null,log=/x,log-keep=x            | log-keep: 'x' is not a number",
        "nr=1,null,replay=2M                    | replay must be at most 1048576 bytes (1M), got 2097152",
        "nr=1,null,replay=-1                    | replay: '-1' is not a size",
        "nr=1,null,log=/x,log-timestamps=yes    | 'log-timestamps' takes no value",
        "nr=1,null,log=/a,log=/b                | duplicate key 'log'",
    })
    void badLogKeysAreRefusedNamingTheKey(String spec, String problem) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PortSpecParser.parse(spec.strip()));
        assertTrue(e.getMessage().startsWith("port spec '" + spec.strip() + "': "), e.getMessage());
        assertTrue(e.getMessage().contains(problem.strip()), e.getMessage());
    }

    @Test
    void sizes() {
        assertEquals(0, LogSpec.parseSize("0", Long.MAX_VALUE));
        assertEquals(1536, LogSpec.parseSize("1536", Long.MAX_VALUE));
        assertEquals(2048, LogSpec.parseSize("2k", Long.MAX_VALUE));
        assertEquals(3L << 20, LogSpec.parseSize("3MiB", Long.MAX_VALUE));
        assertEquals(1L << 30, LogSpec.parseSize("1G", Long.MAX_VALUE));
        assertEquals(-1, LogSpec.parseSize("", Long.MAX_VALUE));
        assertEquals(-1, LogSpec.parseSize("K", Long.MAX_VALUE));
        assertEquals(-1, LogSpec.parseSize("1.5M", Long.MAX_VALUE));
        assertEquals(-1, LogSpec.parseSize("2K", 2047));
    }
}
