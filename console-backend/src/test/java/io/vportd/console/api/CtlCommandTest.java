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

    private Path batchFile(String... lines) throws IOException {
        Path f = java.nio.file.Files.createTempFile(dir, "batch", ".jsonl");
        java.nio.file.Files.writeString(f, String.join("\n", lines) + "\n");
        return f;
    }

    private List<JsonNode> outLines() throws IOException {
        List<JsonNode> r = new ArrayList<>();
        for (String l : out.lines().toList()) {
            r.add(new ObjectMapper().readTree(l));
        }
        return r;
    }

    @Test
    void batchSendsEveryLineOverOneConnectionAndPrintsEachResponseInOrder() throws IOException {
        Path f = batchFile("# three ports, then the list", "{\"op\":\"add-port\",\"spec\":\"nr=1,name=b1,null\"}", "",
                "{\"op\":\"add-port\",\"spec\":\"nr=2,name=b2,null\"}", "  {\"op\":\"add-port\",\"nr\":3,\"name\":\"b3\",\"endpoint\":\"null\"}",
                "{\"op\":\"list-ports\"}");
        assertEquals(0, ctl("batch", f.toString()), err);
        List<JsonNode> r = outLines();
        assertEquals(4, r.size(), out);
        assertEquals(List.of("b1", "b2", "b3"), r.subList(0, 3).stream().map(n -> n.path("port").path("name").asText()).toList());
        assertEquals(List.of(1L, 2L, 3L, 4L), r.stream().map(n -> n.path("id").asLong()).toList(), "one connection, ids in line order");
        assertEquals(3, r.get(3).path("ports").size(), "the list sees what the lines before it added");
    }

    @Test
    void aBadLineIsNamedAndNothingIsSent() throws IOException {
        Path f = batchFile("{\"op\":\"add-port\",\"spec\":\"nr=1,name=b1,null\"}", "{\"op\":\"list-ports\"}", "{add-port nr=2}");
        assertEquals(2, ctl("batch", f.toString()));
        assertTrue(err.contains("line 3: not JSON"), err);
        assertTrue(err.contains("nothing was sent"), err);
        for (String[] bad : List.of(new String[] {"[1,2]", "not a JSON object"}, new String[] {"{\"spec\":\"nr=1,null\"}", "no \"op\""},
                new String[] {"{\"op\":\"list-ports\",\"id\":7}", "\"id\" is given by vportd ctl"},
                new String[] {"{\"op\":\"subscribe\"}", "vportd ctl events"},
                new String[] {"{\"op\":\"log\",\"nr\":0,\"follow\":true}", "log --follow"})) {
            assertEquals(2, ctl("batch", batchFile(bad[0]).toString()), bad[0]);
            assertTrue(err.contains("line 1: ") && err.contains(bad[1]), err);
        }
        assertEquals(0, ctl("list-ports"));
        assertEquals(1, out.lines().count(), "no port was added by any refused batch: " + out);
        assertEquals(2, ctl("batch", dir.resolve("missing.jsonl").toString()));
        assertTrue(err.contains("cannot read"), err);
    }

    @Test
    void theFirstRefusedRequestStopsTheBatchUnlessKeepGoing() throws IOException {
        Path f = batchFile("{\"op\":\"add-port\",\"spec\":\"nr=1,name=b1,null\"}", "{\"op\":\"add-port\",\"spec\":\"nr=1,name=again,null\"}",
                "{\"op\":\"add-port\",\"spec\":\"nr=2,name=b2,null\"}");
        assertEquals(1, ctl("batch", f.toString()));
        assertEquals(2, outLines().size(), "the refusal is printed, the line after it not sent: " + out);
        assertTrue(outLines().get(1).has("error"));
        assertTrue(err.contains("line 2 refused") && err.contains("1 request(s) after it not sent"), err);
        assertEquals(0, ctl("remove-port", "1"));
        assertEquals(1, ctl("batch", "--keep-going", f.toString()));
        assertEquals(3, outLines().size(), out);
        assertEquals("b2", outLines().get(2).path("port").path("name").asText(), "sent after the refusal");
        assertTrue(err.contains("1 of 3 request(s) refused"), err);
        server.close();
        assertEquals(3, ctl("batch", f.toString()), "no daemon");
    }
}
