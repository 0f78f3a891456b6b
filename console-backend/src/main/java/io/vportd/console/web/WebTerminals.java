package io.vportd.console.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.console.api.PortManager;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.endpoint.WebInputs;
import io.vportd.console.portlog.LogFollower;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The rules of a port's terminal: the replay ring first, then live output (moved from the port's
 * follower as far as the browser's buffer takes it); one interactive writer per port, read-only
 * viewers besides. A viewer becomes the writer by sending {@code {"type":"take"}} (the page's
 * "Take control" button); the former writer is told it is a viewer now. Input and resizes from a
 * viewer are refused and counted. Confined to the web console's thread.
 */
final class WebTerminals {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final WebServer server;
    private final PortManager ports;
    private final WebStats stats;
    /** The interactive writer of each port that has one. */
    private final Map<Integer, WebConnection> writers = new HashMap<>();
    private final byte[] chunk = new byte[WebRoutes.CHUNK];

    WebTerminals(WebServer server, PortManager ports, WebStats stats) {
        this.server = server;
        this.ports = ports;
        this.stats = stats;
    }

    /** A new terminal connection: the writer if it asks and the port has none, else a viewer. */
    void attach(WebConnection c, boolean wantsWrite) {
        if (wantsWrite && !writers.containsKey(c.port)) {
            writers.put(c.port, c);
            c.writer = true;
        }
    }

    boolean hasWriter(int port) {
        return writers.containsKey(port);
    }

    /** Typed bytes: to the port's input pipe from the writer, refused from a viewer. */
    void input(WebConnection c, byte[] b, int len) {
        if (!c.writer) {
            stats.inputRefused.incrementAndGet();
            c.queueText("{\"type\":\"read-only\"}");
            return;
        }
        WebInputs.Input in = WebInputs.of(c.port);
        if (in == null) {
            stats.inputRefused.incrementAndGet();
            c.queueText("{\"type\":\"no-input\"}");
            return;
        }
        int off = 0;
        while (off < len) {
            int n = in.write(b, off, len - off);
            if (n <= 0) {
                break;
            }
            off += n;
        }
        if (off < len) {
            stats.inputDroppedBytes.addAndGet(len - off);
            server.clientLog.log(Level.WARNING, "web console: port {0} did not take {1} typed bytes; dropped", c.port, len - off);
            c.queueText("{\"type\":\"input-dropped\",\"bytes\":" + (len - off) + "}");
        }
    }

    /** A text message on a terminal; false when it is none the page sends (the caller closes). */
    boolean text(WebConnection c, byte[] b, int len) {
        JsonNode m;
        try {
            m = JSON.readTree(new String(b, 0, len, StandardCharsets.UTF_8));
        } catch (java.io.IOException e) {
            return false;
        }
        String type = m == null || !m.isObject() ? null : m.path("type").asText(null);
        if ("take".equals(type)) {
            take(c);
            return true;
        }
        if (!"resize".equals(type)) {
            return false;
        }
        int cols = m.path("cols").asInt(-1);
        int rows = m.path("rows").asInt(-1);
        if (cols < 1 || cols > 65535 || rows < 1 || rows > 65535) {
            return false;
        }
        if (!c.writer) {
            stats.inputRefused.incrementAndGet();
        } else if (c.console) {
            try {
                ports.resize(c.port, cols, rows);
            } catch (PortRequestException e) {
                c.queueText("{\"type\":\"error\",\"message\":" + JSON.valueToTree(e.getMessage()) + "}");
            }
        }
        return true;
    }

    /** {@code c} becomes its port's writer; the writer before it is told it is a viewer now. */
    private void take(WebConnection c) {
        WebConnection before = writers.put(c.port, c);
        if (before != null && before != c) {
            before.writer = false;
            if (!before.queueText("{\"type\":\"role\",\"writer\":false}")) {
                server.dropSlow(before, "that lost the writer role");
            }
        }
        c.writer = true;
        c.queueText("{\"type\":\"role\",\"writer\":true}");
    }

    /** Moves a terminal's live output into its outbound buffer as far as it fits. */
    void pumpOutput(WebConnection c) {
        LogFollower f = c.follower;
        if (f.overflowed()) {
            server.dropSlow(c, "viewing port " + c.port); // the data plane counted it too (log followers dropped)
            return;
        }
        while (c.outFree() >= WebRoutes.CHUNK + 4) {
            int n = f.read(chunk, 0);
            if (n == 0) {
                return;
            }
            if (n < 0) {
                c.queueText("{\"type\":\"end\",\"reason\":\"port-removed\"}");
                c.queueClose(WsFrames.CLOSE_NORMAL, "port removed");
                return;
            }
            c.queueFrame(WsFrames.OP_BINARY, chunk, 0, n);
        }
    }

    void closed(WebConnection c) {
        if (c.follower != null) {
            c.follower.cancel();
        }
        if (c.writer) {
            writers.remove(c.port, c);
        }
    }
}
