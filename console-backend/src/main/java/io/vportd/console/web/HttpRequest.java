package io.vportd.console.web;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One HTTP/1.1 request head as a browser sends it, parsed without I/O and within limits: the
 * head is at most {@link #MAX_HEAD} bytes, header names are lower-cased, a header given twice
 * that decides access ({@code host}, {@code origin}, {@code cookie}, {@code sec-websocket-key})
 * makes the request invalid. The query string is kept apart from the path and never logged.
 */
record HttpRequest(String method, String path, String query, Map<String, String> headers, int headLength) {

    static final int MAX_HEAD = 8192;

    /** Thrown for a request that is not HTTP or breaks a limit; {@link #status} is the answer. */
    static final class BadRequest extends Exception {
        final int status;

        BadRequest(int status, String message) {
            super(message, null, false, false);
            this.status = status;
        }
    }

    String header(String name) {
        return headers.get(name);
    }

    /**
     * The request whose head {@code in} holds (from position 0 to its position), or null when the
     * head is not complete yet.
     */
    static HttpRequest parse(ByteBuffer in) throws BadRequest {
        int end = -1;
        int limit = in.position();
        for (int i = 3; i < limit; i++) {
            if (in.get(i) == '\n' && in.get(i - 1) == '\r' && in.get(i - 2) == '\n' && in.get(i - 3) == '\r') {
                end = i + 1;
                break;
            }
        }
        if (end < 0) {
            if (limit >= MAX_HEAD) {
                throw new BadRequest(431, "request head over " + MAX_HEAD + " bytes");
            }
            return null;
        }
        byte[] raw = new byte[end];
        in.get(0, raw);
        String head = new String(raw, StandardCharsets.ISO_8859_1);
        String[] lines = head.split("\r\n");
        if (lines.length == 0) { // nothing but the blank line (found by WebFuzzTest)
            throw new BadRequest(400, "an empty request");
        }
        String[] first = lines[0].split(" ", -1);
        if (first.length != 3 || !first[2].startsWith("HTTP/1.") || first[0].isEmpty() || !first[1].startsWith("/")) {
            throw new BadRequest(400, "not an HTTP/1.x request line");
        }
        Map<String, String> headers = new HashMap<>();
        for (int i = 1; i < lines.length; i++) {
            String line = lines[i];
            if (line.isEmpty()) {
                continue;
            }
            int colon = line.indexOf(':');
            if (colon <= 0) {
                throw new BadRequest(400, "a header line without a name");
            }
            String name = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).trim();
            String before = headers.putIfAbsent(name, value);
            if (before != null) {
                if (name.equals("host") || name.equals("origin") || name.equals("cookie")
                        || name.equals("sec-websocket-key") || name.equals("content-length")) {
                    throw new BadRequest(400, "header " + name + " given twice");
                }
                headers.put(name, before + ", " + value);
            }
        }
        String target = first[1];
        int q = target.indexOf('?');
        String path = q < 0 ? target : target.substring(0, q);
        String query = q < 0 ? "" : target.substring(q + 1);
        return new HttpRequest(first[0], path, query, Map.copyOf(headers), end);
    }

    /** The value of {@code key} in a query string or form body ({@code a=1&b=2}), URL-decoded, or null. */
    static String param(String encoded, String key) {
        for (String pair : encoded.split("&")) {
            int eq = pair.indexOf('=');
            String k = eq < 0 ? pair : pair.substring(0, eq);
            if (k.equals(key)) {
                try {
                    return java.net.URLDecoder.decode(eq < 0 ? "" : pair.substring(eq + 1), StandardCharsets.UTF_8);
                } catch (IllegalArgumentException e) {
                    return null;
                }
            }
        }
        return null;
    }

    /** The value of cookie {@code name} in a Cookie header, or null. */
    static String cookie(String header, String name) {
        if (header == null) {
            return null;
        }
        for (String part : header.split(";")) {
            String p = part.trim();
            if (p.startsWith(name + "=")) {
                return p.substring(name.length() + 1);
            }
        }
        return null;
    }
}
