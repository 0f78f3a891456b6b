package io.vportd.console.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.console.device.PortEvent;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ApiProtocolTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private FakePorts ports;
    private ApiProtocol protocol;
    private final List<Boolean> subscriptions = new ArrayList<>();

    @BeforeEach
    void setUp() {
        ports = new FakePorts(8);
        protocol = new ApiProtocol(ports);
        // Ports 1 (console, named c1) and 3 (named three) exist in every case.
        ok(call("{\"id\":1,\"op\":\"add-port\",\"spec\":\"nr=1,console,name=c1,null\"}"));
        ok(call("{\"id\":2,\"op\":\"add-port\",\"nr\":3,\"name\":\"three\",\"endpoint\":\"null\"}"));
    }

    private JsonNode call(String line) {
        try {
            return JSON.readTree(protocol.handle(line, subscriptions::add));
        } catch (Exception e) {
            throw new AssertionError("response is not JSON", e);
        }
    }

    private static JsonNode ok(JsonNode r) {
        assertTrue(r.path("ok").asBoolean(), () -> "expected ok, got " + r);
        assertFalse(r.has("error"));
        return r;
    }

    /** Every error response the protocol gives: request line, expected code, a word of the message. */
    static Stream<Arguments> errors() {
        return Stream.of(
                Arguments.of("{\"id\":7,\"op\":", "parse-error", "malformed JSON"),
                Arguments.of("not json at all", "parse-error", "malformed JSON"),
                Arguments.of("{\"id\":7,\"op\":\"list-ports\"} trailing", "parse-error", "malformed JSON"),
                Arguments.of("{\"id\":7,\"op\":\"list-ports\",\"op\":\"metrics\"}", "parse-error", "Duplicate"),
                Arguments.of("[1,2,3]", "invalid-request", "JSON object"),
                Arguments.of("\"list-ports\"", "invalid-request", "JSON object"),
                Arguments.of("{\"id\":7}", "invalid-request", "missing \"op\""),
                Arguments.of("{\"id\":7,\"op\":5}", "invalid-request", "\"op\" must be a string"),
                Arguments.of("{\"id\":7,\"op\":\"reboot\"}", "unknown-op", "reboot"),
                Arguments.of("{\"id\":7,\"op\":\"list-ports\",\"verbose\":true}", "invalid-request", "verbose"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=3,null\"}", "id-taken", "already used"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=4,name=three,null\"}", "name-taken", "three"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=8,null\"}", "id-out-of-range", "max ports 8"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=4\"}", "bad-spec", "nr=4"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=4,bogus=1,null\"}", "bad-spec", "bogus"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=4,stdio\"}", "bad-spec", "stdio"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":\"nr=4,null\",\"nr\":4}", "invalid-request", "either"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"spec\":4}", "invalid-request", "must be a string"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":4}", "invalid-request", "missing \"endpoint\""),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":\"4\",\"endpoint\":\"null\"}", "invalid-request", "integer"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":4.5,\"endpoint\":\"null\"}", "invalid-request", "integer"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":-1,\"endpoint\":\"null\"}", "invalid-request", "0..32767"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":4,\"console\":\"yes\",\"endpoint\":\"null\"}",
                        "invalid-request", "true or false"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":4,\"name\":\"a b\",\"endpoint\":\"null\"}", "bad-spec",
                        "whitespace"),
                Arguments.of("{\"id\":7,\"op\":\"add-port\",\"nr\":4,\"endpoint\":\"null\",\"colour\":1}", "invalid-request",
                        "colour"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\",\"nr\":5}", "no-such-port", "5"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\",\"name\":\"nobody\"}", "no-such-port", "nobody"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\",\"nr\":9}", "id-out-of-range", "9"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\"}", "invalid-request", "exactly one"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\",\"nr\":3,\"name\":\"three\"}", "invalid-request", "exactly one"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\",\"nr\":3,\"drain-ms\":60001}", "invalid-request", "0..60000"),
                Arguments.of("{\"id\":7,\"op\":\"remove-port\",\"nr\":3,\"drain-ms\":\"1\"}", "invalid-request", "integer"),
                Arguments.of("{\"id\":7,\"op\":\"resize\",\"nr\":3,\"cols\":80,\"rows\":24}", "not-console", "console"),
                Arguments.of("{\"id\":7,\"op\":\"resize\",\"nr\":1,\"cols\":0,\"rows\":24}", "invalid-request", "1..65535"),
                Arguments.of("{\"id\":7,\"op\":\"resize\",\"nr\":1,\"cols\":80}", "invalid-request", "missing \"rows\""),
                Arguments.of("{\"id\":7,\"op\":\"resize\",\"nr\":2,\"cols\":80,\"rows\":24}", "no-such-port", "2"),
                Arguments.of("{\"id\":7,\"op\":\"subscribe\",\"events\":[]}", "invalid-request", "events"));
    }

    @ParameterizedTest
    @MethodSource("errors")
    void errorResponses(String request, String code, String messagePart) {
        JsonNode r = call(request);
        assertTrue(r.has("error"), () -> "expected an error for " + request + ", got " + r);
        assertFalse(r.has("ok"));
        assertEquals(code, r.path("error").path("code").asText(), () -> r.toString());
        assertTrue(r.path("error").path("message").asText().contains(messagePart),
                () -> "message of " + r + " should mention " + messagePart);
        // The id is echoed whenever the request could be read as an object with one.
        if (request.startsWith("{\"id\":7") && !code.equals("parse-error")) {
            assertEquals(7, r.path("id").asInt());
        } else {
            assertTrue(r.path("id").isNull(), () -> r.toString());
        }
        // Nothing changed, and the protocol goes on answering.
        assertEquals(2, ok(call("{\"id\":8,\"op\":\"list-ports\"}")).path("ports").size());
    }

    @Test
    void idIsEchoedVerbatimWhateverItsType() {
        assertEquals("abc", ok(call("{\"id\":\"abc\",\"op\":\"list-ports\"}")).path("id").asText());
        assertEquals("{\"k\":[1]}", ok(call("{\"id\":{\"k\":[1]},\"op\":\"list-ports\"}")).path("id").toString());
        assertTrue(ok(call("{\"op\":\"list-ports\"}")).path("id").isNull());
    }

    @Test
    void addListRemoveReAdd() {
        JsonNode added = ok(call("{\"id\":1,\"op\":\"add-port\",\"spec\":\"nr=5,name=org.x,,y,null\"}")).path("port");
        assertEquals(5, added.path("nr").asInt());
        assertEquals("org.x,y", added.path("name").asText(), "a doubled comma is a literal comma");
        JsonNode fields = ok(call("{\"id\":2,\"op\":\"add-port\",\"nr\":6,\"name\":\"a,b\",\"console\":true,"
                + "\"cols\":80,\"rows\":25,\"endpoint\":\"null\"}")).path("port");
        assertEquals("a,b", fields.path("name").asText(), "field values are escaped into the spec");
        assertTrue(fields.path("console").asBoolean());
        JsonNode list = ok(call("{\"id\":3,\"op\":\"list-ports\"}")).path("ports");
        assertEquals(List.of(1, 3, 5, 6), list.findValues("nr").stream().map(JsonNode::asInt).toList());
        JsonNode removed = ok(call("{\"id\":4,\"op\":\"remove-port\",\"name\":\"org.x,y\"}")).path("removed");
        assertEquals(5, removed.path("nr").asInt());
        assertEquals(10, removed.path("delivered-bytes").asLong());
        ok(call("{\"id\":5,\"op\":\"add-port\",\"spec\":\"nr=5,name=org.x,,y,null\"}"));
    }

    @Test
    void removeWaitsForTheHostToTakeHeldOutputWhenAsked() {
        ports.holdingListings = 3;
        JsonNode r = ok(call("{\"id\":1,\"op\":\"remove-port\",\"nr\":3,\"drain-ms\":60000}")).path("removed");
        assertTrue(r.path("drained").asBoolean(), r::toString);
        assertEquals(0, ports.holdingListings, "it looked until the port held nothing");
        ok(call("{\"id\":2,\"op\":\"add-port\",\"spec\":\"nr=3,null\"}"));
        ports.holdingListings = Integer.MAX_VALUE;
        JsonNode late = ok(call("{\"id\":3,\"op\":\"remove-port\",\"nr\":3,\"drain-ms\":1}")).path("removed");
        assertFalse(late.path("drained").asBoolean(), "the host never caught up: removed anyway, and said so");
    }

    @Test
    void resizeSubscribeMetrics() {
        JsonNode r = ok(call("{\"id\":1,\"op\":\"resize\",\"name\":\"c1\",\"cols\":100,\"rows\":40}"));
        assertEquals(List.of("1:100x40"), ports.resizes);
        assertEquals(1, r.path("nr").asInt());
        ok(call("{\"id\":2,\"op\":\"subscribe\"}"));
        ok(call("{\"id\":3,\"op\":\"unsubscribe\"}"));
        assertEquals(List.of(true, false), subscriptions);
        assertEquals("vportd_ports 2\n", ok(call("{\"id\":4,\"op\":\"metrics\"}")).path("metrics").asText());
    }

    @Test
    void unexpectedFailureIsAnInternalErrorNotAnException() {
        ports.failNext = new IllegalStateException("the data plane has stopped");
        JsonNode r = call("{\"id\":1,\"op\":\"add-port\",\"spec\":\"nr=5,null\"}");
        assertEquals("internal-error", r.path("error").path("code").asText());
        assertTrue(r.path("error").path("message").asText().contains("stopped"));
    }

    @Test
    void eventLineShape() throws Exception {
        JsonNode e = JSON.readTree(ApiProtocol.eventLine(new PortEvent(PortEvent.GUEST_OPEN, 5, "org.x", null),
                1_700_000_000_123_456L));
        assertEquals("guest-open", e.path("event").asText());
        assertEquals(5, e.path("data").path("nr").asInt());
        assertEquals("org.x", e.path("data").path("name").asText());
        assertEquals(1_700_000_000L, e.path("timestamp").path("seconds").asLong());
        assertEquals(123_456L, e.path("timestamp").path("microseconds").asLong());
    }
}
