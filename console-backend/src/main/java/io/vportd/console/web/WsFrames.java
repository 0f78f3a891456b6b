package io.vportd.console.web;

import java.nio.ByteBuffer;

/**
 * RFC 6455 framing, server side, without I/O: {@link #poll} takes bytes a browser sent and
 * yields whole messages (fragments joined, control frames between them), {@link #header} writes
 * the header of a frame the server sends (servers never mask). Every limit a client can push
 * against is checked before a byte is copied: frames and messages are at most
 * {@code maxMessage} bytes, control frames 125, client frames must be masked, reserved bits and
 * unknown opcodes are refused. A refusal is a negative code and the connection is to be closed
 * with {@link #closeCode}. Confined to the web console's thread; one decoder per connection,
 * its buffer allocated once.
 */
final class WsFrames {

    static final int OP_CONTINUATION = 0x0;
    static final int OP_TEXT = 0x1;
    static final int OP_BINARY = 0x2;
    static final int OP_CLOSE = 0x8;
    static final int OP_PING = 0x9;
    static final int OP_PONG = 0xA;

    /** {@link #poll}: no whole message yet. */
    static final int NEED_MORE = 0;
    static final int ERR_UNMASKED = -1;
    static final int ERR_RESERVED_BITS = -2;
    static final int ERR_BAD_OPCODE = -3;
    static final int ERR_CONTROL_TOO_LONG = -4;
    static final int ERR_CONTROL_FRAGMENTED = -5;
    static final int ERR_TOO_LARGE = -6;
    static final int ERR_UNEXPECTED_CONTINUATION = -7;
    static final int ERR_EXPECTED_CONTINUATION = -8;

    /** Close status codes (RFC 6455 section 7.4.1). */
    static final int CLOSE_NORMAL = 1000;
    static final int CLOSE_PROTOCOL_ERROR = 1002;
    static final int CLOSE_UNSUPPORTED = 1003;
    static final int CLOSE_TOO_BIG = 1009;
    static final int CLOSE_POLICY = 1008;

    private final byte[] message;
    private int messageLength;
    /** Opcode of the message being joined from fragments, or -1. */
    private int fragmentedOpcode = -1;
    private int lastOpcode;
    private final byte[] control = new byte[125];
    private int controlLength;

    WsFrames(int maxMessage) {
        this.message = new byte[maxMessage];
    }

    /**
     * Decodes at most one frame from {@code in} (consumed only when whole). Returns the opcode of a
     * complete message ({@link #OP_TEXT}, {@link #OP_BINARY}, or a control opcode), {@link #NEED_MORE},
     * or a negative error.
     */
    int poll(ByteBuffer in) {
        int start = in.position();
        int avail = in.remaining();
        if (avail < 2) {
            return NEED_MORE;
        }
        int b0 = in.get(start) & 0xff;
        int b1 = in.get(start + 1) & 0xff;
        boolean fin = (b0 & 0x80) != 0;
        int opcode = b0 & 0x0f;
        if ((b0 & 0x70) != 0) {
            return ERR_RESERVED_BITS;
        }
        boolean isControl = (opcode & 0x8) != 0;
        if (opcode != OP_CONTINUATION && opcode != OP_TEXT && opcode != OP_BINARY
                && opcode != OP_CLOSE && opcode != OP_PING && opcode != OP_PONG) {
            return ERR_BAD_OPCODE;
        }
        if ((b1 & 0x80) == 0) {
            return ERR_UNMASKED;
        }
        long len = b1 & 0x7f;
        int at = 2;
        if (len == 126) {
            if (avail < 4) {
                return NEED_MORE;
            }
            len = ((in.get(start + 2) & 0xff) << 8) | (in.get(start + 3) & 0xff);
            at = 4;
        } else if (len == 127) {
            if (avail < 10) {
                return NEED_MORE;
            }
            len = in.getLong(start + 2); // the top bit set reads negative: too large either way
            at = 10;
        }
        if (isControl) {
            if (len < 0 || len > 125) { // a 64-bit length with its top bit set reads negative
                return ERR_CONTROL_TOO_LONG;
            }
            if (!fin) {
                return ERR_CONTROL_FRAGMENTED;
            }
        } else if (len < 0 || len > message.length
                || (opcode == OP_CONTINUATION ? messageLength + len > message.length : false)) {
            return ERR_TOO_LARGE;
        }
        if (!isControl) {
            if (opcode == OP_CONTINUATION && fragmentedOpcode < 0) {
                return ERR_UNEXPECTED_CONTINUATION;
            }
            if (opcode != OP_CONTINUATION && fragmentedOpcode >= 0) {
                return ERR_EXPECTED_CONTINUATION;
            }
        }
        int n = (int) len;
        if (avail < at + 4 + n) {
            return NEED_MORE;
        }
        int maskAt = start + at;
        int payloadAt = maskAt + 4;
        byte[] dst;
        int dstOff;
        if (isControl) {
            dst = control;
            dstOff = 0;
            controlLength = n;
        } else {
            if (opcode != OP_CONTINUATION) {
                messageLength = 0;
                fragmentedOpcode = opcode;
            }
            dst = message;
            dstOff = messageLength;
            messageLength += n;
        }
        for (int i = 0; i < n; i++) {
            dst[dstOff + i] = (byte) (in.get(payloadAt + i) ^ in.get(maskAt + (i & 3)));
        }
        in.position(payloadAt + n);
        if (isControl) {
            lastOpcode = opcode;
            return opcode;
        }
        if (!fin) {
            return NEED_MORE;
        }
        lastOpcode = fragmentedOpcode;
        fragmentedOpcode = -1;
        return lastOpcode;
    }

    /** The payload of the message {@link #poll} returned last. */
    byte[] payload() {
        return (lastOpcode & 0x8) != 0 ? control : message;
    }

    int payloadLength() {
        return (lastOpcode & 0x8) != 0 ? controlLength : messageLength;
    }

    /** The close status to send for a {@link #poll} error. */
    static int closeCode(int error) {
        return error == ERR_TOO_LARGE ? CLOSE_TOO_BIG : CLOSE_PROTOCOL_ERROR;
    }

    static String describe(int error) {
        return switch (error) {
            case ERR_UNMASKED -> "an unmasked frame";
            case ERR_RESERVED_BITS -> "reserved bits set";
            case ERR_BAD_OPCODE -> "an unknown opcode";
            case ERR_CONTROL_TOO_LONG -> "a control frame over 125 bytes";
            case ERR_CONTROL_FRAGMENTED -> "a fragmented control frame";
            case ERR_TOO_LARGE -> "a message over the size limit";
            case ERR_UNEXPECTED_CONTINUATION -> "a continuation without a message";
            case ERR_EXPECTED_CONTINUATION -> "a new message inside a fragmented one";
            default -> "error " + error;
        };
    }

    /** Bytes of the header {@link #header} writes for a payload of {@code len}. */
    static int headerLength(int len) {
        return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
    }

    /** Writes an unmasked, final frame header for {@code len} payload bytes. */
    static void header(ByteBuffer out, int opcode, int len) {
        out.put((byte) (0x80 | opcode));
        if (len < 126) {
            out.put((byte) len);
        } else if (len <= 0xffff) {
            out.put((byte) 126);
            out.putShort((short) len);
        } else {
            out.put((byte) 127);
            out.putLong(len);
        }
    }
}
