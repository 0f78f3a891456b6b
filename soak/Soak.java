import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * vportd's soak/chaos run against a real guest: run it through {@code soak/run}, which builds
 * the daemon jar and the guest helper (soak/guest/soaktool.c) and passes their paths; the jar is
 * also this program's class path (Jackson for the management API's JSON).
 *
 * <p>Port layout: port 0 is a console; {@code s0..s(N-1)} are stream ports (a guest opener and a
 * host client for the whole run, a checked record stream both ways); {@code c*} are ports whose
 * host client comes and goes (the guest answers requests); {@code g*} are ports the guest opens
 * and closes (a host responder stays connected); {@code hot*} are added and removed through the
 * management API. The record format and its generator are the same as in soaktool.c.
 *
 * <p>This file is longer than the project's usual limit because it is one self-contained
 * single-file program (launched as source, like bench/GuestBench.java).
 */
public final class Soak {

    static final class Config {
        Path repo, soaktool, jar, out, report, chart;
        double minutes = 2;
        long seed = 1;
        int ports = 64, servePorts = 4, churnPorts = 4, hotSlots = 8;
        int sampleSeconds = 5, memoryMiB = 512;
        long rssSlackMiB = 64;
        long rssCeilingMiB = 384;
        String vportdJavaOpts = "-Xms128m -Xmx128m -XX:+AlwaysPreTouch";
        int fdSlack = 2;
        String javaCmd;
        long corruptAt = -1; // --inject-corruption: flip the host->guest byte at this offset of s0 (proves the check fails)
    }

    static final int HDR = 12, MAXPAY = 2048, MAXREC = HDR + MAXPAY;
    static final ObjectMapper JSON = new ObjectMapper();
    static final Set<Process> LIVE = ConcurrentHashMap.newKeySet();

    final Config c;
    final Path dir;
    final List<String> failures = new CopyOnWriteArrayList<>();
    volatile boolean abort, stopChurn, stopStreams, shutdown;
    final Map<String, LongAdder> faults = new ConcurrentHashMap<>();
    final Map<String, Long> pauses = new ConcurrentHashMap<>(); // back-pressure pauses by side (not counted as faults)
    final List<long[]> samples = new CopyOnWriteArrayList<>(); // t ms, rss KiB, fds, threads, to-guest, to-host, faults
    final ConcurrentLinkedQueue<AutoCloseable> closeables = new ConcurrentLinkedQueue<>();
    final Map<String, String> info = java.util.Collections.synchronizedMap(new LinkedHashMap<>());

    Process daemon;
    long daemonStarted, streamsStarted;
    Process guest;
    final List<String> console = new CopyOnWriteArrayList<>();
    final Map<String, String> marks = new ConcurrentHashMap<>();
    Api api;
    Events events;
    Stream[] streams;
    final LongAdder responderAnswers = new LongAdder();
    final LongAdder hostExchanges = new LongAdder();
    volatile int lastCols = -1, lastRows = -1;

    Soak(Config c, Path dir) {
        this.c = c;
        this.dir = dir;
    }

