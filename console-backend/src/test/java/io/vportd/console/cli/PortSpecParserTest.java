package io.vportd.console.cli;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.control.PortConfig;
import io.vportd.console.control.ResizeOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PortSpecParserTest {

    // ------------------------------------------------------------------ accepted specs

    @Test
    void consoleOnStdio() {
        PortConfig p = PortSpecParser.parse("nr=0,console,stdio");
        assertEquals(0, p.id());
        assertTrue(p.console());
        assertNull(p.name());
        assertEquals(new EndpointSpec.Stdio(), p.endpoint());
        assertFalse(p.sizeKnown());
        assertEquals(PortConfig.DEFAULT_RESIZE_ORDER, p.resizeOrder());
    }

    @Test
    void namedSocketPort() {
        PortConfig p = PortSpecParser.parse("nr=3,name=org.qemu.clipboard,socket=/run/vm1/clip.sock");
        assertEquals(3, p.id());
        assertEquals("org.qemu.clipboard", p.name());
        assertFalse(p.console());
        assertEquals(new EndpointSpec.UnixSocket(Path.of("/run/vm1/clip.sock")), p.endpoint());
    }

    @Test
    void fileOutput() {
        PortConfig p = PortSpecParser.parse("nr=4,name=org.example.log,file=/var/log/x.log");
        assertEquals(new EndpointSpec.FileOut(Path.of("/var/log/x.log")), p.endpoint());
    }

    @Test
    void consoleWithSizeAndOrder() {
        PortConfig p = PortSpecParser.parse("nr=1,console,cols=120,rows=40,resize-order=cols-rows,socket=/tmp/c.sock");
        assertEquals(120, p.cols());
        assertEquals(40, p.rows());
        assertEquals(ResizeOrder.COLS_ROWS, p.resizeOrder());
        assertTrue(p.sizeKnown());
        assertEquals(ResizeOrder.ROWS_COLS,
                PortSpecParser.parse("nr=1,console,resize-order=rows-cols,null").resizeOrder());
    }

    @Test
    void tcpForms() {
        assertEquals(new EndpointSpec.Tcp("127.0.0.1", 4555), PortSpecParser.parse("nr=2,tcp=127.0.0.1:4555").endpoint());
        assertEquals(new EndpointSpec.Tcp("127.0.0.1", 4555), PortSpecParser.parse("nr=2,tcp=4555").endpoint());
        assertEquals(new EndpointSpec.Tcp("0.0.0.0", 1), PortSpecParser.parse("nr=2,tcp=0.0.0.0:1").endpoint());
        assertEquals(new EndpointSpec.Tcp("::1", 65535), PortSpecParser.parse("nr=2,tcp=[::1]:65535").endpoint());
        assertEquals("tcp=[::1]:65535", new EndpointSpec.Tcp("::1", 65535).toSpec());
    }

    @Test
    void otherEndpoints() {
        assertEquals(new EndpointSpec.Pty(null), PortSpecParser.parse("nr=5,pty").endpoint());
        assertEquals(new EndpointSpec.Pty(Path.of("/run/vm1/ttyS")), PortSpecParser.parse("nr=5,pty=/run/vm1/ttyS").endpoint());
        assertEquals(new EndpointSpec.UnixClient(Path.of("/run/x.sock")),
                PortSpecParser.parse("nr=5,unix-client=/run/x.sock").endpoint());
        assertEquals(new EndpointSpec.Null(), PortSpecParser.parse("null,nr=5").endpoint());
    }

    @Test
    void doubledCommaIsALiteralComma() {
        PortConfig p = PortSpecParser.parse("nr=6,file=/tmp/a,,b.log");
        assertEquals(new EndpointSpec.FileOut(Path.of("/tmp/a,b.log")), p.endpoint());
    }

    @Test
    void unicodeNamesUpTo255BytesAreFine() {
        String name = "é".repeat(127); // 254 bytes
        assertEquals(name, PortSpecParser.parse("nr=1,name=" + name + ",null").name());
    }

    @Test
    void endpointSpellingRoundTrips() {
        for (String e : new String[] {"stdio", "null", "pty", "pty=/a/b", "socket=/s", "unix-client=/c", "file=/f",
                "tcp=10.0.0.1:80"}) {
            assertEquals(e, PortSpecParser.parse("nr=1," + e).endpoint().toSpec());
        }
    }

    // ------------------------------------------------------------------ one test per error

    private static void fails(String spec, String expectedFragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PortSpecParser.parse(spec));
        assertTrue(e.getMessage().contains(expectedFragment),
                "message '" + e.getMessage() + "' should mention '" + expectedFragment + "'");
        if (spec != null && !spec.isEmpty()) {
            assertTrue(e.getMessage().contains("'" + spec + "'"), "message should quote the spec: " + e.getMessage());
        }
    }

    @Test void emptySpec() { fails("", "empty"); }
    @Test void blankSpec() { fails("   ", "empty"); }
    @Test void nullSpec() { fails(null, "empty"); }
    @Test void unknownKey() { fails("nr=1,colour=red,null", "unknown key 'colour'"); }
    @Test void missingNr() { fails("name=a,null", "missing nr"); }
    @Test void nrNotANumber() { fails("nr=one,null", "nr: 'one' is not a number"); }
    @Test void nrNegative() { fails("nr=-1,null", "not a number"); }
    @Test void nrTooLarge() { fails("nr=32768,null", "nr must be 0..32767"); }
    @Test void nrHuge() { fails("nr=99999999999999,null", "nr must be 0..32767, got 99999999999999"); }
    @Test void nrWithoutValue() { fails("nr,null", "'nr' needs a value"); }
    @Test void nrEmptyValue() { fails("nr=,null", "'nr' needs a value"); }
    @Test void duplicateKey() { fails("nr=1,nr=2,null", "duplicate key 'nr'"); }
    @Test void duplicateFlag() { fails("nr=1,console,console,null", "duplicate key 'console'"); }
    @Test void twoEndpoints() { fails("nr=1,stdio,socket=/x", "two endpoints, 'stdio' and 'socket'"); }
    @Test void noEndpoint() { fails("nr=1,console", "no endpoint"); }
    @Test void valueOnConsole() { fails("nr=1,console=yes,null", "'console' takes no value"); }
    @Test void valueOnStdio() { fails("nr=1,stdio=1", "'stdio' takes no value"); }
    @Test void valueOnNull() { fails("nr=1,null=0", "'null' takes no value"); }
    @Test void socketWithoutPath() { fails("nr=1,socket", "'socket' needs a value"); }
    @Test void socketEmptyPath() { fails("nr=1,socket=", "'socket' needs a value"); }
    @Test void socketPathTooLong() { fails("nr=1,socket=/" + "s".repeat(107), "at most 107 bytes"); }
    @Test void unixClientWithoutPath() { fails("nr=1,unix-client", "'unix-client' needs a value"); }
    @Test void fileWithoutPath() { fails("nr=1,file", "'file' needs a value"); }
    @Test void ptyEmptyLink() { fails("nr=1,pty=", "'pty=' needs a link path"); }
    @Test void pathWithNul() { fails("nr=1,file=/tmp/a\0b", "NUL"); }
    @Test void tcpWithoutValue() { fails("nr=1,tcp", "'tcp' needs a value"); }
    @Test void tcpBadPort() { fails("nr=1,tcp=localhost:http", "is not a TCP port"); }
    @Test void tcpPortZeroIsAnyFreePort() { assertEquals(new EndpointSpec.Tcp("127.0.0.1", 0), PortSpecParser.parse("nr=1,tcp=0").endpoint()); }
    @Test void tcpPortTooBig() { fails("nr=1,tcp=65536", "is not a TCP port"); }
    @Test void tcpEmptyHost() { fails("nr=1,tcp=:80", "empty host"); }
    @Test void tcpBareIpv6() { fails("nr=1,tcp=::1:80", "brackets"); }
    @Test void tcpBadBrackets() { fails("nr=1,tcp=[::1]80", "not [IPV6]:PORT"); }
    @Test void emptyItem() { fails(",nr=1,null", "empty item"); }
    @Test void doubledCommaEscapesIntoTheValue() { fails("nr=1,,,null", "nr: '1,' is not a number"); }
    @Test void trailingComma() { fails("nr=1,null,", "empty item"); }
    @Test void itemWithoutKey() { fails("nr=1,=x,null", "has no key"); }
    @Test void emptyName() { fails("nr=1,name=,null", "'name' needs a value"); }
    @Test void nameWithSlash() { fails("nr=1,name=a/b,null", "must not contain '/'"); }
    @Test void nameWithSpace() { fails("nr=1,name=a b,null", "whitespace"); }
    @Test void nameWithTab() { fails("nr=1,name=a\tb,null", "whitespace"); }
    @Test void nameWithControl() { fails("nr=1,name=a\u0007b,null", "non-printable"); }
    @Test void nameWithFormatChar() { fails("nr=1,name=a\u200Bb,null", "non-printable"); }
    @Test void nameDotDot() { fails("nr=1,name=..,null", "must not be '..'"); }
    @Test void nameTooLong() { fails("nr=1,name=" + "x".repeat(256) + ",null", "at most 255"); }
    @Test void nameUtf8TooLong() { fails("nr=1,name=" + "é".repeat(128) + ",null", "256 bytes"); }
    @Test void nameUnpairedSurrogate() { fails("nr=1,name=a\uD800,null", "surrogate"); }
    @Test void colsWithoutRows() { fails("nr=1,console,cols=80,null", "cols and rows must be given together"); }
    @Test void colsZero() { fails("nr=1,console,cols=0,rows=24,null", "cols must be 1..65535"); }
    @Test void rowsTooBig() { fails("nr=1,console,cols=80,rows=65536,null", "rows must be 1..65535"); }
    @Test void sizeOnNonConsole() { fails("nr=1,cols=80,rows=24,null", "only apply to a console port"); }
    @Test void resizeOrderOnNonConsole() { fails("nr=1,resize-order=cols-rows,null", "only apply to a console port"); }
    @Test void badResizeOrder() { fails("nr=1,console,resize-order=columns,null", "resize-order must be rows-cols or cols-rows"); }

    // ------------------------------------------------------------------ HostPort

    @ParameterizedTest
    @CsvSource({"80,127.0.0.1,80", "127.0.0.1:0,127.0.0.1,0", "localhost:8080,localhost,8080", "'[fe80::1]:9',fe80::1,9"})
    void hostPortForms(String text, String host, int port) {
        assertEquals(new HostPort(host, port), HostPort.parse(text));
    }

    @Test
    void hostPortErrors() {
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse(""));
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("[]:80"));
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("a b:80"));
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("host:"));
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("host:+80"));
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("host:65536"));
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("host:-1"));
    }

    @Test
    void formatGivesBackASpecThatParsesToTheSameConfig() {
        for (String spec : java.util.List.of("nr=0,console,stdio", "nr=1,name=a,,b,socket=/tmp/x,,y.sock",
                "nr=2,console,cols=120,rows=40,resize-order=rows-cols,pty=/run/vm/con", "nr=3,pty", "nr=4,null",
                "nr=5,name=org.qemu.guest_agent.0,unix-client=/run/qga.sock", "nr=6,tcp=[::1]:0", "nr=7,tcp=127.0.0.1:4555",
                "nr=8,name=log,file=/var/log/a,,b.log", "nr=9,console,socket=/tmp/c.sock",
                "nr=10,console,replay=0,pty", "nr=11,replay=4K,socket=/tmp/r.sock", "nr=12,log=journal,null", "nr=14,console,web",
                "nr=13,console,log=/var/log/c,,1.log,log-max=1M,log-keep=7,log-timestamps,replay=128K,socket=/tmp/c1.sock")) {
            PortConfig c = PortSpecParser.parse(spec);
            assertEquals(c, PortSpecParser.parse(PortSpecParser.format(c)), spec + " -> " + PortSpecParser.format(c));
        }
    }
}
