package io.vportd.console.api;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.Map;

/**
 * The management API's lines: one JSON value read into a tree of Jackson's nodes, and a tree
 * written back as one line. It uses Jackson's streaming parser and generator, not an
 * {@code ObjectMapper}. Building a mapper loads about 380 classes of data binding that the API
 * never uses; in an idle daemon with {@code --api-socket} they held about 10 MiB and took some
 * 200 ms of its start when no AOT cache supplied them.
 *
 * <p>Reading keeps the rules the API had with a mapper: a duplicate key, anything after the
 * value, or malformed text is a {@link JsonProcessingException}. Integers become int, long or big
 * integer nodes by size, other numbers double nodes. Nesting is limited to {@link #MAX_DEPTH}
 * levels; a request needs three. Writing gives the text a mapper gave for the same tree.
 */
final class JsonLine {

    /** Deepest nesting a line may have; a deeper one is malformed. */
    static final int MAX_DEPTH = 64;

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).build())
            .build();

    private JsonLine() {
    }

    /**
     * The JSON value {@code line} holds, or null when it holds only white space.
     *
     * @throws JsonProcessingException malformed text, a duplicate key, nesting deeper than
     *                                 {@link #MAX_DEPTH}, or a token after the value
     */
    static JsonNode read(String line) throws JsonProcessingException {
        try (JsonParser p = FACTORY.createParser(line)) {
            JsonNode root = io.vportd.console.cli.Trees.first(p);
            if (root == null) {
                return null;
            }
            JsonToken after = p.nextToken();
            if (after != null) {
                throw new JsonParseException(p, "Trailing token (of type " + after + ") found after the value");
            }
            return root;
        } catch (JsonProcessingException e) {
            throw e;
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a String source has no I/O to fail
        }
    }

    /** {@code node} as one line of JSON text. */
    static String write(JsonNode node) {
        StringWriter w = new StringWriter(128);
        try (JsonGenerator g = FACTORY.createGenerator(w)) {
            write(g, node, 0);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a StringWriter has no I/O to fail
        }
        return w.toString();
    }

    private static void write(JsonGenerator g, JsonNode n, int depth) throws IOException {
        if (depth > 2 * MAX_DEPTH) {
            // Trees are this daemon's responses, which hold at most a value read above (at most
            // MAX_DEPTH deep) a few levels down: never this deep.
            throw new IllegalArgumentException("a JSON tree deeper than " + 2 * MAX_DEPTH + " levels");
        }
        switch (n.getNodeType()) {
            case OBJECT -> {
                g.writeStartObject();
                for (Map.Entry<String, JsonNode> e : n.properties()) {
                    g.writeFieldName(e.getKey());
                    write(g, e.getValue(), depth + 1);
                }
                g.writeEndObject();
            }
            case ARRAY -> {
                g.writeStartArray();
                for (JsonNode c : n) {
                    write(g, c, depth + 1);
                }
                g.writeEndArray();
            }
            case STRING -> g.writeString(n.textValue());
            case NUMBER -> {
                switch (n.numberType()) {
                    case INT -> g.writeNumber(n.intValue());
                    case LONG -> g.writeNumber(n.longValue());
                    case BIG_INTEGER -> g.writeNumber(n.bigIntegerValue());
                    case FLOAT -> g.writeNumber(n.floatValue());
                    case DOUBLE -> g.writeNumber(n.doubleValue());
                    case BIG_DECIMAL -> g.writeNumber(n.decimalValue());
                }
            }
            case BOOLEAN -> g.writeBoolean(n.booleanValue());
            case NULL, MISSING -> g.writeNull();
            default -> throw new IllegalArgumentException("no JSON text for a " + n.getNodeType() + " node");
        }
    }
}