    public static void main(String[] args) throws Exception {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroy)));
        Config c = parse(args);
        Files.createDirectories(c.out);
        Path dir = Files.createTempDirectory("vportd-soak-");
        int rc;
        try {
            rc = new Soak(c, dir).run();
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
        System.exit(rc);
    }

    static Config parse(String[] args) {
        Config c = new Config();
        for (int i = 0; i < args.length; i++) {
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--repo" -> { c.repo = Path.of(v); i++; }
                case "--soaktool" -> { c.soaktool = Path.of(v); i++; }
                case "--jar" -> { c.jar = Path.of(v); i++; }
                case "--out" -> { c.out = Path.of(v); i++; }
                case "--report" -> { c.report = Path.of(v); i++; }
                case "--chart" -> { c.chart = Path.of(v); i++; }
                case "--minutes" -> { c.minutes = Double.parseDouble(v); i++; }
                case "--seed" -> { c.seed = Long.parseLong(v); i++; }
                case "--ports" -> { c.ports = Integer.parseInt(v); i++; }
                case "--memory" -> { c.memoryMiB = Integer.parseInt(v); i++; }
                case "--sample-seconds" -> { c.sampleSeconds = Integer.parseInt(v); i++; }
                case "--vportd-java-opts" -> { c.vportdJavaOpts = v; i++; }
                case "--rss-ceiling-mib" -> { c.rssCeilingMiB = Long.parseLong(v); i++; }
                case "--inject-corruption" -> { c.corruptAt = Long.parseLong(v); i++; }
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (c.repo == null || c.soaktool == null || c.jar == null || c.out == null) {
            throw new IllegalArgumentException("--repo, --soaktool, --jar and --out are required (soak/run passes them)");
        }
        if (c.minutes <= 0 || c.ports < 1 || c.ports > 200 || c.seed < 0 || c.seed > 0xffffffffL || c.sampleSeconds < 1) {
            throw new IllegalArgumentException("--minutes > 0, --ports 1..200, --seed 0..4294967295, --sample-seconds >= 1");
        }
        c.javaCmd = ProcessHandle.current().info().command().orElse("java");
        return c;
    }

    // ---- port layout ---------------------------------------------------------------------

    int streamNr(int i) { return 1 + i; }
    int serveNr(int i) { return 1 + c.ports + i; }
    int churnNr(int i) { return 1 + c.ports + c.servePorts + i; }
    int hotNr(int k) { return 1 + c.ports + c.servePorts + c.churnPorts + k; }
    int maxPorts() { return hotNr(c.hotSlots); }
    Path sock(String name) { return dir.resolve(name + ".sock"); }

    // ---- the run -------------------------------------------------------------------------

    int run() throws Exception {
        long hardDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos((long) (c.minutes * 60) + 600);
        Thread.ofPlatform().daemon().name("watchdog").start(() -> {
            while (System.nanoTime() < hardDeadline) {
                pause(1000);
            }
            log("HUNG: the run passed its hard deadline; thread dump follows");
            Thread.getAllStackTraces().forEach((t, st) -> {
                System.err.println(t.getName());
                for (StackTraceElement e : st) {
                    System.err.println("    " + e);
                }
            });
            Runtime.getRuntime().halt(3);
        });
        describe();
        startDaemon();
        startGuest();
        api = new Api(connect(dir.resolve("api.sock")));
        events = new Events(connect(dir.resolve("api.sock")));
        startConsoleClient();
        streams = new Stream[c.ports];
        for (int i = 0; i < c.ports; i++) {
            streams[i] = new Stream(i, track(connect(sock("s" + i))));
        }
        List<Thread> responders = new ArrayList<>();
        for (int i = 0; i < c.churnPorts; i++) {
            SocketChannel ch = track(connect(sock("g" + i)));
            int nr = churnNr(i);
            responders.add(Thread.ofPlatform().daemon().name("responder-g" + i).start(() -> responder(ch, nr)));
        }
        awaitMark("ready", 240);
        log("guest ready: %d stream ports, %d host-churn ports, %d guest-churn ports, %d hot slots; seed %d; %.1f min",
                c.ports, c.servePorts, c.churnPorts, c.hotSlots, c.seed, c.minutes);
        long t0 = System.nanoTime();
        streamsStarted = t0;
        for (Stream s : streams) {
            s.start();
        }
        Thread sampler = Thread.ofPlatform().daemon().name("sampler").start(() -> sampleLoop(t0));
        sleepUnlessAborted(5000);
        long fdStart = fds(daemon.pid());
        info.put("fds at the start of churn", Long.toString(fdStart));
        List<Thread> churn = new ArrayList<>();
        for (int i = 0; i < c.servePorts; i++) {
            int k = i;
            churn.add(Thread.ofPlatform().name("host-churn-c" + i).start(() -> guarded("host churn c" + k, () -> hostChurn(k))));
        }
        churn.add(Thread.ofPlatform().name("hot").start(() -> guarded("hot-plug", this::hotChurn)));
        churn.add(Thread.ofPlatform().name("resize").start(() -> guarded("resize", this::resizeChurn)));
        long end = t0 + (long) (c.minutes * 60e9);
        long nextProgress = System.nanoTime() + 30_000_000_000L;
        while (System.nanoTime() < end && !abort) {
            pause(200);
            if (System.nanoTime() > nextProgress) {
                nextProgress += 30_000_000_000L;
                long[] s = samples.isEmpty() ? new long[7] : samples.get(samples.size() - 1);
                log("%4.1f min: to guest %s, to host %s, faults %d, rss %.1f MiB, fds %d", (System.nanoTime() - t0) / 60e9,
                        human(s[4]), human(s[5]), s[6], s[1] / 1024.0, s[2]);
            }
        }
        log("churn stops");
        stopChurn = true;
        for (Thread t : churn) {
            t.join(180_000);
            if (t.isAlive()) {
                fail("%s did not finish its current step within 180 s", t.getName());
            }
        }
        long fdEnd = -1;
        if (!abort) {
            for (int i = 0; i < c.servePorts; i++) {
                int nr = serveNr(i);
                long want = seen("host-connected:" + nr);
                awaitEvent("host-disconnected", nr, want, 30, "vportd to notice the last host client of c" + i + " leave");
            }
            sleepUnlessAborted(3000);
            fdEnd = fds(daemon.pid());
            info.put("fds after churn settled", Long.toString(fdEnd));
        }
        log("streams end: sending END records");
        stopStreams = true;
        for (Stream s : streams) {
            s.join(300_000);
        }
        JsonNode metrics = null;
        if (!abort) {
            metrics = api.call(JSON.createObjectNode().put("op", "metrics"));
        }
        sample(t0);
        sampler.interrupt(); // the last sample is taken before the guest powers off (its session's fds go then)
        sampler.join(5000);
        double seconds = (System.nanoTime() - t0) / 1e9;
        int status = awaitGuestExit(180);
        shutdown = true;
        for (Thread t : responders) {
            t.join(100);
        }
        boolean daemonAlive = daemon.isAlive();
        closeAll();
        stopProcess(daemon);
        check(status, metrics, fdStart, fdEnd, daemonAlive, seconds);
        writeOutputs();
        if (failures.isEmpty()) {
            log("PASS");
            return 0;
        }
        log("FAIL: %d problem(s):", failures.size());
        failures.forEach(f -> System.err.println("  - " + f));
        return 1;
    }

    // ---- processes -----------------------------------------------------------------------

    void startDaemon() throws IOException {
        List<String> cmd = new ArrayList<>(List.of(c.javaCmd, "--enable-native-access=ALL-UNNAMED"));
        if (!c.vportdJavaOpts.isBlank()) {
            cmd.addAll(List.of(c.vportdJavaOpts.trim().split("\\s+")));
        }
        cmd.add("-Xlog:gc:file=" + c.out.resolve("vportd-gc.log") + ":uptimemillis");
        daemonStarted = System.nanoTime();
        cmd.addAll(List.of("-jar", c.jar.toString(),
                "--socket-path", dir.resolve("vportd.sock").toString(), "--max-ports", Integer.toString(maxPorts()),
                "--api-socket", dir.resolve("api.sock").toString(),
                "--port", "nr=0,console,socket=" + sock("console")));
        for (int i = 0; i < c.ports; i++) {
            cmd.addAll(List.of("--port", "nr=" + streamNr(i) + ",name=s" + i + ",socket=" + sock("s" + i)));
        }
        for (int i = 0; i < c.servePorts; i++) {
            cmd.addAll(List.of("--port", "nr=" + serveNr(i) + ",name=c" + i + ",socket=" + sock("c" + i)));
        }
        for (int i = 0; i < c.churnPorts; i++) {
            cmd.addAll(List.of("--port", "nr=" + churnNr(i) + ",name=g" + i + ",socket=" + sock("g" + i)));
        }
        Path logFile = c.out.resolve("vportd.log");
        daemon = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(logFile.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        LIVE.add(daemon);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!Files.exists(dir.resolve("vportd.sock")) || !Files.exists(dir.resolve("api.sock"))) {
            if (!daemon.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("vportd did not start:\n" + Files.readString(logFile));
            }
            pause(50);
        }
        log("vportd pid %d, %d ports (max %d), log %s", daemon.pid(), 1 + c.ports + c.servePorts + c.churnPorts, maxPorts(), logFile);
    }

    void startGuest() throws IOException {
        StringBuilder s = new StringBuilder("""
                mark() { echo "VPORTD-MARK $*"; }
                fail() { mark fail "$*"; exit 1; }
                need_ports() {
                  _i=0
                  while :; do
                    _missing=""
                    for _n in "$@"; do [ -L "/dev/virtio-ports/$_n" ] || _missing="$_missing $_n"; done
                    [ -z "$_missing" ] && return 0
                    [ $_i -ge 600 ] && fail "no /dev/virtio-ports link for:$_missing"
                    _i=$((_i + 1)); sleep 0.1
                  done
                }
                """);
        s.append("need_ports");
        for (int i = 0; i < c.ports; i++) s.append(" s").append(i);
        for (int i = 0; i < c.servePorts; i++) s.append(" c").append(i);
        for (int i = 0; i < c.churnPorts; i++) s.append(" g").append(i);
        long seed = c.seed;
        s.append('\n').append("""
                exec 3<>/dev/hvc0 || fail "cannot open /dev/hvc0"
                mark ready
                soaktool serve %1$d %2$d & sv=$!
                soaktool churn %1$d %3$d & ch=$!
                soaktool hot %1$d & ht=$!
                soaktool streams %1$d %4$d; st=$?
                mark streams-exit $st
                kill -TERM $sv $ch $ht
                wait $sv; a=$?; wait $ch; b=$?; wait $ht; h=$?
                mark size "$(stty -F /dev/hvc0 size)"
                mark helpers "$a $b $h"
                [ $st -eq 0 ] && [ $a -eq 0 ] && [ $b -eq 0 ] && [ $h -eq 0 ] || exit 1
                mark done
                """.formatted(seed, c.servePorts, c.churnPorts, c.ports));
        Path scen = c.out.resolve("scenario.sh");
        Files.writeString(scen, s.toString());
        int timeout = (int) (c.minutes * 60) + 480;
        List<String> cmd = new ArrayList<>(List.of(c.repo.resolve("integration-tests/rig/run-guest").toString(),
                "--scenario", scen.toString(), "--timeout", Integer.toString(timeout), "--socket-dir", dir.toString(),
                "--memory", Integer.toString(c.memoryMiB), "--add-file", c.soaktool + ":bin/soaktool", "--",
                "-chardev", "socket,id=vportd0,path=" + dir.resolve("vportd.sock"),
                "-device", "vhost-user-test-device-pci,chardev=vportd0,virtio-id=3,num_vqs=" + 2 * (maxPorts() + 1)
                        + ",config_size=12,vq_size=256"));
        guest = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        LIVE.add(guest);
        Path logFile = c.out.resolve("console.log");
        Thread.ofPlatform().daemon().name("console").start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(guest.getInputStream(), StandardCharsets.UTF_8));
                 var w = Files.newBufferedWriter(logFile)) {
                String line;
                while ((line = r.readLine()) != null) {
                    line = line.replace("\r", "");
                    console.add(line);
                    w.write(line);
                    w.newLine();
                    w.flush();
                    int k = line.indexOf("VPORTD-MARK ");
                    if (k >= 0) {
                        String[] kv = line.substring(k + 12).trim().split(" ", 2);
                        marks.putIfAbsent(kv[0], kv.length > 1 ? kv[1] : "");
                        if (kv[0].equals("fail")) {
                            fail("guest: %s", kv.length > 1 ? kv[1] : "");
                        }
                    }
                    if (line.contains("accel=") && !info.containsKey("accelerator")) {
                        var m = java.util.regex.Pattern.compile("accel=(\\w+)").matcher(line);
                        if (m.find()) {
                            info.put("accelerator", m.group(1));
                        }
                    }
                    if (line.contains("VPORTD-GUEST-BOOTED kernel=")) {
                        info.put("guest kernel", line.substring(line.indexOf("kernel=") + 7).trim());
                    }
                }
            } catch (IOException e) {
                console.add("(console ended: " + e + ")");
            }
        });
        log("guest booting (console: %s)", logFile);
    }

    void awaitMark(String key, int seconds) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!marks.containsKey(key)) {
            if (abort || !guest.isAlive() || System.nanoTime() > deadline) {
                throw new IllegalStateException("no guest mark '" + key + "' (" + (guest.isAlive() ? "timeout" : "guest ended")
                        + ")\n" + tail());
            }
            pause(20);
        }
    }

    int awaitGuestExit(int seconds) throws InterruptedException {
        if (!guest.waitFor(seconds, TimeUnit.SECONDS)) {
            fail("the guest did not power off within %d s after the streams ended", seconds);
            stopProcess(guest);
            return -1;
        }
        pause(300); // the console thread reads the last lines
        return guest.exitValue();
    }

    String tail() {
        int n = console.size();
        return String.join("\n", console.subList(Math.max(0, n - 30), n));
    }

    static void stopProcess(Process p) {
        p.destroy();
        try {
            if (!p.waitFor(20, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
        }
    }

    // ---- streams -------------------------------------------------------------------------

    static int mix32(int x) {
        x ^= x >>> 16;
        x *= 0x7feb352d;
        x ^= x >>> 15;
        x *= 0x846ca68b;
        x ^= x >>> 16;
        return x;
    }

    static int streamKey(int seed, int port, int dir) {
        return mix32(seed ^ mix32(port * 2 + dir + 1));
    }

    /** Writes one record at b[off]; returns its length. Same bytes as soaktool.c's make_record. */
    static int record(byte[] b, int off, int key, int port, int dir, int seq, boolean end, long total) {
        int len = end ? 8 : 1 + Integer.remainderUnsigned(mix32(key + seq * 0x9e3779b9), MAXPAY);
        int type = end ? 1 : 0;
        int check = mix32(key ^ seq ^ (len << 16) ^ type) & 0xffff;
        b[off] = (byte) 0xa5;
        b[off + 1] = (byte) type;
        b[off + 2] = (byte) port;
        b[off + 3] = (byte) dir;
        for (int i = 0; i < 4; i++) {
            b[off + 4 + i] = (byte) (seq >>> (8 * i));
        }
        b[off + 8] = (byte) len;
        b[off + 9] = (byte) (len >>> 8);
        b[off + 10] = (byte) check;
        b[off + 11] = (byte) (check >>> 8);
        if (end) {
            for (int i = 0; i < 8; i++) {
                b[off + HDR + i] = (byte) (total >>> (8 * i));
            }
        } else {
            int h = mix32(key ^ (seq * 0x9e3779b9));
            for (int i = 0; i < len; i++) {
                b[off + HDR + i] = (byte) ((h >>> ((i & 3) * 8)) + (i >>> 2) * 167);
            }
        }
        return HDR + len;
    }

    /** One stream port: a writer and a checking reader on one host connection for the whole run. */
    final class Stream {
        final int port;
        final SocketChannel ch;
        final int ktx, krx;
        final AtomicLong sent = new AtomicLong(), received = new AtomicLong();
        volatile int recordsSent, recordsReceived;
        volatile boolean gotEnd, sentEnd;
        final LongAdder pauses = new LongAdder();
        Thread writer, reader;

        Stream(int port, SocketChannel ch) {
            this.port = port;
            this.ch = ch;
            this.ktx = streamKey((int) c.seed, port, 0);
            this.krx = streamKey((int) c.seed, port, 1);
        }

        void start() {
            writer = Thread.ofPlatform().daemon().name("tx-s" + port).start(() -> guarded("stream s" + port + " host->guest writer", this::write));
            reader = Thread.ofPlatform().daemon().name("rx-s" + port).start(() -> guarded("stream s" + port + " guest->host reader", this::read));
        }

        void join(long ms) throws InterruptedException {
            long deadline = System.currentTimeMillis() + ms;
            while ((writer.isAlive() || reader.isAlive()) && System.currentTimeMillis() < deadline) {
                if (abort) {
                    closeAll(); // unblocks every reader and writer
                }
                writer.join(200);
                reader.join(200);
            }
            if (!abort && (writer.isAlive() || reader.isAlive())) {
                fail("stream s%d did not finish: END sent %b, END received %b, %d bytes sent, %d received", port, sentEnd, gotEnd,
                        sent.get(), received.get());
            }
        }

        void write() throws IOException {
            Random rnd = new Random(c.seed * 1_000_003L + port);
            byte[] buf = new byte[16384 + MAXREC];
            int seq = 0;
            long total = 0;
            while (!stopStreams && !abort) {
                int used = 0;
                while (used < 16384) {
                    used += record(buf, used, ktx, port, 0, seq++, false, 0);
                }
                if (port == 0 && c.corruptAt >= total && c.corruptAt < total + used) {
                    buf[(int) (c.corruptAt - total)] ^= 0x10;
                    log("injected: flipped bit 4 of host->guest byte %d of s0", c.corruptAt);
                }
                writeFully(ch, ByteBuffer.wrap(buf, 0, used));
                total += used;
                sent.set(total);
                recordsSent = seq;
                if (rnd.nextInt(16) == 0) {
                    pauses.increment();
                    pause(rnd.nextInt(200));
                }
            }
            if (abort) {
                return;
            }
            int len = record(buf, 0, ktx, port, 0, seq++, true, total);
            writeFully(ch, ByteBuffer.wrap(buf, 0, len));
            sent.set(total + len);
            recordsSent = seq;
            sentEnd = true;
        }

        void read() throws IOException {
            Random rnd = new Random(c.seed * 1_000_033L + port);
            ByteBuffer in = ByteBuffer.allocate(32768);
            byte[] exp = new byte[MAXREC];
            int expLen = 0, off = 0, seq = 0;
            long pos = 0, recStart = 0;
            boolean endRec = false;
            while (!gotEnd) {
                in.clear();
                int n = ch.read(in);
                if (n < 0) {
                    throw new IOException("end of stream on s" + port + " before the guest's END record, after " + pos + " bytes");
                }
                byte[] a = in.array();
                for (int i = 0; i < n; i++) {
                    if (gotEnd) {
                        throw new IOException("s" + port + " guest->host: " + (n - i) + " byte(s) after the END record");
                    }
                    if (off == 0) {
                        expLen = record(exp, 0, krx, port, 1, seq, false, 0);
                        recStart = pos;
                    }
                    if (off == 1 && a[i] == 1 && exp[1] == 0) {
                        expLen = record(exp, 0, krx, port, 1, seq, true, recStart);
                        endRec = true;
                    }
                    if (a[i] != exp[off]) {
                        throw new IOException(String.format(Locale.ROOT,
                                "s%d guest->host: stream byte %d (record %d, byte %d of it): expected 0x%02x, got 0x%02x",
                                port, pos, seq, off, exp[off] & 0xff, a[i] & 0xff));
                    }
                    pos++;
                    if (++off == expLen) {
                        off = 0;
                        seq++;
                        if (endRec) {
                            gotEnd = true;
                        }
                    }
                }
                received.set(pos);
                recordsReceived = seq;
                if (rnd.nextInt(64) == 0) {
                    pauses.increment();
                    pause(rnd.nextInt(200));
                }
            }
        }
    }

    // ---- churn ---------------------------------------------------------------------------

    static int answer(int id, int nonce) {
        return mix32(nonce ^ 0x5bd1e995) ^ (id * 0x9e3779b1);
    }

    void count(String kind) {
        faults.computeIfAbsent(kind, k -> new LongAdder()).increment();
    }

    long faultsTotal() {
        return faults.values().stream().mapToLong(LongAdder::sum).sum();
    }

    /** Host responder on a port the guest opens and closes: answers each request line. */
    void responder(SocketChannel ch, int nr) {
        try {
            BufferedReader r = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.US_ASCII));
            String line;
            while ((line = r.readLine()) != null) {
                String[] f = line.split(" ");
                if (f.length != 3 || !f[0].equals("Q")) {
                    fail("port %d: the guest sent a bad request line '%s'", nr, line);
                    return;
                }
                int id = Integer.parseUnsignedInt(f[1]);
                int nonce = Integer.parseUnsignedInt(f[2], 16);
                writeFully(ch, ascii(String.format(Locale.ROOT, "A %d %08x\n", Integer.toUnsignedLong(id), answer(id, nonce))));
                responderAnswers.increment();
            }
            if (!shutdown) {
                fail("port %d: the responder's connection ended during the run", nr);
            }
        } catch (IOException e) {
            if (!shutdown) {
                fail("port %d responder: %s", nr, e);
            }
        }
    }

    final AtomicInteger requestIds = new AtomicInteger();

    /** A host client that connects, makes 0-3 exchanges with the guest, and leaves; again and again. */
    void hostChurn(int i) throws IOException {
        Random rnd = new Random(c.seed * 7919 + i);
        int nr = serveNr(i);
        while (!stopChurn && !abort) {
            long connects = seen("host-connected:" + nr);
            awaitEvent("host-disconnected", nr, connects, 30, "vportd to notice that the previous client of c" + i + " left");
            try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(sock("c" + i)))) {
                count("host client connects (c ports)");
                awaitEvent("host-connected", nr, connects + 1, 30, "vportd to accept the client on c" + i);
                int k = rnd.nextInt(4);
                if (k == 0) {
                    count("host client leaves without a word");
                }
                ch.configureBlocking(false);
                try (Selector sel = Selector.open()) {
                    ch.register(sel, SelectionKey.OP_READ);
                    for (int j = 0; j < k; j++) {
                        int id = requestIds.incrementAndGet();
                        int nonce = rnd.nextInt();
                        writeFully(ch, ascii(String.format(Locale.ROOT, "Q %d %08x\n", Integer.toUnsignedLong(id), nonce)));
                        String got = readLine(ch, sel, 60);
                        String want = String.format(Locale.ROOT, "A %d %08x", Integer.toUnsignedLong(id), answer(id, nonce));
                        if (!want.equals(got)) {
                            fail("c%d: request %d answered '%s', expected '%s'", i, id, got, want);
                            return;
                        }
                        hostExchanges.increment();
                        count("host-initiated exchanges (c ports)");
                    }
                }
                pause(rnd.nextInt(150));
            }
            pause(rnd.nextInt(300));
        }
    }

    /** Hot-plug: add-port and remove-port on random slots, some with a host client, some while the guest has them open. */
    void hotChurn() throws IOException {
        Random rnd = new Random(c.seed * 104729 + 1);
        boolean[] present = new boolean[c.hotSlots];
        SocketChannel[] clients = new SocketChannel[c.hotSlots];
        while (!stopChurn && !abort) {
            int k = rnd.nextInt(c.hotSlots);
            int nr = hotNr(k);
            if (!present[k]) {
                long readyBefore = seen("port-ready:" + nr);
                apiOk(JSON.createObjectNode().put("op", "add-port").put("nr", nr).put("name", "hot" + k)
                        .put("endpoint", "socket=" + sock("hot" + k)));
                count("ports hot-added");
                present[k] = true;
                if (rnd.nextInt(8) == 0) {
                    count("ports removed right after add (before the guest answered)");
                } else {
                    awaitEvent("port-ready", nr, readyBefore + 1, 60, "the guest to create hot-added port " + nr);
                    if (rnd.nextBoolean()) {
                        SocketChannel ch = connect(sock("hot" + k));
                        clients[k] = ch;
                        count("host clients on hot-added ports");
                        Thread.ofPlatform().daemon().name("hot-drain-" + k).start(() -> drain(ch));
                    }
                    pause(rnd.nextInt(2500));
                }
            }
            if (present[k]) {
                long removedBefore = seen("port-removed:" + nr);
                ObjectNode req = JSON.createObjectNode().put("op", "remove-port").put("nr", nr);
                JsonNode r = apiOk(req);
                count("ports hot-removed");
                present[k] = false;
                if (r.path("removed").path("guest-was-open").asBoolean()) {
                    count("ports removed while the guest had them open");
                }
                if (clients[k] != null) {
                    count("ports removed with a host client connected");
                }
                awaitEvent("port-removed", nr, removedBefore + 1, 60, "port " + nr + " to be removed");
                if (clients[k] != null) {
                    clients[k].close();
                    clients[k] = null;
                }
            }
            pause(rnd.nextInt(400));
        }
    }

    void resizeChurn() throws IOException {
        Random rnd = new Random(c.seed * 15485863L + 2);
        while (!stopChurn && !abort) {
            int cols = 20 + rnd.nextInt(230);
            int rows = 10 + rnd.nextInt(90);
            apiOk(JSON.createObjectNode().put("op", "resize").put("nr", 0).put("cols", cols).put("rows", rows));
            lastCols = cols;
            lastRows = rows;
            count("console resizes");
            pause(300 + rnd.nextInt(2500));
        }
        pause(1500); // the last RESIZE reaches the guest's tty before the guest reads its size
    }

    void startConsoleClient() throws IOException {
        SocketChannel ch = track(connect(sock("console")));
        Thread.ofPlatform().daemon().name("console-client").start(() -> drain(ch));
    }

    static void drain(SocketChannel ch) {
        ByteBuffer b = ByteBuffer.allocate(4096);
        try {
            while (ch.read(b.clear()) >= 0) {
                // guest output on a console or a hot-added port: read and dropped
            }
        } catch (IOException e) {
            // closed at the end
        }
    }

    // ---- management API ------------------------------------------------------------------

    final class Api {
        final SocketChannel ch;
        final BufferedReader in;
        int nextId = 1;

        Api(SocketChannel ch) {
            this.ch = track(ch);
            this.in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
        }

        synchronized JsonNode call(ObjectNode req) throws IOException {
            int id = nextId++;
            req.put("id", id);
            writeFully(ch, ascii(JSON.writeValueAsString(req) + "\n"));
            String line = in.readLine();
            if (line == null) {
                throw new IOException("the management API closed during " + req);
            }
            JsonNode r = JSON.readTree(line);
            if (r.path("id").asInt() != id) {
                throw new IOException("response out of order: " + line);
            }
            return r;
        }
    }

    JsonNode apiOk(ObjectNode req) throws IOException {
        JsonNode r = api.call(req);
        if (!r.path("ok").asBoolean()) {
            throw new IOException("vportd refused " + req + ": " + r);
        }
        return r;
    }

    /** The event subscription: counts every event by "type:nr". */
    final class Events {
        final Map<String, AtomicLong> counts = new ConcurrentHashMap<>();

        Events(SocketChannel ch) throws IOException {
            track(ch);
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            writeFully(ch, ascii("{\"id\":0,\"op\":\"subscribe\"}\n"));
            String first = in.readLine();
            if (first == null || !first.contains("\"ok\":true")) {
                throw new IOException("subscribe failed: " + first);
            }
            Thread.ofPlatform().daemon().name("events").start(() -> {
                try {
                    String line;
                    while ((line = in.readLine()) != null) {
                        JsonNode e = JSON.readTree(line);
                        String type = e.path("event").asText();
                        if (type.equals("events-dropped")) {
                            fail("the event subscription lost events: %s", line);
                        }
                        String key = type + ":" + e.path("data").path("nr").asInt(-1);
                        synchronized (this) {
                            counts.computeIfAbsent(key, x -> new AtomicLong()).incrementAndGet();
                            counts.computeIfAbsent(type, x -> new AtomicLong()).incrementAndGet();
                            notifyAll();
                        }
                    }
                } catch (IOException e) {
                    if (!shutdown) {
                        fail("event subscription ended: %s", e);
                    }
                }
            });
        }
    }

    long seen(String key) {
        AtomicLong v = events.counts.get(key);
        return v == null ? 0 : v.get();
    }

    void awaitEvent(String type, int nr, long atLeast, int seconds, String what) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        synchronized (events) {
            while (seen(type + ":" + nr) < atLeast) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || abort) {
                    throw new IOException("waited " + seconds + " s for " + what + " (" + type + " #" + atLeast + " of port " + nr
                            + ", seen " + seen(type + ":" + nr) + ")");
                }
                try {
                    events.wait(Math.min(200, Math.max(1, left / 1_000_000)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
            }
        }
    }

    // ---- sampling ------------------------------------------------------------------------

    void sampleLoop(long t0) {
        try {
            while (!shutdown && !Thread.currentThread().isInterrupted()) {
                sample(t0);
                Thread.sleep(c.sampleSeconds * 1000L);
            }
        } catch (InterruptedException e) {
            // the run is over
        }
    }

    void sample(long t0) {
        long pid = daemon.pid();
        long toGuest = 0, toHost = 0;
        for (Stream s : streams) {
            toGuest += s.sent.get();
            toHost += s.received.get();
        }
        long rss = statusField(pid, "VmRSS:");
        if (rss < 0) {
            return;
        }
        samples.add(new long[] {(System.nanoTime() - t0) / 1_000_000, rss, fds(pid), statusField(pid, "Threads:"), toGuest, toHost,
                faultsTotal()});
    }

    static long statusField(long pid, String field) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (l.startsWith(field)) {
                    return Long.parseLong(l.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | NumberFormatException e) {
            // the process is gone
        }
        return -1;
    }

    static long fds(long pid) {
        try (var s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        } catch (IOException e) {
            return -1;
        }
    }

    // ---- checks and outputs --------------------------------------------------------------

    final List<String[]> checks = new ArrayList<>(); // what, result, PASS/FAIL
    long bytesToGuest, bytesToHost;

    void checkThat(boolean ok, String what, String result) {
        checks.add(new String[] {what, result, ok ? "pass" : "FAIL"});
        if (!ok) {
            failures.add(what + ": " + result);
        }
    }

    void check(int status, JsonNode metrics, long fdStart, long fdEnd, boolean daemonAlive, double seconds) throws IOException {
        info.put("streaming time (churn, then the END exchange)", String.format(Locale.ROOT, "%.1f min", seconds / 60));
        boolean aborted = !failures.isEmpty();
        checkThat(failures.isEmpty(), "no failure reported while running (stream checks, exchanges, API, events)",
                aborted ? failures.size() + " problem(s), first: " + failures.get(0) : "none");
        checkThat(status == 0 && marks.containsKey("done"), "guest scenario succeeded (its own byte checks, exchanges, helpers)",
                "exit status " + status + (marks.containsKey("helpers") ? ", helpers " + marks.get("helpers") : ""));
        checkThat(daemonAlive, "vportd still running at the end", daemonAlive ? "yes" : "no: it died during the run");
        // streams: both sides' counts
        long mism = 0, recs = 0;
        StringBuilder firstBad = new StringBuilder();
        Map<Integer, long[]> perPort = metricsBytes(metrics);
        long metricMism = 0;
        for (Stream s : streams) {
            bytesToGuest += s.sent.get();
            bytesToHost += s.received.get();
            recs += s.recordsSent + s.recordsReceived;
            String m = marks.get("stream-" + s.port);
            String[] f = m == null ? new String[0] : m.trim().split(" ");
            boolean ok = f.length == 5 && Long.parseLong(f[0]) == s.received.get() && Long.parseLong(f[1]) == s.sent.get()
                    && Integer.parseInt(f[2]) == s.recordsReceived && Integer.parseInt(f[3]) == s.recordsSent && s.gotEnd && s.sentEnd;
            if (f.length == 5) {
                pauses.merge("guest reader/writer pauses", Long.parseLong(f[4]), Long::sum);
            }
            if (!ok) {
                mism++;
                if (firstBad.isEmpty()) {
                    firstBad.append(String.format(Locale.ROOT, "s%d: host sent %d B/%d records, received %d B/%d records; guest says %s",
                            s.port, s.sent.get(), s.recordsSent, s.received.get(), s.recordsReceived, m));
                }
            }
            long[] mb = perPort.get(streamNr(s.port));
            if (mb == null || mb[0] != s.received.get() || mb[1] != s.sent.get()) {
                metricMism++;
            }
            pauses.merge("host reader/writer pauses", s.pauses.sum(), Long::sum);
        }
        info.put("stream records moved", Long.toString(recs));
        checkThat(mism == 0, "every stream port: END both ways, and bytes and records sent = received on the other side",
                mism == 0 ? c.ports + " ports, " + human(bytesToGuest) + " to the guest, " + human(bytesToHost) + " to the host"
                        : mism + " port(s) differ; first: " + firstBad);
        checkThat(metrics != null && metricMism == 0, "vportd's own byte counters (metrics) = bytes the host sent/received per stream port",
                metrics == null ? "not read (run aborted)" : metricMism == 0 ? "all " + c.ports + " ports equal" : metricMism + " port(s) differ");
        long served = parseLong(marks.get("serve"), 0);
        checkThat(served == hostExchanges.sum() && !aborted, "every host-initiated exchange answered exactly once",
                "host made " + hostExchanges.sum() + ", guest answered " + served);
        String[] ch = marks.getOrDefault("churn", "-1 -1").trim().split(" ");
        long gx = Long.parseLong(ch[1]);
        if (gx >= 0) {
            count("guest port opens/closes (g ports)", Long.parseLong(ch[0]));
            count("guest-initiated exchanges (g ports)", gx);
        }
        checkThat(gx == responderAnswers.sum() && gx > 0, "every guest-initiated exchange answered (guest opens, asks, closes)",
                "guest completed " + gx + ", host answered " + responderAnswers.sum());
        String[] hot = marks.getOrDefault("hot", "0 0 0").trim().split(" ");
        count("guest opens of hot-added ports", Long.parseLong(hot[0]));
        count("guest saw a held hot port vanish (read error)", Long.parseLong(hot[2]));
        String size = marks.getOrDefault("size", "?").trim();
        String want = lastRows + " " + lastCols;
        checkThat(lastCols < 0 || size.equals(want), "console size in the guest (stty size on /dev/hvc0) = last resize",
                "guest " + size + ", last resize rows cols " + want);
        // RSS: after warm-up it stays within a fixed slack of the warm-up peak
        long warmMs = (long) Math.max(60_000, c.minutes * 60_000 * 0.25);
        long warmPeak = 0, laterPeak = 0, first = -1, last = -1;
        for (long[] s : samples) {
            if (first < 0) first = s[1];
            last = s[1];
            if (s[0] <= warmMs) warmPeak = Math.max(warmPeak, s[1]);
            else laterPeak = Math.max(laterPeak, s[1]);
        }
        info.put("RSS growth over the second half of the samples", slope());
        info.put("RSS (first sample, warm-up peak, later peak, last)", String.format(Locale.ROOT, "%.1f, %.1f, %.1f, %.1f MiB",
                first / 1024.0, warmPeak / 1024.0, laterPeak / 1024.0, last / 1024.0));
        long peak = Math.max(warmPeak, laterPeak);
        checkThat(peak <= c.rssCeilingMiB * 1024, "RSS bounded: never above " + c.rssCeilingMiB + " MiB",
                String.format(Locale.ROOT, "peak %.1f MiB", peak / 1024.0));
        gcSummary();
        checkThat(laterPeak <= warmPeak + c.rssSlackMiB * 1024, "RSS flat: after the warm-up (" + warmMs / 1000
                        + " s) it never exceeds the warm-up peak by more than " + c.rssSlackMiB + " MiB",
                String.format(Locale.ROOT, "warm-up peak %.1f MiB, later peak %.1f MiB", warmPeak / 1024.0, laterPeak / 1024.0));
        checkThat(fdEnd >= 0 && Math.abs(fdEnd - fdStart) <= c.fdSlack, "fds flat: after churn settles, vportd's fd count is back to its "
                + "level when churn started (±" + c.fdSlack + ")", "start " + fdStart + ", end " + fdEnd);
        String log = Files.exists(c.out.resolve("vportd.log")) ? Files.readString(c.out.resolve("vportd.log")) : "";
        List<String> bad = log.lines().filter(l -> l.contains("Exception") || l.contains("SEVERE")).limit(3).toList();
        checkThat(bad.isEmpty(), "vportd logged no exception and no SEVERE line", bad.isEmpty() ? "none" : String.join(" | ", bad));
        info.put("vportd log lines (WARNING)", Long.toString(log.lines().filter(l -> l.contains("WARNING")).count()));
    }

    /** Heap occupancy after each GC, from vportd's -Xlog:gc file: what the live data does while RSS follows the GC's sizing. */
    void gcSummary() {
        Path f = c.out.resolve("vportd-gc.log");
        var p = java.util.regex.Pattern.compile("^\\[(\\d+)ms\\].*Pause.* (\\d+)M->(\\d+)M\\((\\d+)M\\)");
        long n = 0, afterMax = 0, afterLast = -1, afterFirst = -1, committedMax = 0;
        double offsetMs = (streamsStarted - daemonStarted) / 1e6;
        try {
            for (String l : Files.readAllLines(f)) {
                var m = p.matcher(l);
                if (!m.find() || Long.parseLong(m.group(1)) < offsetMs) {
                    continue;
                }
                n++;
                long after = Long.parseLong(m.group(3));
                if (afterFirst < 0) afterFirst = after;
                afterLast = after;
                afterMax = Math.max(afterMax, after);
                committedMax = Math.max(committedMax, Long.parseLong(m.group(4)));
            }
        } catch (IOException e) {
            info.put("heap after GC", "no GC log: " + e.getMessage());
            return;
        }
        info.put("heap after GC while streaming (first, largest, last; committed heap at most)", n == 0 ? "no GC"
                : String.format(Locale.ROOT, "%d, %d, %d MiB; %d MiB; %d collections", afterFirst, afterMax, afterLast, committedMax, n));
    }

    /** Least-squares slope of RSS over the second half of the samples, in MiB per hour. */
    String slope() {
        List<long[]> h = samples.subList(samples.size() / 2, samples.size());
        if (h.size() < 3) {
            return "too few samples";
        }
        double mx = 0, my = 0;
        for (long[] r : h) {
            mx += r[0];
            my += r[1];
        }
        mx /= h.size();
        my /= h.size();
        double sxy = 0, sxx = 0;
        for (long[] r : h) {
            sxy += (r[0] - mx) * (r[1] - my);
            sxx += (r[0] - mx) * (r[0] - mx);
        }
        return sxx == 0 ? "n/a" : String.format(Locale.ROOT, "%+.1f MiB/h (least squares)", sxy / sxx / 1024.0 * 3_600_000);
    }

    void count(String kind, long n) {
        faults.computeIfAbsent(kind, k -> new LongAdder()).add(n);
    }

    static long parseLong(String s, long dflt) {
        try {
            return s == null ? dflt : Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    /** nr -> {to_host, to_guest} from vportd_port_bytes_total. */
    static Map<Integer, long[]> metricsBytes(JsonNode metrics) {
        Map<Integer, long[]> m = new ConcurrentHashMap<>();
        if (metrics == null) {
            return m;
        }
        var p = java.util.regex.Pattern.compile("vportd_port_bytes_total\\{port=\"(\\d+)\",name=\"[^\"]*\",direction=\"(to_host|to_guest)\"\\} (\\d+)");
        for (String line : metrics.path("metrics").asText().split("\n")) {
            var mm = p.matcher(line);
            if (mm.matches()) {
                long[] v = m.computeIfAbsent(Integer.parseInt(mm.group(1)), k -> new long[2]);
                v[mm.group(2).equals("to_host") ? 0 : 1] = Long.parseLong(mm.group(3));
            }
        }
        return m;
    }

    void writeOutputs() throws IOException {
        StringBuilder csv = new StringBuilder("seconds,rss_kib,fds,threads,bytes_to_guest,bytes_to_host,faults\n");
        for (long[] s : samples) {
            csv.append(String.format(Locale.ROOT, "%.1f,%d,%d,%d,%d,%d,%d%n", s[0] / 1000.0, s[1], s[2], s[3], s[4], s[5], s[6]));
        }
        Files.writeString(c.out.resolve("samples.csv"), csv);
        String section = SoakReport.section(this);
        Files.writeString(c.out.resolve("summary.md"), section);
        String svg = SoakReport.chart(this);
        Files.writeString(c.out.resolve("rss-fds.svg"), svg);
        System.out.println(section);
        if (c.report != null) {
            SoakReport.splice(c.report, section);
            log("results written into %s", c.report);
        }
        if (c.chart != null) {
            Files.writeString(c.chart, svg);
            log("chart written to %s", c.chart);
        }
        log("outputs in %s", c.out);
    }

    void describe() {
        info.put("date (UTC)", Instant.now().toString().replaceAll("\\.\\d+Z$", "Z"));
        String commit = sh("git", "-C", c.repo.toString(), "log", "-1", "--format=%h %s");
        if (!sh("git", "-C", c.repo.toString(), "status", "--porcelain", "--untracked-files=no").isBlank()) {
            commit += " (with uncommitted changes)";
        }
        info.put("commit", commit);
        info.put("host", sh("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'") + ", "
                + Runtime.getRuntime().availableProcessors() + " CPUs, " + sh("uname", "-r"));
        info.put("JDK", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
                + " (vportd's JVM options: " + (c.vportdJavaOpts.isBlank() ? "defaults" : "`" + c.vportdJavaOpts + "`") + ")");
        info.put("guest", c.memoryMiB + " MiB, 1 vCPU, vq_size 256");
        info.put("seed", Long.toString(c.seed));
    }

    static String sh(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            p.waitFor(10, TimeUnit.SECONDS);
            return s;
        } catch (IOException e) {
            return "?";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "?";
        }
    }

    // ---- helpers -------------------------------------------------------------------------

    interface Step {
        void run() throws Exception;
    }

    void guarded(String what, Step step) {
        try {
            step.run();
        } catch (Exception e) {
            if (!abort || !(e instanceof java.nio.channels.ClosedChannelException)) {
                fail("%s: %s", what, e.getMessage() != null ? e.getMessage() : e.toString());
            }
        }
    }

    /** The first failure stops the run; what fails after it (closed sockets, cut waits) is logged only, as a consequence. */
    synchronized void fail(String fmt, Object... args) {
        String m = String.format(Locale.ROOT, fmt, args);
        if (abort) {
            log("after the abort: %s", m);
            return;
        }
        failures.add(m);
        log("FAILURE: %s", m);
        abort = true;
    }

    <T extends AutoCloseable> T track(T r) {
        closeables.add(r);
        return r;
    }

    void closeAll() {
        AutoCloseable r;
        while ((r = closeables.poll()) != null) {
            try {
                r.close();
            } catch (Exception ignored) {
                // closing at the end
            }
        }
    }

    void sleepUnlessAborted(long ms) {
        long end = System.nanoTime() + ms * 1_000_000;
        while (!abort && System.nanoTime() < end) {
            pause(50);
        }
    }

    SocketChannel connect(Path path) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                return SocketChannel.open(UnixDomainSocketAddress.of(path));
            } catch (IOException e) {
                if (System.nanoTime() > deadline || (guest != null && !guest.isAlive())) {
                    throw new IOException("cannot connect to " + path + ": " + e.getMessage(), e);
                }
                pause(20);
            }
        }
    }

    static String readLine(SocketChannel ch, Selector sel, int seconds) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        ByteBuffer one = ByteBuffer.allocate(1);
        StringBuilder sb = new StringBuilder();
        while (true) {
            one.clear();
            int n = ch.read(one);
            if (n < 0) {
                throw new IOException("end of stream while waiting for an answer (got '" + sb + "')");
            }
            if (n == 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IOException("no answer within " + seconds + " s (got '" + sb + "')");
                }
                sel.select(Math.max(1, left / 1_000_000));
                sel.selectedKeys().clear();
                continue;
            }
            char ch0 = (char) one.get(0);
            if (ch0 == '\n') {
                return sb.toString();
            }
            sb.append(ch0);
            if (sb.length() > 100) {
                throw new IOException("answer line too long: " + sb);
            }
        }
    }

    static ByteBuffer ascii(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.US_ASCII));
    }

    static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    static void pause(long ms) {
        try {
            Thread.sleep(ms); // a random pause or a poll interval, not synchronisation
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static String human(long bytes) {
        if (bytes >= 1L << 30) return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
        if (bytes >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
        if (bytes >= 1L << 10) return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
        return bytes + " B";
    }

    static void log(String fmt, Object... args) {
        System.err.printf(Locale.ROOT, "soak: " + fmt + "%n", args);
    }
}
