import io.vportd.vhost.testing.TestFrontend;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Live hand-over pause benchmark (issue 12), run by {@code bench/handover}: a real vportd with 31
 * ports (each a socket endpoint with a connected host client), a frontend (the vhost-user test
 * frontend: sealed memfd, eventfds, every one of the 64 rings started) and N hand-overs in a row,
 * each to a new {@code vportd --take-over} process. The pause is what the new process reports
 * (from the old one freezing its data plane to the new one thawing its own, on the same
 * monotonic clock). After every hand-over the frontend's next request must be answered and every
 * host client must still be connected (no end of file), or the run fails. With {@code --devices N}
 * the daemon is a {@code --config} daemon of N such devices (a frontend each), handed over whole
 * with {@code --take-over --config} (issue 13).
 */
public final class Handover {

    static final int MAX_PORTS = 31;
    static final int QUEUES = 2 * (MAX_PORTS + 1);
    static final Pattern PAUSE = Pattern.compile("paused ([0-9.]+) ms");

    public static void main(String[] args) throws Exception {
        Path jar = null;
        int count = 20;
        int devices = 0;
        Path out = null;
        boolean consoleLog = false;
        List<String> takeOverArgs = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--take-over-arg" -> takeOverArgs.add(args[++i]);
                case "--jar" -> jar = Path.of(args[++i]);
                case "--count" -> count = Integer.parseInt(args[++i]);
                case "--devices" -> devices = Integer.parseInt(args[++i]);
                case "--out" -> out = Path.of(args[++i]);
                case "--console-log" -> consoleLog = true;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Path dir = Files.createTempDirectory("vportd-handover-bench");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // One device from options, or (--devices N) N devices of a --config daemon, each like the one.
        List<Path> sockets = new ArrayList<>();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString()));
        List<String> takeOverHow = new ArrayList<>();
        if (devices == 0) {
            Path vhost = dir.resolve("vportd.sock");
            sockets.add(vhost);
            cmd.addAll(List.of("--socket-path", vhost.toString(), "--max-ports", Integer.toString(MAX_PORTS)));
            for (int p = 0; p < MAX_PORTS; p++) {
                cmd.add("--port");
                cmd.add("nr=" + p + (p == 0 ? ",console" + (consoleLog ? ",log=" + dir.resolve("console.log") : "") : ",name=port." + p)
                        + ",socket=" + dir.resolve("p" + p + ".sock"));
            }
            takeOverHow.addAll(List.of("--take-over", "--socket-path", vhost.toString()));
        } else {
            StringBuilder toml = new StringBuilder("api-socket = \"" + dir.resolve("api.sock") + "\"\n");
            for (int d = 0; d < devices; d++) {
                Path vhost = dir.resolve("vm" + d + ".sock");
                sockets.add(vhost);
                toml.append("\n[[device]]\nid = \"vm").append(d).append("\"\nsocket = \"").append(vhost)
                        .append("\"\nmax-ports = ").append(MAX_PORTS).append("\nports = [\n");
                for (int p = 0; p < MAX_PORTS; p++) {
                    toml.append("  \"nr=").append(p).append(p == 0 ? ",console" + (consoleLog ? ",log=" + dir.resolve("vm" + d
                            + "-console.log") : "") : ",name=port." + p).append(",socket=")
                            .append(dir.resolve("vm" + d + "-p" + p + ".sock")).append("\",\n");
                }
                toml.append("]\n");
            }
            Path config = dir.resolve("vportd.toml");
            Files.writeString(config, toml);
            cmd.addAll(List.of("--config", config.toString()));
            takeOverHow.addAll(List.of("--take-over", "--config", config.toString()));
        }
        List<Process> daemons = new ArrayList<>();
        List<SocketChannel> clients = new ArrayList<>();
        List<TestFrontend> frontends = new ArrayList<>();
        double[] pauses = new double[count];
        try {
            daemons.add(start(cmd, dir.resolve("vportd-0.log")));
            for (Path vhost : sockets) {
                await(vhost, daemons.get(0));
            }
            if (devices > 0) {
                await(dir.resolve("api.sock.handover"), daemons.get(0));
            }
            for (Path vhost : sockets) {
                TestFrontend fe = TestFrontend.connect(vhost, TestFrontend.Options.defaults(QUEUES, 12));
                frontends.add(fe);
                for (int q = 0; q < QUEUES; q++) {
                    long base = 0x10000L + q * 0x4000L;
                    fe.startQueue(q, base, base + 0x1000, base + 0x2000, 256);
                }
            }
            {
                for (int p = 0; p < MAX_PORTS * sockets.size(); p++) {
                    SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                    c.connect(UnixDomainSocketAddress.of(devices == 0 ? dir.resolve("p" + p + ".sock")
                            : dir.resolve("vm" + p / MAX_PORTS + "-p" + p % MAX_PORTS + ".sock")));
                    c.configureBlocking(false);
                    clients.add(c);
                }
                Thread.sleep(500); // every client accepted
                for (int i = 0; i < count; i++) {
                    Path log = dir.resolve("vportd-" + (i + 1) + ".log");
                    List<String> takeOver = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-jar",
                            jar.toString()));
                    takeOver.addAll(takeOverHow);
                    takeOver.addAll(takeOverArgs);
                    Process next = start(takeOver, log);
                    daemons.add(next);
                    Process old = daemons.get(daemons.size() - 2);
                    if (!old.waitFor(60, TimeUnit.SECONDS) || old.exitValue() != 0) {
                        throw new IOException("hand-over " + (i + 1) + ": the old daemon did not exit 0; see " + log);
                    }
                    pauses[i] = pause(log, next);
                    // Every frontend is served by the new process, and no host client saw end of file.
                    for (TestFrontend fe : frontends) {
                        fe.stopQueue(QUEUES - 1);
                        long base = 0x10000L + (QUEUES - 1) * 0x4000L;
                        fe.startQueue(QUEUES - 1, base, base + 0x1000, base + 0x2000, 256);
                    }
                    for (SocketChannel c : clients) {
                        if (c.read(ByteBuffer.allocate(64)) < 0) {
                            throw new IOException("hand-over " + (i + 1) + ": a host client saw end of file");
                        }
                    }
                    System.err.printf(Locale.ROOT, "handover: %d of %d: paused %.1f ms%n", i + 1, count, pauses[i]);
                }
            }
        } finally {
            for (TestFrontend fe : frontends) {
                fe.close();
            }
            for (SocketChannel c : clients) {
                c.close();
            }
            for (Process p : daemons) {
                p.destroy();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
        double[] sorted = pauses.clone();
        Arrays.sort(sorted);
        String report = String.format(Locale.ROOT,
                "hand-overs: %d, devices: %d, ports: %d per device (each with a connected host client), queues: %d%n"
                        + "pause ms: min %.1f, p50 %.1f, p90 %.1f, p99 %.1f, max %.1f%n"
                        + "loadavg at the end: %s%n",
                count, sockets.size(), MAX_PORTS, QUEUES, sorted[0], pct(sorted, 50), pct(sorted, 90), pct(sorted, 99),
                sorted[sorted.length - 1], Files.readString(Path.of("/proc/loadavg")).trim());
        System.out.print(report);
        if (out != null) {
            Files.writeString(out, report + "pauses: " + Arrays.toString(pauses) + "\n");
        }
    }

    static double pct(double[] sorted, int p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    static Process start(List<String> cmd, Path log) throws IOException {
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    static void await(Path f, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(f)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("vportd did not create " + f);
            }
            Thread.sleep(20);
        }
    }

    static double pause(Path log, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            Matcher m = PAUSE.matcher(Files.readString(log));
            if (m.find()) {
                return Double.parseDouble(m.group(1));
            }
            if (!p.isAlive()) {
                throw new IOException("the new daemon exited; see " + log);
            }
            Thread.sleep(20);
        }
        throw new IOException("no 'paused' line in " + log);
    }
}
