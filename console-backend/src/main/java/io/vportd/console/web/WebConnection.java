package io.vportd.console.web;

import io.vportd.console.portlog.LogFollower;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * One browser connection: first an HTTP request, then (after an upgrade) a WebSocket. Its
 * outbound buffer is bounded ({@link #OUT_CAPACITY}, plus the replay ring for a terminal): what a
 * browser does not take stays there, and when something does not fit the connection is dropped
 * (counted), never waited for. Confined to the web console's thread.
 */
final class WebConnection {

    /** Outbound bytes a browser may leave untaken. */
    static final int OUT_CAPACITY = 256 * 1024;
    /** Largest message a browser may send (typing, a paste, a resize). */
    static final int MAX_MESSAGE = 64 * 1024;
    /** HTTP head plus a login form. */
    static final int HTTP_IN = HttpRequest.MAX_HEAD + 4096;

    enum Kind { HTTP, EVENTS, TERMINAL }

    final SocketChannel channel;
    final SelectionKey key;
    final long openedNanos = System.nanoTime();
    Kind kind = Kind.HTTP;
    ByteBuffer in = ByteBuffer.allocate(HTTP_IN);
    /** Write mode: bytes queued for the browser. */
    ByteBuffer out = ByteBuffer.allocate(OUT_CAPACITY);
    WsFrames frames;
    /** After the last byte queued is sent, close. */
    boolean closeAfterFlush;
    boolean closed;
    // terminal connections
    int port = -1;
    boolean console;
    boolean writer;
    LogFollower follower;

    WebConnection(SocketChannel channel, SelectionKey key) {
        this.channel = channel;
        this.key = key;
    }

    /** Becomes a WebSocket: the input buffer holds a whole message, the output at least {@code outCapacity}. */
    void upgraded(Kind kind, int outCapacity) {
        this.kind = kind;
        this.frames = new WsFrames(MAX_MESSAGE);
        ByteBuffer bigger = ByteBuffer.allocate(MAX_MESSAGE + 14);
        in.flip();
        bigger.put(in); // a browser may send its first frame right behind the request
        in = bigger;
        if (outCapacity > out.capacity()) {
            ByteBuffer o = ByteBuffer.allocate(outCapacity);
            out.flip();
            o.put(out);
            out = o;
        }
    }

    /**
     * Queues raw bytes (an HTTP response). A response is ours and whole (a page, or a static file
     * such as xterm.js, larger than the usual bound): the buffer grows to hold it once.
     */
    boolean queueRaw(byte[] b) {
        if (out.remaining() < b.length) {
            if (kind != Kind.HTTP) {
                return false;
            }
            ByteBuffer o = ByteBuffer.allocate(out.position() + b.length);
            out.flip();
            o.put(out);
            out = o;
        }
        out.put(b);
        return true;
    }

    /** Queues a WebSocket frame; false when it does not fit (the caller drops the connection). */
    boolean queueFrame(int opcode, byte[] b, int off, int len) {
        if (out.remaining() < WsFrames.headerLength(len) + len) {
            return false;
        }
        WsFrames.header(out, opcode, len);
        out.put(b, off, len);
        return true;
    }

    boolean queueText(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return queueFrame(WsFrames.OP_TEXT, b, 0, b.length);
    }

    /** Queues a close frame with {@code code} if it fits, and closes once it is sent. */
    void queueClose(int code, String reason) {
        byte[] r = reason.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(r.length, 123);
        byte[] p = new byte[2 + n];
        p[0] = (byte) (code >> 8);
        p[1] = (byte) code;
        System.arraycopy(r, 0, p, 2, n);
        queueFrame(WsFrames.OP_CLOSE, p, 0, p.length);
        closeAfterFlush = true;
    }

    /** Bytes free in the outbound buffer. */
    int outFree() {
        return out.remaining();
    }

    boolean hasOutput() {
        return out.position() > 0;
    }

    /** Sends what the socket takes now; returns false when the connection broke. */
    boolean flush() {
        if (out.position() == 0) {
            return true;
        }
        out.flip();
        try {
            channel.write(out);
        } catch (IOException e) {
            out.compact();
            return false;
        }
        out.compact();
        if (key.isValid()) {
            key.interestOps(out.position() > 0 ? SelectionKey.OP_READ | SelectionKey.OP_WRITE : SelectionKey.OP_READ);
        }
        return true;
    }
}
