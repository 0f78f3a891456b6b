package io.vportd.console.ctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * A blocking client of vportd's management socket: sends one request at a time and returns its
 * response; event lines that arrive meanwhile are kept for {@link #nextEvent()}. Not thread-safe.
 */
public final class ApiClient implements AutoCloseable {

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private final SocketChannel channel;
    /** Longest response line accepted (metrics of hundreds of ports run to a few MiB). */
    static final int MAX_LINE = 64 << 20;

    private ByteBuffer in = ByteBuffer.allocate(64 << 10);
    private final Deque<JsonNode> events = new ArrayDeque<>();
    private long nextId = 1;

    private ApiClient(SocketChannel channel) {
        this.channel = channel;
    }

    public static ApiClient connect(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot connect to the management socket " + socket + ": " + e.getMessage(), e);
        }
        return new ApiClient(ch);
    }

    /** A new request object {@code {"id": n, "op": op}} to add arguments to. */
    public ObjectNode request(String op) {
        ObjectNode r = JSON.createObjectNode();
        r.put("id", nextId++);
        r.put("op", op);
        return r;
    }

    /**
     * A request built elsewhere ({@code op} and its arguments, no {@code id}) as this client sends
     * it: a new request of the same op carrying every argument.
     */
    public ObjectNode numbered(ObjectNode given) {
        ObjectNode r = request(given.get("op").asText());
        given.fieldNames().forEachRemaining(f -> {
            if (!f.equals("op") && !f.equals("id")) {
                r.set(f, given.get(f));
            }
        });
        return r;
    }

    /** Sends the request and returns its response (ok or error). */
    public JsonNode call(ObjectNode request) throws IOException {
        sendLine(JSON.writeValueAsString(request));
        JsonNode id = request.get("id");
        while (true) {
            JsonNode msg = readMessage();
            if (msg.has("event")) {
                events.add(msg);
                continue;
            }
            JsonNode got = msg.get("id");
            if (id == null || got == null || got.isNull() || sameId(id, got)) {
                return msg;
            }
        }
    }

    private static boolean sameId(JsonNode a, JsonNode b) {
        if (a.isNumber() && b.isNumber()) {
            return a.asLong() == b.asLong(); // 1 may come back as an int node for a long node sent
        }
        return a.equals(b);
    }

    /** Sends a raw line (tests of malformed input) and returns the next non-event message. */
    public JsonNode callRaw(String line) throws IOException {
        sendLine(line);
        while (true) {
            JsonNode msg = readMessage();
            if (msg.has("event")) {
                events.add(msg);
                continue;
            }
            return msg;
        }
    }

    /** The next line the daemon sends, whatever it is (e.g. a refusal sent on connect). */
    public JsonNode readNext() throws IOException {
        if (!events.isEmpty()) {
            return events.poll();
        }
        return readMessage();
    }

    /** The next event line, waiting for one if none is kept. */
    public JsonNode nextEvent() throws IOException {
        if (!events.isEmpty()) {
            return events.poll();
        }
        while (true) {
            JsonNode msg = readMessage();
            if (msg.has("event")) {
                return msg;
            }
        }
    }

    private void sendLine(String line) throws IOException {
        ByteBuffer b = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    private JsonNode readMessage() throws IOException {
        while (true) {
            in.flip();
            for (int i = in.position(); i < in.limit(); i++) {
                if (in.get(i) == '\n') {
                    String line = new String(in.array(), in.position(), i - in.position(), StandardCharsets.UTF_8);
                    in.position(i + 1);
                    in.compact();
                    return JSON.readTree(line);
                }
            }
            in.compact();
            if (!in.hasRemaining()) {
                if (in.capacity() >= MAX_LINE) {
                    throw new IOException("the daemon sent a line longer than " + MAX_LINE + " bytes");
                }
                ByteBuffer bigger = ByteBuffer.allocate(Math.min(MAX_LINE, in.capacity() * 2));
                in.flip();
                bigger.put(in);
                in = bigger;
            }
            if (channel.read(in) < 0) {
                throw new IOException("the daemon closed the management connection");
            }
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }
}
