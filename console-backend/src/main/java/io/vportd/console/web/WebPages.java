package io.vportd.console.web;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The pages (small HTML shells; the behaviour is in {@code static/app.js}) and the static files:
 * the page script and style, and xterm.js with its fit add-on, which the build fetches from the
 * npm registry (pinned versions, integrity checked) into the jar, never into the repository.
 */
final class WebPages {

    private static final String STATIC = "/io/vportd/console/web/static/";
    /** The files served under {@code /static/}; nothing else on the class path is reachable. */
    static final Set<String> ASSETS = Set.of("app.js", "app.css", "xterm.js", "xterm.css", "addon-fit.js", "xterm-LICENSE.txt");
    private static final Map<String, byte[]> CACHE = new ConcurrentHashMap<>();

    private final String device;

    WebPages(String device) {
        this.device = device;
    }

    static byte[] asset(String name) {
        if (!ASSETS.contains(name)) {
            return null;
        }
        return CACHE.computeIfAbsent(name, n -> {
            try (InputStream in = WebPages.class.getResourceAsStream(STATIC + n)) {
                return in == null ? null : in.readAllBytes();
            } catch (IOException e) {
                return null;
            }
        });
    }

    static String contentType(String path) {
        if (path.endsWith(".js")) {
            return "text/javascript; charset=utf-8";
        }
        return path.endsWith(".css") ? "text/css; charset=utf-8" : "application/octet-stream";
    }

    private String page(String title, String bodyAttrs, String body, boolean terminal) {
        String css = terminal ? "<link rel=\"stylesheet\" href=\"/static/xterm.css\">\n" : "";
        String js = terminal ? "<script src=\"/static/xterm.js\"></script>\n<script src=\"/static/addon-fit.js\"></script>\n" : "";
        return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" + esc(title) + "</title>\n"
                + "<link rel=\"stylesheet\" href=\"/static/app.css\">\n" + css + js
                + "<script src=\"/static/app.js\" defer></script>\n</head>\n<body " + bodyAttrs + ">\n" + body + "\n</body></html>\n";
    }

    byte[] login(String next, boolean wrong) {
        String body = "<main class=\"login\"><h1>vportd web console</h1>\n"
                + (wrong ? "<p class=\"error\" id=\"login-error\">Wrong token.</p>\n" : "")
                + "<form method=\"post\" action=\"/login\">\n"
                + "<label>Token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" autofocus></label>\n"
                + "<input type=\"hidden\" name=\"next\" value=\"" + esc(next) + "\">\n"
                + "<button type=\"submit\" id=\"login\">Log in</button>\n</form>\n"
                + "<p class=\"hint\">The token is in the file given with <code>--web-token-file</code>, "
                + "or was printed once when vportd started.</p></main>";
        return page("vportd: log in", "data-page=\"login\"", body, false).getBytes(StandardCharsets.UTF_8);
    }

    byte[] device() {
        String body = "<header><h1>vportd · device <span id=\"device\">" + esc(device) + "</span></h1>"
                + "<span id=\"status\" class=\"status\">connecting…</span></header>\n"
                + "<table id=\"ports\"><thead><tr><th>port</th><th>name</th><th>console</th><th>endpoint</th>"
                + "<th>guest</th><th>host</th><th>to host</th><th>to guest</th><th>dropped</th><th></th></tr></thead>"
                + "<tbody></tbody></table>\n<h2>Events</h2>\n<ol id=\"events\"></ol>";
        return page("vportd: device " + device, "data-page=\"device\" data-device=\"" + esc(device) + "\"", body, false)
                .getBytes(StandardCharsets.UTF_8);
    }

    byte[] terminal(int port) {
        String body = "<header><a href=\"/d/" + esc(device) + "/\">device " + esc(device) + "</a> · "
                + "<h1>port <span id=\"port\">" + port + "</span> <span id=\"port-name\"></span></h1>"
                + "<span id=\"role\" class=\"status\">connecting…</span>"
                + "<button id=\"take\" hidden>Take control</button></header>\n<div id=\"terminal\"></div>";
        return page("vportd: port " + port, "data-page=\"terminal\" data-device=\"" + esc(device) + "\" data-port=\"" + port + "\"",
                body, true).getBytes(StandardCharsets.UTF_8);
    }

    static String esc(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(ch);
            }
        }
        return b.toString();
    }
}
