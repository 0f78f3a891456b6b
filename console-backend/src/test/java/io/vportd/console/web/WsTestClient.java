package io.vportd.console.web;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** A bare client for the tests: raw HTTP requests, a WebSocket upgrade, masked frames out, frames in. */
final class WsTestClient implements AutoCloseable {

    final Socket socket;
    final DataInputStream in;
    final OutputStream out;
    String head;

    WsTestClient(int port) throws IOException {
        socket = new Socket("127.0.0.1", port);
        socket.setSoTimeout(30_000);
        in = new DataInputStream(socket.getInputStream());
        out = socket.getOutputStream();
    }

    /** Sends {@code request} and reads the response head; returns the status code. */
    int request(String request) throws IOException {
        out.write(request.getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
        return readHead();
    }

    int readHead() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int state = 0;
        while (state < 4) {
            int c = in.read();
            if (c < 0) {
                throw new IOException("connection ended in the response head: " + b);
            }
            b.write(c);
            state = (c == '\r' && (state == 0 || state == 2)) || (c == '\n' && (state == 1 || state == 3)) ? state + 1
                    : c == '\r' ? 1 : 0;
        }
        head = b.toString(StandardCharsets.ISO_8859_1);
        return Integer.parseInt(head.substring(9, 12));
    }

    String header(String name) {
        for (String line : head.split("\r\n")) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).equalsIgnoreCase(name)) {
                return line.substring(colon + 1).trim();
            }
        }
        return null;
    }

    static String get(String path, int port, String cookie, String origin) {
        return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\n"
                + (cookie == null ? "" : "Cookie: " + cookie + "\r\n")
                + (origin == null ? "" : "Origin: " + origin + "\r\n") + "\r\n";
    }

    static String upgrade(String path, int port, String cookie, String origin) {
        String key = Base64.getEncoder().encodeToString("0123456789abcdef".getBytes(StandardCharsets.ISO_8859_1));
        return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nUpgrade: websocket\r\n"
                + "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n"
                + (cookie == null ? "" : "Cookie: " + cookie + "\r\n")
                + (origin == null ? "" : "Origin: " + origin + "\r\n") + "\r\n";
    }

    void send(byte[] frame) throws IOException {
        out.write(frame);
        out.flush();
    }

    /** One frame: [opcode, payload]. */
    Object[] frame() throws IOException {
        int b0 = in.readUnsignedByte();
        int b1 = in.readUnsignedByte();
        long len = b1 & 0x7f;
        if (len == 126) {
            len = in.readUnsignedShort();
        } else if (len == 127) {
            len = in.readLong();
        }
        byte[] p = new byte[(int) len];
        in.readFully(p);
        return new Object[] {b0 & 0x0f, p};
    }

    /** Frames until a text frame; returns its text. */
    String text() throws IOException {
        while (true) {
            Object[] f = frame();
            if ((int) f[0] == WsFrames.OP_TEXT) {
                return new String((byte[]) f[1], StandardCharsets.UTF_8);
            }
            if ((int) f[0] == WsFrames.OP_CLOSE) {
                throw new IOException("closed: " + closeCode((byte[]) f[1]));
            }
        }
    }

    static int closeCode(byte[] p) {
        return p.length < 2 ? -1 : ((p[0] & 0xff) << 8) | (p[1] & 0xff);
    }

    /** Reads frames until a close frame; returns its status code. */
    int awaitClose() throws IOException {
        while (true) {
            Object[] f = frame();
            if ((int) f[0] == WsFrames.OP_CLOSE) {
                return closeCode((byte[]) f[1]);
            }
        }
    }

    InputStream raw() {
        return in;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
