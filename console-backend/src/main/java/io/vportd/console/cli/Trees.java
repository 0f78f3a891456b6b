package io.vportd.console.cli;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayDeque;

/**
 * Trees of Jackson's nodes read from a streaming parser, without an {@code ObjectMapper}: the
 * management API's JSON lines and the {@code --config} file's TOML. A mapper loads about 380
 * classes of data binding that neither uses (about 10 MiB resident in an idle daemon, and some
 * 200 ms of its start when no AOT cache supplies them). The trees are those a mapper's
 * {@code readTree} gives: integers become int, long or big-integer nodes by size, other
 * numbers double nodes.
 */
public final class Trees {

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private Trees() {
    }

    /**
     * The first value of {@code p}'s text, or null when the text holds none (only white space).
     * It is built from the parser's tokens without recursion; the parser is left on the value's
     * last token, so a caller can check what follows.
     *
     * @throws IOException what the parser throws ({@link com.fasterxml.jackson.core.JsonProcessingException}
     *                     for malformed text), or a {@link JsonParseException} if the text ends inside the value
     */
    public static JsonNode first(JsonParser p) throws IOException {
        JsonToken t = p.nextToken();
        return t == null ? null : value(p, t);
    }

    /** The value that starts at token {@code first}, {@code p}'s current token (see {@link #first}). */
    private static JsonNode value(JsonParser p, JsonToken first) throws IOException {
        ArrayDeque<JsonNode> open = new ArrayDeque<>();
        JsonNode root = null;
        String field = null;
        JsonToken t = first;
        while (true) {
            JsonNode v;
            switch (t) {
                case FIELD_NAME -> {
                    field = p.currentName();
                    v = null;
                }
                case START_OBJECT -> v = NODES.objectNode();
                case START_ARRAY -> v = NODES.arrayNode();
                case END_OBJECT, END_ARRAY -> {
                    open.pop();
                    v = null;
                }
                case VALUE_STRING -> v = NODES.textNode(p.getText());
                case VALUE_NUMBER_INT -> v = switch (p.getNumberType()) {
                    case INT -> NODES.numberNode(p.getIntValue());
                    case LONG -> NODES.numberNode(p.getLongValue());
                    default -> NODES.numberNode(p.getBigIntegerValue());
                };
                case VALUE_NUMBER_FLOAT -> v = NODES.numberNode(p.getDoubleValue());
                case VALUE_TRUE -> v = NODES.booleanNode(true);
                case VALUE_FALSE -> v = NODES.booleanNode(false);
                case VALUE_NULL -> v = NODES.nullNode();
                default -> throw new JsonParseException(p, "unexpected token " + t);
            }
            if (v != null) {
                JsonNode parent = open.peek();
                if (parent == null) {
                    root = v;
                } else if (parent instanceof ObjectNode o) {
                    o.set(field, v);
                } else {
                    ((ArrayNode) parent).add(v);
                }
                if (v.isContainerNode()) {
                    open.push(v);
                }
            }
            if (open.isEmpty()) {
                return root;
            }
            t = p.nextToken();
            if (t == null) {
                throw new JsonParseException(p, "Unexpected end of the line inside a value");
            }
        }
    }

}
