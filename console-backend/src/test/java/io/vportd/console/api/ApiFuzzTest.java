package io.vportd.console.api;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.control.PortConfig;
import io.vportd.console.device.PortRequestException;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Management request lines, arbitrary or shaped like real requests with fuzzed fields, through
 * {@link ApiProtocol#handle}. Invariants: it never throws; every answer is one line of JSON, an
 * object that is either {@code "ok": true} or an {@code error} whose code is one of the documented
 * ones (never {@code internal-error}: only the port manager failing may produce that, and the
 * fake here does not fail); an answer to an object request echoes its {@code id}; an answer is at
 * most a bounded size; the port table never holds an id at or above max ports.
 * In {@code mvn verify} the stored inputs under {@code ApiFuzzTestInputs/requestLines} are
 * replayed; {@code fuzz/run} fuzzes.
 */
class ApiFuzzTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_PORTS = 6;
    private static final String[] OPS = {"add-port", "remove-port", "list-ports", "resize", "subscribe",
        "unsubscribe", "metrics", "bogus"};
    private static final String[] FIELDS = {"id", "op", "spec", "nr", "name", "console", "cols", "rows",
        "resize-order", "endpoint", "drain-ms", "x"};
    private static final Set<String> CODES = codes();

    private static Set<String> codes() {
        Set<String> s = new HashSet<>(Set.of(ApiProtocol.PARSE_ERROR, ApiProtocol.INVALID_REQUEST,
                ApiProtocol.UNKNOWN_OP, ApiProtocol.BAD_SPEC, ApiProtocol.REQUEST_TOO_LONG));
        for (PortRequestException.Reason r : PortRequestException.Reason.values()) {
            s.add(r.code());
        }
        return s;
    }

    /** A JSON value for a field: mostly the right type and a plausible range, sometimes not. */
    private static void putValue(ObjectNode req, String field, FuzzedDataProvider data) {
        switch (data.consumeInt(0, 7)) {
            case 0 -> req.put(field, data.consumeInt(-2, MAX_PORTS + 2));
            case 1 -> req.put(field, data.consumeLong());
            case 2 -> req.put(field, data.consumeBoolean());
            case 3 -> req.putNull(field);
            case 4 -> req.put(field, data.consumeDouble());
            case 5 -> req.putArray(field).add(data.consumeInt());
            case 6 -> req.put(field, data.pickValue(new String[] {"null", "unix:/tmp/x.sock", "tcp:127.0.0.1:0",
                "stdio", "nr=2,null", "nr=1,console,cols=80,rows=24,null", "cols-rows", "p,,q"}));
            default -> req.put(field, data.consumeString(40));
        }
    }

    private static String requestLine(FuzzedDataProvider data) {
        if (data.consumeInt(0, 3) == 0) {
            return data.consumeString(200); // arbitrary text
        }
        ObjectNode req = JSON.createObjectNode();
        if (data.consumeBoolean()) {
            req.put("id", data.consumeInt());
        }
        req.put("op", data.pickValue(OPS));
        for (int k = data.consumeInt(0, 6); k > 0; k--) {
            putValue(req, data.pickValue(FIELDS), data);
        }
        String line = req.toString();
        if (data.consumeInt(0, 7) == 0) {
            // a damaged line: cut or spliced
            int cut = data.consumeInt(0, line.length());
            line = line.substring(0, cut) + data.consumeString(8);
        }
        return line;
    }

    @FuzzTest(maxDuration = "30s")
    void requestLines(FuzzedDataProvider data) throws Exception {
        FakePorts ports = new FakePorts(MAX_PORTS);
        ApiProtocol protocol = new ApiProtocol(ports);
        boolean[] subscribed = new boolean[1];
        for (int step = 0; step < 16 && data.remainingBytes() > 0; step++) {
            String line = requestLine(data);
            String answer = protocol.handle(line, on -> subscribed[0] = on);
            assertNotNull(answer);
            assertFalse(answer.contains("\n"), "answer spans lines: " + answer);
            assertTrue(answer.length() <= 4096 + 2 * line.length() + 256 * ports.ports.size(),
                    "answer of " + answer.length() + " chars to a line of " + line.length());
            JsonNode r = JSON.readTree(answer);
            assertTrue(r.isObject(), answer);
            boolean ok = r.path("ok").asBoolean(false);
            assertTrue(ok != r.has("error"), "exactly one of ok and error: " + answer);
            if (!ok) {
                String code = r.path("error").path("code").asText();
                assertTrue(CODES.contains(code), "undocumented error code in " + answer + " for " + line);
                assertTrue(r.path("error").path("message").isTextual(), answer);
            } else {
                JsonNode req = JSON.readTree(line);
                assertEquals(req.get("id") == null ? JSON.nullNode() : req.get("id"), r.get("id"), answer);
            }
            for (PortConfig c : ports.ports.values()) {
                assertTrue(c.id() >= 0 && c.id() < MAX_PORTS, "port " + c.id() + " added");
            }
        }
    }
}
