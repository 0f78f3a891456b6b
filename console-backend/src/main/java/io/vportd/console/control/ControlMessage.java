package io.vportd.console.control;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One virtio-console control message: {@code struct { le32 id; le16 event; le16 value; }},
 * optionally followed by a payload (RESIZE: two le16; PORT_NAME: the UTF-8 name, no NUL).
 *
 * <p>The static methods are the codec. Decoding never throws: a buffer that is too short or
 * whose bounds are wrong decodes to {@code null}. Whether a decoded message is acceptable from
 * the guest (direction, id range, boolean values) is answered by {@link #checkFromGuest}.
 *
 * @param id      the port id, an unsigned 32-bit value held in an int (DEVICE_READY carries
 *                {@link #NO_ID} from Linux guests)
 * @param event   the event number, 0..65535
 * @param value   the value, 0..65535
 * @param payload the bytes after the header (never null, possibly empty)
 */
public record ControlMessage(int id, int event, int value, byte[] payload) {

    public static final int DEVICE_READY = 0;
    public static final int PORT_ADD = 1;
    public static final int PORT_REMOVE = 2;
    public static final int PORT_READY = 3;
    public static final int CONSOLE_PORT = 4;
    public static final int RESIZE = 5;
    public static final int PORT_OPEN = 6;
    public static final int PORT_NAME = 7;

    /** Number of known events (0..7). */
    public static final int EVENT_COUNT = 8;

    /** The id Linux guests put into DEVICE_READY (0xFFFFFFFF). */
    public static final int NO_ID = 0xFFFF_FFFF;

    /** Size of the fixed header. */
    public static final int HEADER_SIZE = 8;
    /** Size of the RESIZE payload (two le16). */
    public static final int RESIZE_PAYLOAD_SIZE = 4;
    /** Longest port name in UTF-8 bytes. */
    public static final int MAX_NAME_BYTES = 255;
    /** Longest message the device ever sends: a PORT_NAME with the longest name. */
    public static final int MAX_MESSAGE_SIZE = HEADER_SIZE + MAX_NAME_BYTES;

    private static final byte[] EMPTY = new byte[0];

    /** Why a message from the guest is not acceptable. */
    public enum Rejection {
        /** Fewer than 8 bytes, or bounds outside the buffer. */
        SHORT,
        /** Event number above 7. */
        UNKNOWN_EVENT,
        /** A known event that only the device may send (PORT_ADD, RESIZE, ...). */
        WRONG_DIRECTION,
        /** Port id at or above max_nr_ports. */
        ID_OUT_OF_RANGE,
        /** A boolean event whose value is neither 0 nor 1. */
        BAD_VALUE
    }

    public ControlMessage {
        payload = payload == null ? EMPTY : payload;
    }

    /** A header-only message. */
    public ControlMessage(int id, int event, int value) {
        this(id, event, value, EMPTY);
    }

    /** Total encoded length. */
    public int length() {
        return HEADER_SIZE + payload.length;
    }

    /** The port id as an unsigned number. */
    public long unsignedId() {
        return Integer.toUnsignedLong(id);
    }

    /** The name carried by a PORT_NAME message (lenient UTF-8 decoding). */
    public String nameText() {
        return new String(payload, StandardCharsets.UTF_8);
    }

    /** The cols of a RESIZE message read in the given order, or -1 if the payload is short. */
    public int resizeCols(ResizeOrder order) {
        if (payload.length < RESIZE_PAYLOAD_SIZE) {
            return -1;
        }
        return getLe16(payload, order == ResizeOrder.COLS_ROWS ? 0 : 2);
    }

    /** The rows of a RESIZE message read in the given order, or -1 if the payload is short. */
    public int resizeRows(ResizeOrder order) {
        if (payload.length < RESIZE_PAYLOAD_SIZE) {
            return -1;
        }
        return getLe16(payload, order == ResizeOrder.COLS_ROWS ? 2 : 0);
    }

    /** Encodes this message at {@code dst[off]}; returns the length, or -1 if it does not fit. */
    public int encode(byte[] dst, int off) {
        int len = length();
        if (dst == null || off < 0 || off > dst.length - len) {
            return -1;
        }
        encodeHeader(dst, off, id, event, value);
        System.arraycopy(payload, 0, dst, off + HEADER_SIZE, payload.length);
        return len;
    }

    // ------------------------------------------------------------------ codec

    /**
     * Decodes {@code len} bytes at {@code buf[off]}. Returns null when {@code len < 8} or the
     * bounds do not lie inside {@code buf}; never throws. Bytes after the header become the payload.
     */
    public static ControlMessage decode(byte[] buf, int off, int len) {
        if (!headerFits(buf, off, len)) {
            return null;
        }
        byte[] payload = len == HEADER_SIZE ? EMPTY : Arrays.copyOfRange(buf, off + HEADER_SIZE, off + len);
        return new ControlMessage(getLe32(buf, off), getLe16(buf, off + 4), getLe16(buf, off + 6), payload);
    }

    /** True when {@code [off, off+len)} lies inside {@code buf} and holds at least a header. */
    public static boolean headerFits(byte[] buf, int off, int len) {
        return buf != null && off >= 0 && len >= HEADER_SIZE && off <= buf.length - len;
    }

    /**
     * Checks a message the guest sent. The guest may send DEVICE_READY (any id), PORT_READY
     * and PORT_OPEN (id below {@code maxPorts}), each with value 0 or 1.
     *
     * @return null when acceptable, otherwise the reason
     */
    public static Rejection checkFromGuest(int id, int event, int value, int maxPorts) {
        switch (event) {
            case DEVICE_READY -> {
                return value == 0 || value == 1 ? null : Rejection.BAD_VALUE;
            }
            case PORT_READY, PORT_OPEN -> {
                if (Integer.compareUnsigned(id, maxPorts) >= 0) {
                    return Rejection.ID_OUT_OF_RANGE;
                }
                return value == 0 || value == 1 ? null : Rejection.BAD_VALUE;
            }
            case PORT_ADD, PORT_REMOVE, CONSOLE_PORT, RESIZE, PORT_NAME -> {
                return Rejection.WRONG_DIRECTION;
            }
            default -> {
                return Rejection.UNKNOWN_EVENT;
            }
        }
    }

    /** Writes the 8-byte header; the caller guarantees the room. Returns {@link #HEADER_SIZE}. */
    public static int encodeHeader(byte[] dst, int off, int id, int event, int value) {
        putLe32(dst, off, id);
        putLe16(dst, off + 4, event);
        putLe16(dst, off + 6, value);
        return HEADER_SIZE;
    }

    /** Writes a RESIZE message in the given field order; returns its length (12). */
    public static int encodeResize(byte[] dst, int off, int id, int cols, int rows, ResizeOrder order) {
        encodeHeader(dst, off, id, RESIZE, 0);
        boolean colsFirst = order == ResizeOrder.COLS_ROWS;
        putLe16(dst, off + HEADER_SIZE, colsFirst ? cols : rows);
        putLe16(dst, off + HEADER_SIZE + 2, colsFirst ? rows : cols);
        return HEADER_SIZE + RESIZE_PAYLOAD_SIZE;
    }

    /** Writes a PORT_NAME message (value 1, name without NUL); returns its length. */
    public static int encodeName(byte[] dst, int off, int id, byte[] utf8Name) {
        encodeHeader(dst, off, id, PORT_NAME, 1);
        System.arraycopy(utf8Name, 0, dst, off + HEADER_SIZE, utf8Name.length);
        return HEADER_SIZE + utf8Name.length;
    }

    /** The event's protocol name, or {@code EVENT_<n>} for an unknown one. */
    public static String eventName(int event) {
        return switch (event) {
            case DEVICE_READY -> "DEVICE_READY";
            case PORT_ADD -> "PORT_ADD";
            case PORT_REMOVE -> "PORT_REMOVE";
            case PORT_READY -> "PORT_READY";
            case CONSOLE_PORT -> "CONSOLE_PORT";
            case RESIZE -> "RESIZE";
            case PORT_OPEN -> "PORT_OPEN";
            case PORT_NAME -> "PORT_NAME";
            default -> "EVENT_" + event;
        };
    }

    static int getLe16(byte[] b, int off) {
        return (b[off] & 0xFF) | (b[off + 1] & 0xFF) << 8;
    }

    static int getLe32(byte[] b, int off) {
        return (b[off] & 0xFF) | (b[off + 1] & 0xFF) << 8 | (b[off + 2] & 0xFF) << 16 | (b[off + 3] & 0xFF) << 24;
    }

    static void putLe16(byte[] b, int off, int v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
    }

    static void putLe32(byte[] b, int off, int v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
        b[off + 2] = (byte) (v >>> 16);
        b[off + 3] = (byte) (v >>> 24);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ControlMessage m && m.id == id && m.event == event && m.value == value
                && Arrays.equals(m.payload, payload);
    }

    @Override
    public int hashCode() {
        return ((id * 31 + event) * 31 + value) * 31 + Arrays.hashCode(payload);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(eventName(event)).append("(id=").append(unsignedId())
                .append(", value=").append(value);
        if (event == PORT_NAME) {
            sb.append(", name=").append(nameText());
        } else if (payload.length > 0) {
            sb.append(", payload=").append(payload.length).append(" bytes");
        }
        return sb.append(')').toString();
    }
}
