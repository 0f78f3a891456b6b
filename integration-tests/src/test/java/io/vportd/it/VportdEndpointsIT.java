package io.vportd.it;

import io.vportd.testsupport.Await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.ctl.ApiClient;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The TCP, PTY and unix-client endpoints each carry data both ways with a real guest; the ports
 * are hot-added with the {@code vportd ctl} command (the unix-client one before its server
 * exists, so it must reconnect); a hot-added console is resized with {@code ctl resize}; the
 * counters show up in {@code ctl metrics} and over HTTP.
 */
class VportdEndpointsIT {

    static final Duration STEP = Duration.ofSeconds(120);

    private Path dir;
    private VportdProcess daemon;
    private Guest guest;
    private final List<AutoCloseable> closers = new ArrayList<>();

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        dir = Files.createTempDirectory("vportd-ep-");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : closers) {
            c.close();
        }
        if (guest != null) {
            guest.close();
        }
        if (daemon != null) {
            daemon.close();
            assertTrue(!daemon.log().contains("Exception"), () -> "vportd logged an exception:\n" + daemon.log());
        }
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    /**
     * The TCP port vportd bound where it was asked for port 0, read back from its log line
     * ({@code prefix} is the text before {@code HOST:PORT} in that line).
     */
    private int boundPort(String what, String prefix) {
        Pattern line = Pattern.compile(Pattern.quote(prefix) + "127\\.0\\.0\\.1:(\\d+)");
        return Await.value(what, STEP, () -> {
            Matcher m = line.matcher(daemon.log());
            return m.find() ? Optional.of(Integer.parseInt(m.group(1))) : Optional.empty();
        });
    }

    /** Runs {@code vportd ctl ARGS} and returns its standard output; fails on a non-zero exit. */
    private String ctl(Path api, String... args) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-jar",
                VportdProcess.jar().toString(), "ctl", "--api-socket", api.toString()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "vportd ctl finished");
        System.out.println("[ctl " + String.join(" ", args) + "]\n" + out);
        assertEquals(0, p.exitValue(), () -> "vportd ctl " + String.join(" ", args) + " failed:\n" + out);
        return out;
    }

    @Test
    @Timeout(400)
    void tcpPtyAndUnixClientCarryData() throws Exception {
        Path api = dir.resolve("api.sock");
        Path vhost = dir.resolve("vportd.sock");
        daemon = VportdProcess.start("endpoints", vhost, List.of("--max-ports", "8", "--api-socket", api.toString(),
                "--metrics-listen", "127.0.0.1:0", "--port", "nr=1,name=base,null"), Duration.ofSeconds(30));
        int metricsPort = boundPort("the metrics port in vportd's log", "metrics served on http://");
        guest = Guest.builder()
                .name("vportd-endpoints")
                .scenario(GuestScripts.script("""
                        mark booted
                        i=0
                        until [ -L /dev/virtio-ports/ep.tcp ] && [ -L /dev/virtio-ports/ep.pty ] && [ -L /dev/virtio-ports/ep.ucx ]; do
                          i=$((i + 1)); [ $i -gt 1200 ] && fail "hot-added ports did not appear"
                          sleep 0.1
                        done
                        for n in tcp pty ucx; do
                          printf "from-$n" > "$(port ep.$n)" || fail "write ep.$n"
                        done
                        mark wrote
                        for n in tcp pty ucx; do
                          mark got-$n "$(recv_token "$(port ep.$n)" 6)"
                        done
                        i=0
                        until [ -c /dev/hvc0 ]; do i=$((i + 1)); [ $i -gt 600 ] && fail "no /dev/hvc0"; sleep 0.1; done
                        mark hvc-ready
                        i=0
                        while [ "$(stty -F /dev/hvc0 size 2>/dev/null)" != "30 100" ]; do
                          i=$((i + 1)); [ $i -gt 600 ] && fail "hvc0 size is $(stty -F /dev/hvc0 size)"
                          sleep 0.1
                        done
                        mark resized
                        """))
                .qemuArgs(VportdDevice.qemuArgs(vhost, 8))
                .socketDir(dir)
                .memoryMiB(512)
                .timeout(Duration.ofSeconds(350))
                .start();
        guest.awaitMark("booted", STEP);

        Path pty = dir.resolve("ep.pty");
        Path uc = dir.resolve("uc.sock");
        assertTrue(ctl(api, "add-port", "nr=3,name=ep.tcp,tcp=127.0.0.1:0").contains("ep.tcp"));
        int tcpPort = boundPort("ep.tcp's port in vportd's log", "listening on tcp ");
        assertTrue(ctl(api, "add-port", "nr=4,name=ep.pty,pty=" + pty).contains("/dev/pts/"));
        assertTrue(ctl(api, "add-port", "nr=5,name=ep.ucx,unix-client=" + uc).contains("unix-client"));

        // The unix-client port's server appears only now: vportd keeps retrying until it connects.
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        closers.add(server);
        server.bind(UnixDomainSocketAddress.of(uc));
        CompletableFuture<SocketChannel> accepted = CompletableFuture.supplyAsync(() -> {
            try {
                return server.accept();
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        SocketChannel tcp = Await.value("the TCP endpoint", STEP, () -> {
            try {
                return java.util.Optional.of(SocketChannel.open(new InetSocketAddress("127.0.0.1", tcpPort)));
            } catch (IOException e) {
                return java.util.Optional.empty();
            }
        });
        closers.add(tcp);
        SocketChannel ucx = accepted.get(STEP.toSeconds(), TimeUnit.SECONDS);
        closers.add(ucx);
        assertTrue(Files.isSymbolicLink(pty) && Files.readSymbolicLink(pty).toString().startsWith("/dev/pts/"));
        FileInputStream ptyIn = new FileInputStream(pty.toFile());
        closers.add(ptyIn);
        FileOutputStream ptyOut = new FileOutputStream(pty.toFile());
        closers.add(ptyOut);

        assertEquals("from-tcp", readChannel(tcp, 8));
        assertEquals("from-ucx", readChannel(ucx, 8));
        assertEquals("from-pty", readStream(ptyIn, 8));
        // Host data reaching a port the guest has just closed is thrown away by the guest (the
        // protocol cannot prevent it): write only once vportd has seen the last close. Control
        // messages are handled in order, so port 5 closed means 3 and 4 closed before it.
        guest.awaitMark("wrote", STEP);
        try (ApiClient api5 = ApiClient.connect(api)) {
            Await.until("vportd to see the guest close port 5", STEP,
                    () -> !VportdHotplugIT.listPorts(api5).get(5).path("guest-open").asBoolean());
        }
        tcp.write(ByteBuffer.wrap("to-tcp".getBytes(StandardCharsets.UTF_8)));
        ptyOut.write("to-pty".getBytes(StandardCharsets.UTF_8));
        ptyOut.flush();
        ucx.write(ByteBuffer.wrap("to-ucx".getBytes(StandardCharsets.UTF_8)));
        assertEquals("to-tcp", guest.awaitMark("got-tcp", STEP));
        assertEquals("to-pty", guest.awaitMark("got-pty", STEP));
        assertEquals("to-ucx", guest.awaitMark("got-ucx", STEP));

        // A hot-added console becomes an hvc tty, and resize reaches it.
        // This guest kernel (Debian 6.12.1xx) reads RESIZE in the spec's order, cols first.
        ctl(api, "add-port", "nr=6,console,name=ep.con,resize-order=cols-rows,null");
        guest.awaitMark("hvc-ready", STEP);
        assertEquals("port 6: 100x30", ctl(api, "resize", "name=ep.con", "100", "30").strip());
        guest.awaitMark("resized", STEP);
        guest.awaitExit().assertSucceeded();

        String list = ctl(api, "list-ports");
        assertTrue(list.lines().anyMatch(l -> l.contains("ep.tcp") && l.contains("8B/")), list);
        String metrics = ctl(api, "metrics");
        assertTrue(metrics.contains("vportd_port_bytes_total{port=\"3\",name=\"ep.tcp\",direction=\"to_host\"} 8"), metrics);
        assertTrue(metrics.contains("vportd_port_bytes_total{port=\"4\",name=\"ep.pty\",direction=\"to_guest\"} 6"), metrics);
        HttpResponse<String> http = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, http.statusCode());
        assertTrue(http.body().contains("vportd_port_bytes_total{port=\"5\",name=\"ep.ucx\",direction=\"to_host\"} 8"),
                http.body());
    }

    private static String readChannel(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new AssertionError("end of stream after " + b.position() + " bytes");
            }
        }
        return new String(b.array(), StandardCharsets.UTF_8);
    }

    private static String readStream(InputStream in, int n) throws IOException {
        byte[] b = new byte[n];
        int got = 0;
        while (got < n) {
            int r = in.read(b, got, n - got);
            if (r < 0) {
                throw new AssertionError("end of stream after " + got + " bytes");
            }
            got += r;
        }
        return new String(b, StandardCharsets.UTF_8);
    }
}
