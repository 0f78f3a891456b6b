package io.vportd.console.web;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.HashSet;
import java.util.Set;

/**
 * Who may use the web console: whoever knows the token. The token comes from a file that only
 * its owner can read ({@code --web-token-file}, mode 0600 or stricter), or is generated at start
 * and printed once. A browser posts it once to {@code /login} and gets a session cookie
 * (HttpOnly, SameSite=Strict), so the token never appears in a URL, a history or a log line.
 * Requests must also name the listen address in {@code Host} (no DNS rebinding; on a wildcard
 * address, one of the machine's addresses as an IP literal) and, for
 * WebSocket upgrades and the login post, in {@code Origin} (no cross-site use). Sessions live
 * until vportd exits; at most {@link #MAX_SESSIONS}, the oldest forgotten first. Used by the web
 * console's thread only.
 */
final class WebAuth {

    static final String COOKIE = "vportd_session";
    static final int MAX_SESSIONS = 64;

    private final byte[] token;
    private final Set<String> origins;
    private final Set<String> hosts;
    private final SecureRandom random = new SecureRandom();
    private final ArrayDeque<String> sessionOrder = new ArrayDeque<>();
    private final Set<String> sessions = new HashSet<>();

    /**
     * @param token     the secret
     * @param host      the listen address as given (an IP literal or a name)
     * @param port      the bound port
     */
    WebAuth(String token, String host, int port) {
        this.token = token.getBytes(StandardCharsets.UTF_8);
        Set<String> h = new HashSet<>();
        h.add(hostPort(host, port));
        if (host.equals("127.0.0.1") || host.equals("::1") || host.equals("localhost") || wildcard(host)) {
            h.add("localhost:" + port);
            h.add("127.0.0.1:" + port);
            h.add("[::1]:" + port);
        }
        if (wildcard(host)) { // any address of this machine, as an IP literal (names cannot be known)
            try {
                for (java.net.NetworkInterface i : java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())) {
                    for (java.net.InetAddress a : java.util.Collections.list(i.getInetAddresses())) {
                        String literal = a.getHostAddress();
                        int zone = literal.indexOf('%');
                        h.add(hostPort(zone < 0 ? literal : literal.substring(0, zone), port));
                    }
                }
            } catch (java.net.SocketException e) {
                // loopback names only
            }
        }
        this.hosts = Set.copyOf(h);
        Set<String> o = new HashSet<>();
        for (String x : h) {
            o.add("http://" + x);
        }
        this.origins = Set.copyOf(o);
    }

    static boolean wildcard(String host) {
        return host.equals("0.0.0.0") || host.equals("::") || host.equals("0:0:0:0:0:0:0:0");
    }

    private static String hostPort(String host, int port) {
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }

    /** A new random token: 32 bytes, URL-safe base64. */
    static String generateToken() {
        byte[] b = new byte[32];
        new SecureRandom().nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    /** The token in {@code file} (trimmed); refused unless the file is a regular file only its owner can read or write. */
    static String readTokenFile(Path file) throws IOException {
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(file + " is not a regular file");
        }
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS);
        for (PosixFilePermission p : perms) {
            if (p != PosixFilePermission.OWNER_READ && p != PosixFilePermission.OWNER_WRITE) {
                throw new IOException(file + " must be readable by its owner only (chmod 600), it has "
                        + java.nio.file.attribute.PosixFilePermissions.toString(perms));
            }
        }
        String t = Files.readString(file, StandardCharsets.UTF_8).trim();
        if (t.length() < 16 || t.indexOf('\n') >= 0) {
            throw new IOException(file + " must hold one token of at least 16 characters");
        }
        return t;
    }

    /** True when {@code candidate} is the token (compared in constant time). */
    boolean tokenMatches(String candidate) {
        return candidate != null && MessageDigest.isEqual(token, candidate.getBytes(StandardCharsets.UTF_8));
    }

    /** A new session id, remembered. */
    String newSession() {
        byte[] b = new byte[24];
        random.nextBytes(b);
        String id = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
        if (sessionOrder.size() == MAX_SESSIONS) {
            sessions.remove(sessionOrder.removeFirst());
        }
        sessionOrder.addLast(id);
        sessions.add(id);
        return id;
    }

    /** True when the request carries a live session cookie. */
    boolean authenticated(HttpRequest r) {
        String id = HttpRequest.cookie(r.header("cookie"), COOKIE);
        return id != null && sessions.contains(id);
    }

    /** True when {@code Host} names the listen address. */
    boolean hostAllowed(HttpRequest r) {
        String h = r.header("host");
        return h != null && hosts.contains(h);
    }

    /** True when {@code Origin} is the console's own (absent is false: browsers always send it on upgrades). */
    boolean originAllowed(HttpRequest r) {
        String o = r.header("origin");
        return o != null && origins.contains(o);
    }

    static String cookieHeader(String session) {
        return COOKIE + "=" + session + "; Path=/; HttpOnly; SameSite=Strict";
    }
}
