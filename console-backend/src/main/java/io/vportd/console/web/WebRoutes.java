package io.vportd.console.web;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vportd.console.api.ApiProtocol;
import io.vportd.console.api.PortManager;
import io.vportd.console.device.PortEvent;
import io.vportd.console.device.PortRequestException;
import io.vportd.console.device.PortStatus;
import io.vportd.console.endpoint.WebInputs;
import io.vportd.console.portlog.LogFollower;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.List;

/**
 * What the web console answers: the pages, the login, the WebSocket upgrades and frames of the
 * two sockets (a device's port list with its events; a port's terminal, whose rules are in
 * {@link WebTerminals}). Confined to the web console's thread.
 */
final class WebRoutes {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /** Terminal output per frame. */
    static final int CHUNK = 16 * 1024;

    private final WebServer server;
    private final WebAuth auth;
    private final PortManager ports;
    private final String device;
    private final WebStats stats;
    private final WebPages pages;
    private final WebTerminals terminals;

    WebRoutes(WebServer server, WebAuth auth, PortManager ports, String device, WebStats stats) {
        this.server = server;
        this.auth = auth;
        this.ports = ports;
        this.device = device;
        this.stats = stats;
        this.pages = new WebPages(device);
        this.terminals = new WebTerminals(server, ports, stats);
    }

    // ---- HTTP ----

    void http(WebConnection c) {
        HttpRequest r;
        try {
            r = HttpRequest.parse(c.in);
        } catch (HttpRequest.BadRequest e) {
            stats.badRequests.incrementAndGet();
            server.clientLog.log(Level.WARNING, "web console: bad request: {0}", e.getMessage());
            refuse(c, e.status, e.getMessage());
            return;
        }
        if (r == null) {
            return;
        }
        if (!auth.hostAllowed(r)) {
            stats.originRefused.incrementAndGet();
            server.clientLog.log(Level.WARNING, "web console: request for a foreign Host refused");
            refuse(c, 403, "Forbidden: unknown Host");
            return;
        }
        String path = r.path();
        if (r.method().equals("GET") && path.startsWith("/static/")) {
            byte[] body = WebPages.asset(path.substring("/static/".length()));
            if (body == null) {
                refuse(c, 404, "Not Found");
            } else {
                respond(c, 200, WebPages.contentType(path), body, "Cache-Control: max-age=3600\r\n");
            }
            return;
        }
        if (path.equals("/favicon.ico")) {
            refuse(c, 404, "Not Found");
            return;
        }
        if (r.method().equals("POST") && path.equals("/login")) {
            login(c, r);
            return;
        }
        if (!r.method().equals("GET")) {
            refuse(c, 405, "Method Not Allowed");
            return;
        }
        if (!auth.authenticated(r)) {
            stats.authFailures.incrementAndGet();
            if (path.startsWith("/ws/")) {
                refuse(c, 401, "Unauthorized");
            } else {
                respond(c, 401, "text/html; charset=utf-8", pages.login(path, false), "");
            }
            return;
        }
        String base = "/d/" + device + "/";
        if (path.equals("/")) {
            respond(c, 303, "text/plain", new byte[0], "Location: " + base + "\r\n");
        } else if (path.equals(base)) {
            respond(c, 200, "text/html; charset=utf-8", pages.device(), "");
        } else if (path.startsWith(base + "port/") && portNumber(path, base + "port/") >= 0) {
            respond(c, 200, "text/html; charset=utf-8", pages.terminal(portNumber(path, base + "port/")), "");
        } else if (path.startsWith("/ws/")) {
            upgrade(c, r, path.substring(3), base);
        } else {
            refuse(c, 404, "Not Found");
        }
    }

    private static int portNumber(String path, String prefix) {
        String s = path.substring(prefix.length());
        if (s.isEmpty() || s.length() > 4 || !s.chars().allMatch(Character::isDigit)) {
            return -1;
        }
        return Integer.parseInt(s);
    }

