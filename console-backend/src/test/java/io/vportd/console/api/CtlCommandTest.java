package io.vportd.console.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.console.ctl.CtlCommand;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code vportd ctl} against a management server with fake ports: tables, --json, exit codes. */
@Timeout(30)
class CtlCommandTest {

    @TempDir
    Path dir;
    private ManagementServer server;
    private Path sock;
    private String out;
    private String err;

    @BeforeEach
    void start() throws IOException {
        sock = dir.resolve("api.sock");
        server = ManagementServer.start(sock, new FakePorts(8));
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private int ctl(String... args) {
        StringWriter o = new StringWriter();
        StringWriter e = new StringWriter();
        List<String> all = new ArrayList<>(List.of("--api-socket", sock.toString()));
        all.addAll(List.of(args));
        int code = CtlCommand.run(all.toArray(String[]::new), new PrintWriter(o), new PrintWriter(e));
        out = o.toString();
        err = e.toString();
        return code;
    }

    @Test
    void addListRemoveAsTables() {
        assertEquals(0, ctl("add-port", "nr=5,name=org.example.log,null"));
        List<String> lines = out.lines().toList();
        assertTrue(lines.get(0).startsWith("NR  NAME"), out);
        assertTrue(lines.get(1).matches("5\\s+org\\.example\\.log\\s+no\\s+null\\s+closed\\s+-\\s+0B/0\\s+0B/0\\s+0\\s+0"),
                lines.get(1));
        assertEquals(0, ctl("add-port", "nr=6,console,null"));
        assertEquals(0, ctl("list-ports"));
        assertEquals(3, out.lines().count(), out);
        assertEquals(0, ctl("resize", "6", "120", "40"));
        assertEquals("port 6: 120x40", out.strip());
        assertEquals(0, ctl("remove-port", "name=org.example.log"));
        assertTrue(out.startsWith("removed port 5 (org.example.log)"), out);
    }

    @Test
    void jsonOutputIsTheDaemonsResponse() throws IOException {
        assertEquals(0, ctl("--json", "add-port", "nr=2,name=two,null"));
        JsonNode r = new ObjectMapper().readTree(out);
        assertTrue(r.path("ok").asBoolean());
        assertEquals("two", r.path("port").path("name").asText());
        assertEquals(1, ctl("--json", "remove-port", "4"));
        assertEquals("no-such-port", new ObjectMapper().readTree(out).path("error").path("code").asText());
    }

    @Test
    void exitCodes() {
        assertEquals(1, ctl("add-port", "nr=9,null"), "refused by the daemon");
        assertTrue(err.contains("id-out-of-range"), err);
        assertEquals(1, ctl("add-port", "nr=1,nonsense"));
        assertTrue(err.contains("bad-spec"), err);
        assertEquals(2, ctl("remove-port", "five"), "not a port reference");
        assertEquals(2, ctl("frobnicate"));
        assertEquals(2, ctl());
        assertEquals(0, ctl("metrics"));
        assertTrue(out.contains("vportd_ports 0"), out);
        server.close();
        assertEquals(3, ctl("list-ports"), "no daemon");
        assertTrue(err.contains("cannot connect"), err);
    }
}
