package io.vportd.console.web;

import io.vportd.console.api.PortManager;
import java.io.IOException;
import java.net.BindException;
import java.nio.file.Path;

/** Starting the web console from the daemon's options: the token, the listener, the one line that names them. */
public final class WebConsole {

    /** The device's id in URLs; vportd serves one device per process. */
    public static final String DEVICE = "0";

    private WebConsole() {
    }

    /**
     * Reads or generates the token and starts serving. A generated token is printed once on
     * standard error (it is not logged again). After a take-over the previous process may still
     * hold the address for a moment: {@code retryMillis} > 0 retries binding that long.
     */
    public static WebServer start(String host, int port, Path tokenFile, PortManager ports, long retryMillis)
            throws IOException {
        String token = tokenFile == null ? WebAuth.generateToken() : WebAuth.readTokenFile(tokenFile);
        long deadline = System.nanoTime() + retryMillis * 1_000_000;
        WebServer w;
        while (true) {
            try {
                w = WebServer.start(host, port, token, ports, DEVICE);
                break;
            } catch (BindException e) {
                if (System.nanoTime() - deadline >= 0) {
                    throw e;
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
        String url = "http://" + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + w.port() + "/";
        WebServer.LOG.log(System.Logger.Level.INFO, "web console at {0} (device {1})", url, DEVICE);
        if (!java.net.InetAddress.getByName(host).isLoopbackAddress()) {
            WebServer.LOG.log(System.Logger.Level.WARNING, "the web console listens on {0}, not on loopback: plain HTTP, "
                    + "the token and the consoles cross the network in clear; prefer 127.0.0.1 and an SSH tunnel", host);
        }
        if (tokenFile == null) {
            System.err.println("vportd: web console at " + url + " ; token (printed once): " + token);
            System.err.flush();
        }
        return w;
    }
}
