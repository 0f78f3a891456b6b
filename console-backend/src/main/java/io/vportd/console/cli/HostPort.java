package io.vportd.console.cli;

/**
 * A host and TCP port as written on the command line: {@code PORT}, {@code HOST:PORT} or
 * {@code [IPV6]:PORT}. The host defaults to 127.0.0.1 and is kept as text (not resolved).
 * Port 0 asks for any free port (the bound port is logged).
 */
public record HostPort(String host, int port) {

    public static final String DEFAULT_HOST = "127.0.0.1";

    public HostPort {
        if (host == null || host.isEmpty()) {
            throw new IllegalArgumentException("host must not be empty");
        }
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be 0..65535, got " + port);
        }
    }

    /**
     * Parses {@code PORT}, {@code HOST:PORT} or {@code [IPV6]:PORT}.
     *
     * @throws IllegalArgumentException with a message saying what is wrong (not naming the option)
     */
    public static HostPort parse(String text) {
        if (text == null || text.isEmpty()) {
            throw new IllegalArgumentException("empty address, expected [HOST:]PORT");
        }
        String host;
        String portText;
        if (text.startsWith("[")) {
            int close = text.indexOf(']');
            if (close < 0 || close + 1 >= text.length() || text.charAt(close + 1) != ':') {
                throw new IllegalArgumentException("'" + text + "' is not [IPV6]:PORT");
            }
            host = text.substring(1, close);
            portText = text.substring(close + 2);
            if (host.isEmpty()) {
                throw new IllegalArgumentException("'" + text + "' has an empty host");
            }
        } else {
            int colon = text.lastIndexOf(':');
            if (colon < 0) {
                host = DEFAULT_HOST;
                portText = text;
            } else {
                host = text.substring(0, colon);
                portText = text.substring(colon + 1);
                if (host.isEmpty()) {
                    throw new IllegalArgumentException("'" + text + "' has an empty host");
                }
                if (host.indexOf(':') >= 0) {
                    throw new IllegalArgumentException("'" + text + "': write an IPv6 host in brackets, [::1]:PORT");
                }
            }
        }
        for (int i = 0; i < host.length(); i++) {
            char c = host.charAt(i);
            if (Character.isWhitespace(c) || Character.isISOControl(c) || c == '[' || c == ']' || c == '/') {
                throw new IllegalArgumentException("'" + text + "': the host contains '" + printable(c) + "'");
            }
        }
        int port = parseDecimal(portText, 65535);
        if (port < 0) {
            throw new IllegalArgumentException("'" + text + "': '" + portText + "' is not a TCP port (0..65535)");
        }
        return new HostPort(host, port);
    }

    /** Strict decimal (digits only) in 0..max, or -1 when not such a number. */
    static int parseDecimal(String text, int max) {
        if (text == null || text.isEmpty() || text.length() > 9) {
            return -1;
        }
        int v = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
        return v <= max ? v : -1;
    }

    static String printable(char c) {
        return c < 0x20 || c == 0x7F || Character.isWhitespace(c) ? String.format("\\u%04x", (int) c) : String.valueOf(c);
    }

    @Override
    public String toString() {
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