    private void login(WebConnection c, HttpRequest r) {
        String o = r.header("origin");
        if (o != null && !auth.originAllowed(r)) {
            stats.originRefused.incrementAndGet();
            server.clientLog.log(Level.WARNING, "web console: login from a foreign Origin refused");
            refuse(c, 403, "Forbidden: foreign Origin");
            return;
        }
        int length;
        try {
            length = Integer.parseInt(r.header("content-length") == null ? "-1" : r.header("content-length"));
        } catch (NumberFormatException e) {
            length = -1;
        }
        if (length < 0 || length > 4096) {
            stats.badRequests.incrementAndGet();
            refuse(c, length < 0 ? 411 : 413, "the login form needs a Content-Length up to 4096");
            return;
        }
        if (c.in.position() < r.headLength() + length) {
            return; // the body is still coming
        }
        byte[] body = new byte[length];
        c.in.get(r.headLength(), body);
        String form = new String(body, StandardCharsets.UTF_8);
        String next = HttpRequest.param(form, "next");
        if (next == null || !next.matches("/d/[A-Za-z0-9._-]+/(port/[0-9]{1,4}(\\?role=view)?)?")) {
            next = "/d/" + device + "/";
        }
        if (!auth.tokenMatches(HttpRequest.param(form, "token"))) {
            stats.authFailures.incrementAndGet();
            server.clientLog.log(Level.WARNING, "web console: a login with a wrong token");
            respond(c, 401, "text/html; charset=utf-8", pages.login(next, true), "");
            return;
        }
        respond(c, 303, "text/plain", new byte[0],
                "Location: " + next + "\r\nSet-Cookie: " + WebAuth.cookieHeader(auth.newSession()) + "\r\n");
    }

    void refuse(WebConnection c, int status, String message) {
        respond(c, status, "text/plain; charset=utf-8", (message + "\n").getBytes(StandardCharsets.UTF_8), "");
    }

    private void respond(WebConnection c, int status, String type, byte[] body, String extraHeaders) {
        String head = "HTTP/1.1 " + status + " " + reason(status) + "\r\n"
                + "Content-Type: " + type + "\r\nContent-Length: " + body.length + "\r\n"
                + "Connection: close\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                + "Referrer-Policy: same-origin\r\nCache-Control: no-store\r\n"
                + "Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'; "
                + "img-src 'self' data:; frame-ancestors 'none'\r\n"
                + extraHeaders + "\r\n";
        byte[] h = head.getBytes(StandardCharsets.ISO_8859_1);
        byte[] all = new byte[h.length + body.length];
        System.arraycopy(h, 0, all, 0, h.length);
        System.arraycopy(body, 0, all, h.length, body.length);
        if (!c.queueRaw(all)) {
            server.drop(c);
            return;
        }
        c.closeAfterFlush = true;
    }

    private static String reason(int status) {
        return switch (status) {
            case 101 -> "Switching Protocols";
            case 200 -> "OK";
            case 303 -> "See Other";
            case 400 -> "Bad Request";
            case 401 -> "Unauthorized";
            case 403 -> "Forbidden";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 411 -> "Length Required";
            case 413 -> "Content Too Large";
            case 426 -> "Upgrade Required";
            case 431 -> "Request Header Fields Too Large";
            case 503 -> "Service Unavailable";
            default -> "Status";
        };
    }

    // ---- WebSocket upgrades ----

