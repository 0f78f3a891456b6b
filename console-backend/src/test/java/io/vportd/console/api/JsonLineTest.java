package io.vportd.console.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.vportd.console.device.PortEvent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The API's JSON lines without a mapper: the same trees and text a mapper gives, and no mapper loaded. */
class JsonLineTest {

    /** What the API used before: a mapper with the same reading rules. */
    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    @ParameterizedTest
    @ValueSource(strings = {
            "{\"id\":7,\"op\":\"list-ports\"}",
            "  {\"id\":\"abc\",\"op\":\"add-port\",\"nr\":4,\"console\":true,\"cols\":80,\"endpoint\":\"null\"}  ",
            "{\"id\":null,\"a\":[1,-2,3000000000,123456789012345678901234567890,4.5,-0.0,1e300,\"x\"],\"b\":{}}",
            "{\"s\":\"caf\\u00e9 \\\"quoted\\\" \\\\ \\n\\t\\u0001 \\ud83d\\ude00\",\"f\":false,\"t\":true}",
            "[[],[[]],{\"k\":[{\"k\":null}]}]",
            "\"just a string\"", "42", "null", "-9223372036854775808", "2147483648", "1.0",
    })
    void readsAndWritesAsTheMapperDid(String line) throws Exception {
        JsonNode expected = MAPPER.readTree(line);
        JsonNode got = JsonLine.read(line);
        assertEquals(expected, got, line);
        assertEquals(expected.getClass(), got.getClass(), line);
        assertEquals(MAPPER.writeValueAsString(expected), JsonLine.write(got), line);
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "{\"id\":7,\"op\":", "not json at all", "{\"id\":7} trailing", "{\"id\":7} {}", "[1,2",
            "{\"op\":\"a\",\"op\":\"b\"}", "{\"id\":{\"x\":1,\"x\":2}}", "{'id':7}", "{\"id\":NaN}", "]",
    })
    void refusesWhatTheMapperRefused(String line) {
        assertThrows(JsonProcessingException.class, () -> MAPPER.readTree(line), line);
        assertThrows(JsonProcessingException.class, () -> JsonLine.read(line), line);
    }

    @Test
    void aLineOfWhiteSpaceHoldsNoValue() throws Exception {
        assertNull(JsonLine.read(""));
        assertNull(JsonLine.read("  \t "));
    }

    @Test
    void nestingIsLimited() throws Exception {
        String deepest = "[".repeat(JsonLine.MAX_DEPTH) + "]".repeat(JsonLine.MAX_DEPTH);
        assertEquals(deepest, JsonLine.write(JsonLine.read(deepest)));
        String deeper = "[".repeat(JsonLine.MAX_DEPTH + 1) + "]".repeat(JsonLine.MAX_DEPTH + 1);
        JsonProcessingException e = assertThrows(JsonProcessingException.class, () -> JsonLine.read(deeper));
        assertTrue(e.getOriginalMessage().contains("nesting depth"), e.getOriginalMessage());
        // The deepest id a request may carry comes back in the response.
        String id = "{\"a\":".repeat(JsonLine.MAX_DEPTH - 1) + "1" + "}".repeat(JsonLine.MAX_DEPTH - 1);
        String response = new ApiProtocol(new FakePorts(4)).handle("{\"id\":" + id + ",\"op\":\"list-ports\"}", s -> { });
        assertTrue(response.startsWith("{\"id\":" + id + ",\"ok\":true"), response);
        String tooDeep = "{\"id\":" + "[".repeat(JsonLine.MAX_DEPTH) + "]".repeat(JsonLine.MAX_DEPTH) + ",\"op\":\"list-ports\"}";
        String refused = new ApiProtocol(new FakePorts(4)).handle(tooDeep, s -> { });
        assertTrue(refused.contains("\"code\":\"parse-error\""), refused);
    }

    /**
     * In a fresh JVM, requests that succeed or fail and an event line go through the protocol,
     * and a --config file is read, without loading Jackson's ObjectMapper (some 10 MiB of an idle
     * daemon).
     */
    @Test
    void theApiLoadsNoMapper(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("classes.log");
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xshare:off", "-Xlog:class+load=info:file=" + log, "-cp", System.getProperty("java.class.path"),
                ApiProbe.class.getName(), dir.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "probe did not finish");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("\"ok\":true") && out.contains("parse-error") && out.contains("\"event\""), out);
        assertTrue(out.contains("config: 2 device(s), vm2 has 2 port(s)"), out);
        String classes = Files.readString(log);
        assertTrue(classes.contains("com.fasterxml.jackson.core.JsonFactory "), "the probe did not use Jackson at all");
        assertFalse(classes.contains("com.fasterxml.jackson.databind.ObjectMapper "), "an ObjectMapper was loaded");
    }

    /** In the fresh JVM: a few requests and an event line through the protocol, and a config file read; printed. */
    public static final class ApiProbe {
        public static void main(String[] args) throws Exception {
            ApiProtocol api = new ApiProtocol(new FakePorts(8));
            for (String line : new String[] {
                    "{\"id\":1,\"op\":\"add-port\",\"spec\":\"nr=1,console,name=c1,null\"}",
                    "{\"id\":2,\"op\":\"list-ports\"}", "{\"id\":3,\"op\":\"metrics\"}", "{\"id\":4,\"op\":",
                    "{\"id\":5,\"op\":\"reboot\"}"}) {
                System.out.println(api.handle(line, s -> { }));
            }
            System.out.println(ApiProtocol.eventLine("vm1", new PortEvent(PortEvent.PORT_ADDED, 1, "c1", null), 1_700_000_000_123_456L));
            Path toml = Path.of(args[0], "vportd.toml");
            Files.writeString(toml, String.join("\n", "api-socket = \"/run/vportd/api.sock\"", "event-loops = 2",
                    "[[device]]", "id = \"vm1\"", "socket = \"/run/vportd/vm1.sock\"", "ports = [\"nr=0,console,null\"]",
                    "[[device]]", "id = \"vm2\"", "socket = \"/run/vportd/vm2.sock\"", "max-ports = 8",
                    "ports = [\"nr=0,console,null\", \"nr=1,name=org.example.log,socket=/run/vportd/log.sock\"]", ""));
            io.vportd.console.cli.DevicesConfig c = io.vportd.console.cli.ConfigFile.load(toml, null);
            System.out.println("config: " + c.devices().size() + " device(s), " + c.devices().get(1).id() + " has "
                    + c.devices().get(1).ports().size() + " port(s)");
        }
    }
}