    private void upgrade(WebConnection c, HttpRequest r, String path, String base) {
        if (!auth.originAllowed(r)) {
            stats.originRefused.incrementAndGet();
            server.clientLog.log(Level.WARNING, "web console: WebSocket upgrade from a foreign or missing Origin refused");
            refuse(c, 403, "Forbidden: foreign Origin");
            return;
        }
        String key = r.header("sec-websocket-key");
        String upgrade = r.header("upgrade");
        String connection = r.header("connection");
        if (upgrade == null || !upgrade.equalsIgnoreCase("websocket") || connection == null
                || !connection.toLowerCase(java.util.Locale.ROOT).contains("upgrade")
                || !"13".equals(r.header("sec-websocket-version")) || key == null || !validKey(key)) {
            stats.badRequests.incrementAndGet();
            refuse(c, 426, "a WebSocket upgrade (version 13) is expected here");
            return;
        }
        byte[] replay = null;
        if (path.equals(base + "events")) {
            c.upgraded(WebConnection.Kind.EVENTS, 0);
        } else if (path.startsWith(base + "port/") && portNumber(path, base + "port/") >= 0) {
            int nr = portNumber(path, base + "port/");
            PortStatus status = find(nr);
            if (status == null) {
                refuse(c, 404, "there is no port " + nr);
                return;
            }
            LogFollower f = new LogFollower(LogFollower.DEFAULT_CAPACITY);
            try {
                replay = ports.readLog(nr, f);
            } catch (PortRequestException e) {
                f.cancel();
                refuse(c, 503, e.getMessage());
                return;
            }
            c.port = nr;
            c.console = status.console();
            c.follower = f;
            c.upgraded(WebConnection.Kind.TERMINAL, WebConnection.OUT_CAPACITY + replay.length + 64);
            boolean wantsWrite = !"view".equals(HttpRequest.param(r.query(), "role"));
            terminals.attach(c, wantsWrite);
        } else {
            refuse(c, 404, "Not Found");
            return;
        }
        shiftPastHead(c, r.headLength());
        c.queueRaw(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: " + accept(key) + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
        if (c.kind == WebConnection.Kind.EVENTS) {
            sendPorts(c, List.of());
        } else {
            PortStatus s = find(c.port);
            ObjectNode hello = JSON.createObjectNode();
            hello.put("type", "hello");
            hello.put("device", device);
            hello.put("port", c.port);
            hello.put("name", s == null ? null : s.name());
            hello.put("console", c.console);
            hello.put("writer", c.writer);
            hello.put("input", WebInputs.of(c.port) != null);
            hello.put("endpoint", s == null ? "" : s.endpoint());
            c.queueText(hello.toString());
            for (int off = 0; off < replay.length; off += CHUNK) {
                c.queueFrame(WsFrames.OP_BINARY, replay, off, Math.min(CHUNK, replay.length - off));
            }
        }
        frames(c); // a frame that came with the request
    }

    private static void shiftPastHead(WebConnection c, int headLength) {
        java.nio.ByteBuffer in = c.in;
        in.flip();
        in.position(Math.min(headLength, in.limit()));
        in.compact();
    }

    static boolean validKey(String key) {
        try {
            return Base64.getDecoder().decode(key).length == 16;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    static String accept(String key) {
        try {
            MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
            return Base64.getEncoder().encodeToString(sha1.digest((key + WS_GUID).getBytes(StandardCharsets.ISO_8859_1)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private PortStatus find(int nr) {
        for (PortStatus p : ports.listPorts()) {
            if (p.id() == nr) {
                return p;
            }
        }
        return null;
    }

    // ---- WebSocket messages ----

    void frames(WebConnection c) {
        c.in.flip();
        try {
            while (!c.closeAfterFlush && !c.closed) {
                int op = c.frames.poll(c.in);
                if (op == WsFrames.NEED_MORE) {
                    break;
                }
                if (op < 0) {
                    stats.badFrames.incrementAndGet();
                    server.clientLog.log(Level.WARNING, "web console: a browser sent {0}; closed", WsFrames.describe(op));
                    c.queueClose(WsFrames.closeCode(op), WsFrames.describe(op));
                    break;
                }
                message(c, op, c.frames.payload(), c.frames.payloadLength());
            }
        } finally {
            if (!c.closed) {
                c.in.compact();
            }
        }
    }

    private void message(WebConnection c, int op, byte[] b, int len) {
        switch (op) {
            case WsFrames.OP_PING -> c.queueFrame(WsFrames.OP_PONG, b, 0, len);
            case WsFrames.OP_PONG -> { }
            case WsFrames.OP_CLOSE -> c.queueClose(WsFrames.CLOSE_NORMAL, "");
            case WsFrames.OP_BINARY -> {
                if (c.kind != WebConnection.Kind.TERMINAL) {
                    badMessage(c, "binary data on the port list");
                } else {
                    terminals.input(c, b, len);
                }
            }
            default -> {
                if (c.kind != WebConnection.Kind.TERMINAL || !terminals.text(c, b, len)) {
                    badMessage(c, "an unknown message");
                }
            }
        }
    }

    void badMessage(WebConnection c, String what) {
        stats.badFrames.incrementAndGet();
        server.clientLog.log(Level.WARNING, "web console: a browser sent {0}; closed", what);
        c.queueClose(WsFrames.CLOSE_UNSUPPORTED, what);
    }

    /** The port list and any new events to every device page. */
    void publishPorts(List<PortEvent> batch) {
        List<WebConnection> pages = server.connections().stream()
                .filter(x -> x.kind == WebConnection.Kind.EVENTS && !x.closeAfterFlush).toList();
        for (WebConnection c : pages) {
            sendPorts(c, batch);
        }
    }

    private void sendPorts(WebConnection c, List<PortEvent> batch) {
        ObjectNode o = JSON.createObjectNode();
        o.put("type", "ports");
        o.put("device", device);
        ArrayNode events = o.putArray("events");
        long micros = System.currentTimeMillis() * 1000;
        for (PortEvent e : batch) {
            try {
                events.add(JSON.readTree(ApiProtocol.eventLine(e, micros)));
            } catch (java.io.IOException ex) {
                throw new IllegalStateException(ex);
            }
        }
        ArrayNode list = o.putArray("ports");
        for (PortStatus p : ports.listPorts()) {
            ObjectNode j = ApiProtocol.portJson(p);
            j.put("web-writer", terminals.hasWriter(p.id()));
            list.add(j);
        }
        if (!c.queueText(o.toString())) {
            server.dropSlow(c, "on the port list");
        }
    }

    void pumpOutput(WebConnection c) {
        terminals.pumpOutput(c);
    }

    void closed(WebConnection c) {
        terminals.closed(c);
    }
}
