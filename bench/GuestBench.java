import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * vportd's side-by-side guest benchmark: the same guest kernel under the same QEMU, booted
 * alternately with QEMU's built-in virtio-serial (A) and with vportd through
 * vhost-user-test-device-pci (B), A B A B ... Run it through {@code bench/run}, which builds
 * the daemon jar and the guest helper first and passes their paths.
 *
 * <p>All clocks are the host's: each guest command opens its port and writes one 'R' byte;
 * the host starts its clock when that byte arrives and stops it when the last byte (guest to
 * host) or the guest's 'A' acknowledgement (host to guest) arrives.
 */
public final class GuestBench {

    // ---- configuration ---------------------------------------------------------------

    static final class Config {
        Path repo;
        Path benchtool;
        Path jar;
        Path out;
        Path report;        // Markdown file whose generated section is rewritten (null: none)
        Path chart;         // SVG written (null: none)
        int rounds = 3;
        long totalBytes = 64L << 20;
        long aggBytes = 128L << 20;
        int[] sizes = {4096, 65536, 1 << 20};
        int latencyCount = 10_000;
        int latencyWarmup = 500;
        int aggPorts = 8;
        int idlePorts = 31;
        int hotAdd = 100;
        int hotAddBatch = 16;   // built-in: QMP requests per batch before waiting for the guest (0: all at once)
        int vqSize = 128;       // vportd's vq_size: 128 like the built-in device's fixed data queues (--vq-size 256 for the documented setting)
        boolean hotAddEnabled = true;
        boolean smoke;
        String vportdJavaOpts = "";
        /** Extra vportd options (--vportd-args "--poll-us 50"), appended to every vportd command line. */
        String vportdArgs = "";
        /**
         * Extra properties of the built-in device (--builtin-args "vectors=0": no MSI-X, the legacy
         * interrupt vportd's QEMU device has), appended to its {@code -device virtio-serial-pci,...}.
         */
        String builtinArgs = "";
        String javaCmd;
        int guestMemoryMiB = 512;
        String note = "";
        String only;
        String phase = "all"; // all, main (no hot-add boots) or hot-add (only the hot-add boots)
        boolean guestStats; // print the guest's virtio interrupt counts around each row (diagnosis)        // run one device only (debugging): built-in or vportd
    }

    /** Processes this run started and has not stopped yet; a shutdown hook stops them (run-guest cleans up on SIGTERM). */
    static final java.util.Set<Process> LIVE = java.util.concurrent.ConcurrentHashMap.newKeySet();

    public static void main(String[] args) throws Exception {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(Process::destroy)));
        Config c = parse(args);
        Files.createDirectories(c.out);
        GuestBench b = new GuestBench(c);
        int rc = b.run();
        System.exit(rc);
    }

    static Config parse(String[] args) {
        Config c = new Config();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--repo" -> { c.repo = Path.of(v); i++; }
                case "--benchtool" -> { c.benchtool = Path.of(v); i++; }
                case "--jar" -> { c.jar = Path.of(v); i++; }
                case "--out" -> { c.out = Path.of(v); i++; }
                case "--report" -> { c.report = Path.of(v); i++; }
                case "--chart" -> { c.chart = Path.of(v); i++; }
                case "--rounds" -> { c.rounds = Integer.parseInt(v); i++; }
                case "--total-mib" -> { c.totalBytes = Long.parseLong(v) << 20; i++; }
                case "--total-kib" -> { c.totalBytes = Long.parseLong(v) << 10; i++; }
                case "--agg-mib" -> { c.aggBytes = Long.parseLong(v) << 20; i++; }
                case "--agg-kib" -> { c.aggBytes = Long.parseLong(v) << 10; i++; }
                case "--sizes" -> { c.sizes = Arrays.stream(v.split(",")).mapToInt(Integer::parseInt).toArray(); i++; }
                case "--latency-count" -> { c.latencyCount = Integer.parseInt(v); i++; }
                case "--latency-warmup" -> { c.latencyWarmup = Integer.parseInt(v); i++; }
                case "--hot-add" -> { c.hotAdd = Integer.parseInt(v); i++; }
                case "--no-hot-add" -> c.hotAddEnabled = false;
                case "--hot-add-batch" -> { c.hotAddBatch = Integer.parseInt(v); i++; }
                case "--vq-size" -> { c.vqSize = Integer.parseInt(v); i++; }
                case "--only" -> { c.only = v; i++; }
                case "--smoke" -> c.smoke = true;
                case "--guest-stats" -> c.guestStats = true;
                case "--phase" -> { c.phase = v; i++; }
                case "--vportd-java-opts" -> { c.vportdJavaOpts = v; i++; }
                case "--vportd-args" -> { c.vportdArgs = v; i++; }
                case "--builtin-args" -> { c.builtinArgs = v; i++; }
                case "--java" -> { c.javaCmd = v; i++; }
                case "--note" -> { c.note = v; i++; }
                default -> throw new IllegalArgumentException("unknown argument " + a);
            }
        }
        if (c.repo == null || c.benchtool == null || c.jar == null || c.out == null) {
            throw new IllegalArgumentException("--repo, --benchtool, --jar and --out are required (bench/run passes them)");
        }
        if (c.rounds < 1 || c.totalBytes <= 0 || c.aggBytes < c.aggPorts || c.latencyCount < 1) {
            throw new IllegalArgumentException("rounds, sizes and counts must be positive");
        }
        if (!List.of("all", "main", "hot-add").contains(c.phase)) {
            throw new IllegalArgumentException("--phase is all, main or hot-add");
        }
        if (c.phase.equals("main")) {
            c.hotAddEnabled = false;
        }
        if (c.javaCmd == null) {
            c.javaCmd = ProcessHandle.current().info().command().orElse("java");
        }
        return c;
    }

    // ---- results ---------------------------------------------------------------------

    /** One measured value: row key, device, round, value (MB/s, microseconds, ms or MiB). */
    record Sample(String row, String device, int round, double value) {
    }

    static final String BUILTIN = "built-in";
    static final String VPORTD = "vportd";

    private final Config c;
    private final List<Sample> samples = new CopyOnWriteArrayList<>();
    private final Map<String, String> machine = new LinkedHashMap<>();
    private final List<String> problems = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();

    GuestBench(Config c) {
        this.c = c;
    }

    int run() throws Exception {
        long started = System.nanoTime();
        describeMachine();
        log("plan: %d round(s) A B; %s per stream row, write sizes %s; %d round trips; %d ports x %s aggregate; hot-add %s",
                c.rounds, human(c.totalBytes), Arrays.toString(c.sizes), c.latencyCount, c.aggPorts, human(c.aggBytes),
                c.hotAddEnabled ? c.hotAdd + " ports" : "off");
        for (int r = 1; r <= (c.phase.equals("hot-add") ? 0 : c.rounds); r++) {
            for (String dev : devices()) {
                try {
                    mainBoot(dev, r);
                } catch (Exception e) {
                    problem("round %d %s: main boot failed: %s", r, dev, e);
                }
                writeRaw();
            }
        }
        if (c.hotAddEnabled) {
            for (int r = 1; r <= c.rounds; r++) {
                for (String dev : devices()) {
                    try {
                        hotAddBoot(dev, r);
                    } catch (Exception e) {
                        problem("round %d %s: hot-add boot failed: %s", r, dev, e);
                    }
                    writeRaw();
                }
            }
        }
        machine.put("wall time of the run", String.format(Locale.ROOT, "%.1f min", (System.nanoTime() - started) / 60e9));
        String section = Report.section(c, machine, samples, problems, notes);
        Files.writeString(c.out.resolve("report-section.md"), section);
        String svg = Chart.svg(c, samples);
        Files.writeString(c.out.resolve("throughput.svg"), svg);
        if (c.phase.equals("hot-add")) {
            c.chart = null; // no throughput in this run: keep the chart of the main run
        }
        if (c.report != null) {
            Report.splice(c.report, section, c.phase.equals("hot-add") ? "hot-add" : "results");
            log("report section written into %s", c.report);
        }
        if (c.chart != null) {
            Files.writeString(c.chart, svg);
            log("chart written to %s", c.chart);
        }
        System.out.println(section);
        log("results in %s", c.out);
        return problems.isEmpty() ? 0 : 1;
    }

    List<String> devices() {
        return c.only == null ? List.of(BUILTIN, VPORTD) : List.of(c.only);
    }

    void note(String m) {
        if (!notes.contains(m)) {
            notes.add(m);
        }
        log("note: %s", m);
    }

    void problem(String fmt, Object... args) {
        String m = String.format(Locale.ROOT, fmt, args);
        problems.add(m);
        log("PROBLEM: %s", m);
    }

    static void log(String fmt, Object... args) {
        System.err.printf(Locale.ROOT, "bench: " + fmt + "%n", args);
    }

    static String human(long bytes) {
        if (bytes >= 1L << 30 && bytes % (1L << 30) == 0) return (bytes >> 30) + " GiB";
        if (bytes >= 1L << 20 && bytes % (1L << 20) == 0) return (bytes >> 20) + " MiB";
        if (bytes >= 1L << 10 && bytes % (1L << 10) == 0) return (bytes >> 10) + " KiB";
        return bytes + " B";
    }

    void record(String row, String dev, int round, double value) {
        samples.add(new Sample(row, dev, round, value));
        log("round %d %-8s %-14s %.3f", round, dev, row, value);
    }

    void writeRaw() throws IOException {
        StringBuilder sb = new StringBuilder("row\tdevice\tround\tvalue\n");
        for (Sample s : samples) {
            sb.append(s.row()).append('\t').append(s.device()).append('\t').append(s.round()).append('\t')
                    .append(String.format(Locale.ROOT, "%.4f", s.value())).append('\n');
        }
        Files.writeString(c.out.resolve("samples.tsv"), sb.toString());
    }

    // ---- one main boot: streams, latency, aggregate, memory ---------------------------

    /** {@code ,PROPS} for the built-in device's {@code -device} option, or nothing. */
    String builtinExtra() {
        String a = c.builtinArgs.trim();
        if (a.isEmpty()) {
            return "";
        }
        if (a.contains(" ") || a.startsWith(",")) {
            throw new IllegalArgumentException("--builtin-args takes comma-separated properties without spaces, e.g. vectors=0; got '"
                    + a + "'");
        }
        return "," + a;
    }

    void mainBoot(String dev, int round) throws Exception {
        Path dir = Files.createTempDirectory("vportd-bench-");
        List<String> portNames = new ArrayList<>();
        for (int nr = 1; nr <= c.idlePorts; nr++) {
            portNames.add("b" + nr);
        }
        List<String> qemu = new ArrayList<>();
        Daemon daemon = null;
        try {
            if (dev.equals(BUILTIN)) {
                qemu.addAll(List.of("-device", "virtio-serial-pci,id=vser0,max_ports=" + (c.idlePorts + 1)
                        + builtinExtra()));
                for (int nr = 1; nr <= c.idlePorts; nr++) {
                    qemu.addAll(List.of("-chardev", "socket,id=c" + nr + ",path=" + dir.resolve("port-" + nr + ".sock")
                            + ",server=on,wait=off",
                            "-device", "virtserialport,bus=vser0.0,chardev=c" + nr + ",nr=" + nr + ",name=b" + nr));
                }
            } else {
                List<String> a = new ArrayList<>(List.of("--max-ports", Integer.toString(c.idlePorts + 1)));
                for (int nr = 1; nr <= c.idlePorts; nr++) {
                    a.add("--port");
                    a.add("nr=" + nr + ",name=b" + nr + ",socket=" + dir.resolve("port-" + nr + ".sock"));
                }
                daemon = Daemon.start(c, dir, a, "r" + round);
                qemu.addAll(vhostArgs(daemon.vhostSocket, c.idlePorts + 1));
            }
            String script = mainScenario(portNames);
            try (GuestRun g = GuestRun.start(c, dev + "-r" + round, dir, script, qemu, timeoutSeconds())) {
                captureMachine(g);
                g.awaitMark("ready", 120);
                if (daemon != null) {
                    record("rss-idle", dev, round, daemon.rssMiB());
                }
                // The host sides connect once the guest has every port, and only the ports that
                // carry data: with 31 host-connected ports at boot QEMU's built-in device loses
                // control messages (its control queue has 32 entries and a message that finds no
                // buffer is dropped), and the guest then never sees port 1 open.
                List<SocketChannel> hosts = new ArrayList<>();
                for (int nr = 1; nr <= c.aggPorts; nr++) {
                    hosts.add(g.track(connect(dir.resolve("port-" + nr + ".sock"), g)));
                }
                SocketChannel p1 = hosts.get(0);
                long vpid = daemon != null ? daemon.pid() : -1;
                for (int size : c.sizes) {
                    double cpu0 = cpuMillis(vpid);
                    double[] threads0 = vpid > 0 ? threadCpuMillis(vpid) : null;
                    double mbps = guestToHost(p1, c.totalBytes);
                    record("g2h-" + size, dev, round, mbps);
                    cpuPerGiB("g2h-" + size, dev, round, vpid, cpu0, threads0, c.totalBytes);
                }
                for (int size : c.sizes) {
                    double cpu0 = cpuMillis(vpid);
                    double[] threads0 = vpid > 0 ? threadCpuMillis(vpid) : null;
                    double mbps = hostToGuest(p1, size, c.totalBytes);
                    record("h2g-" + size, dev, round, mbps);
                    cpuPerGiB("h2g-" + size, dev, round, vpid, cpu0, threads0, c.totalBytes);
                }
                long[] rtt = echo(p1, 64, c.latencyWarmup, c.latencyCount);
                record("lat-p50", dev, round, percentile(rtt, 50) / 1000.0);
                record("lat-p99", dev, round, percentile(rtt, 99) / 1000.0);
                RssSampler sampler = daemon != null ? new RssSampler(daemon.pid()) : null;
                double cpu0 = cpuMillis(vpid);
                double agg = aggregate(hosts.subList(0, c.aggPorts), c.aggBytes / c.aggPorts);
                record("agg-" + c.aggPorts, dev, round, agg);
                cpuPerGiB("agg-" + c.aggPorts, dev, round, vpid, cpu0, c.aggBytes);
                if (sampler != null) {
                    record("rss-load", dev, round, sampler.stop());
                }
                int status = g.awaitExit(120);
                if (status != 0) {
                    throw new IllegalStateException("guest scenario exited with " + status);
                }
            }
            if (daemon != null && daemon.log().contains("Exception")) {
                problem("round %d vportd logged an exception (see %s)", round, daemon.logFile);
            }
        } finally {
            if (daemon != null) {
                daemon.close();
            }
            deleteTree(dir);
        }
    }

    /** vportd's CPU milliseconds per GiB moved during one row (a sample "cpu:ROW", not in the main table). */
    void cpuPerGiB(String row, String dev, int round, long pid, double cpu0, long bytes) {
        cpuPerGiB(row, dev, round, pid, cpu0, null, bytes);
    }

    /**
     * As above, and with {@code threads0} (from {@link #threadCpuMillis}) also the data-plane
     * thread's and the JIT compiler threads' share ({@code cpu-dp:}, {@code cpu-jit:}): a short
     * row's CPU may be mostly compilation, which says nothing about the data path.
     */
    void cpuPerGiB(String row, String dev, int round, long pid, double cpu0, double[] threads0, long bytes) {
        if (pid > 0) {
            double gib = bytes / (double) (1L << 30);
            double used = cpuMillis(pid) - cpu0;
            samples.add(new Sample("cpu:" + row, dev, round, used / gib));
            if (threads0 != null) {
                double[] t = threadCpuMillis(pid);
                samples.add(new Sample("cpu-dp:" + row, dev, round, (t[0] - threads0[0]) / gib));
                samples.add(new Sample("cpu-jit:" + row, dev, round, (t[1] - threads0[1]) / gib));
            }
        }
    }

    /** CPU ms of a process's data-plane threads ({0}) and JIT compiler threads ({1}), from /proc/PID/task. */
    static double[] threadCpuMillis(long pid) {
        double[] out = new double[2];
        try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                try {
                    String st = Files.readString(t.resolve("stat"));
                    String comm = st.substring(st.indexOf('(') + 1, st.lastIndexOf(')'));
                    String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
                    double ms = (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10.0;
                    if (comm.startsWith("vportd-dataplan") || comm.startsWith("vportd-loop")) {
                        out[0] += ms;
                    } else if (comm.contains("CompilerThre")) {
                        out[1] += ms;
                    }
                } catch (IOException | RuntimeException gone) {
                    // a thread that ended meanwhile
                }
            }
        } catch (IOException | RuntimeException e) {
            return new double[] {Double.NaN, Double.NaN};
        }
        return out;
    }

    int timeoutSeconds() {
        return c.smoke ? 240 : 1500;
    }

    List<String> vhostArgs(Path socket, int maxPorts) {
        return List.of("-chardev", "socket,id=vportd0,path=" + socket,
                "-device", "vhost-user-test-device-pci,chardev=vportd0,virtio-id=3,num_vqs=" + 2 * (maxPorts + 1)
                        + ",config_size=12,vq_size=" + c.vqSize);
    }

    String mainScenario(List<String> names) {
        StringBuilder s = new StringBuilder(PRELUDE);
        s.append("need_ports ").append(String.join(" ", names)).append('\n');
        s.append("mark ready\n");
        s.append("P=$(port b1)\n");
        for (int size : c.sizes) {
            s.append("mark step tx").append(size).append('\n');
            if (c.guestStats) {
                s.append("grep -i virtio /proc/interrupts\n");
            }
            s.append("benchtool tx $P ").append(size).append(' ').append(c.totalBytes).append(" || fail tx").append(size).append('\n');
        }
        for (int size : c.sizes) {
            s.append("mark step rx").append(size).append('\n');
            if (c.guestStats) {
                s.append("grep -i virtio /proc/interrupts\n");
            }
            s.append("benchtool rx $P ").append(size).append(' ').append(c.totalBytes).append(" || fail rx").append(size).append('\n');
        }
        s.append("benchtool echo $P 64 ").append(c.latencyWarmup + c.latencyCount).append(" || fail echo\n");
        s.append("pids=\"\"\n");
        for (int i = 1; i <= c.aggPorts; i++) {
            s.append("benchtool tx $(port b").append(i).append(") 65536 ").append(c.aggBytes / c.aggPorts)
                    .append(" & pids=\"$pids $!\"\n");
        }
        s.append("for p in $pids; do wait $p || fail aggregate; done\n");
        s.append("mark done\n");
        if (c.guestStats) {
            s.append("grep -i virtio /proc/interrupts\n");
        }
        return s.toString();
    }

    static final String PRELUDE = """
            mark() { echo "VPORTD-MARK $*"; }
            fail() { mark fail "$*"; exit 1; }
            port() { echo "/dev/virtio-ports/$1"; }
            need_ports() {
              _i=0
              while :; do
                _missing=""
                for _n in "$@"; do [ -L "/dev/virtio-ports/$_n" ] || _missing="$_missing $_n"; done
                [ -z "$_missing" ] && return 0
                [ $_i -ge 300 ] && fail "no /dev/virtio-ports link for:$_missing"
                _i=$((_i + 1)); sleep 0.1
              done
            }
            """;

    /** Guest writes {@code total} bytes; MB/s (10^6 bytes per second) from the 'R' byte to the last byte. */
    static double guestToHost(SocketChannel ch, long total) throws IOException {
        readReady(ch);
        long t0 = System.nanoTime();
        drain(ch, total);
        long t1 = System.nanoTime();
        writeFully(ch, ByteBuffer.wrap(new byte[] {'K'}));
        return total / ((t1 - t0) / 1e9) / 1e6;
    }

    static double hostToGuest(SocketChannel ch, int size, long total) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(size);
        for (int i = 0; i < size; i++) {
            buf.put(i, (byte) (i * 31 + 3));
        }
        readReady(ch);
        long t0 = System.nanoTime();
        long left = total;
        while (left > 0) {
            int chunk = (int) Math.min(size, left);
            buf.clear().limit(chunk);
            writeFully(ch, buf);
            left -= chunk;
        }
        ByteBuffer ack = ByteBuffer.allocate(1);
        readFully(ch, ack);
        long t1 = System.nanoTime();
        if (ack.get(0) != 'A') {
            throw new IOException("expected the guest's 'A', got " + ack.get(0));
        }
        return total / ((t1 - t0) / 1e9) / 1e6;
    }

    /** Round trips of {@code msg}-byte messages; returns the measured ones in nanoseconds, sorted. */
    static long[] echo(SocketChannel ch, int msg, int warmup, int count) throws IOException {
        readReady(ch);
        ByteBuffer out = ByteBuffer.allocateDirect(msg);
        ByteBuffer in = ByteBuffer.allocateDirect(msg);
        long[] rtt = new long[count];
        for (int i = 0; i < warmup + count; i++) {
            out.clear();
            out.putInt(0, i);
            long t0 = System.nanoTime();
            writeFully(ch, out);
            in.clear();
            readFully(ch, in);
            long t1 = System.nanoTime();
            if (in.getInt(0) != i) {
                throw new IOException("echo " + i + " came back as " + in.getInt(0));
            }
            if (i >= warmup) {
                rtt[i - warmup] = t1 - t0;
            }
        }
        Arrays.sort(rtt);
        return rtt;
    }

    /** Guest writes {@code each} bytes on every port at once; aggregate MB/s from the first 'R' to the last byte. */
    static double aggregate(List<SocketChannel> chans, long each) throws Exception {
        int n = chans.size();
        long[] start = new long[n];
        long[] end = new long[n];
        Throwable[] err = new Throwable[n];
        List<Thread> ts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int k = i;
            ts.add(Thread.ofPlatform().name("agg-" + i).start(() -> {
                try {
                    readReady(chans.get(k));
                    start[k] = System.nanoTime();
                    drain(chans.get(k), each);
                    end[k] = System.nanoTime();
                    writeFully(chans.get(k), ByteBuffer.wrap(new byte[] {'K'}));
                } catch (Throwable t) {
                    err[k] = t;
                }
            }));
        }
        for (Thread t : ts) {
            t.join();
        }
        for (Throwable t : err) {
            if (t != null) {
                throw new IOException("aggregate stream failed: " + t, t);
            }
        }
        long t0 = Arrays.stream(start).min().orElseThrow();
        long t1 = Arrays.stream(end).max().orElseThrow();
        return each * n / ((t1 - t0) / 1e9) / 1e6;
    }

    static long percentile(long[] sorted, int p) {
        int idx = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, idx))];
    }

    static void readReady(SocketChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(1);
        readFully(ch, b);
        if (b.get(0) != 'R') {
            throw new IOException("expected the guest's 'R', got byte " + b.get(0));
        }
    }

    static void drain(SocketChannel ch, long total) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        long left = total;
        while (left > 0) {
            buf.clear();
            if (left < buf.capacity()) {
                buf.limit((int) left);
            }
            int n = ch.read(buf);
            if (n < 0) {
                throw new IOException("end of stream with " + left + " bytes to go");
            }
            left -= n;
        }
    }

    static void readFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new IOException("end of stream");
            }
        }
    }

    static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** Connects to a Unix socket that QEMU or vportd is about to create, while the guest runs. */
    static SocketChannel connect(Path path, GuestRun g) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                return SocketChannel.open(UnixDomainSocketAddress.of(path));
            } catch (IOException e) {
                if (System.nanoTime() > deadline || !g.isAlive()) {
                    throw new IOException("cannot connect to " + path + ": " + e.getMessage() + "\n" + g.tail(), e);
                }
                pause(20);
            }
        }
    }

    static void pause(long ms) {
        try {
            Thread.sleep(ms); // retry interval of a poll, not synchronisation
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    // ---- hot-add boot ---------------------------------------------------------------

    void hotAddBoot(String dev, int round) throws Exception {
        Path dir = Files.createTempDirectory("vportd-bench-");
        int maxPorts = c.hotAdd + 2;
        List<String> qemu = new ArrayList<>();
        Daemon daemon = null;
        Path qmp = dir.resolve("qmp.sock");
        Path api = dir.resolve("api.sock");
        try {
            if (dev.equals(BUILTIN)) {
                qemu.addAll(List.of("-device", "virtio-serial-pci,id=vser0,max_ports=" + maxPorts + builtinExtra(),
                        "-chardev", "socket,id=c1,path=" + dir.resolve("port-1.sock") + ",server=on,wait=off",
                        "-device", "virtserialport,bus=vser0.0,chardev=c1,nr=1,name=b1",
                        "-qmp", "unix:" + qmp + ",server=on,wait=off"));
            } else {
                List<String> a = new ArrayList<>(List.of("--max-ports", Integer.toString(maxPorts),
                        "--api-socket", api.toString(),
                        "--port", "nr=1,name=b1,socket=" + dir.resolve("port-1.sock")));
                daemon = Daemon.start(c, dir, a, "hot-r" + round);
                long apiDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while (!Files.exists(api) && System.nanoTime() < apiDeadline) {
                    pause(20);
                }
                if (!Files.exists(api)) {
                    note("hot-add with vportd not measured: this vportd has no management API yet (--api-socket made no socket)");
                    return;
                }
                qemu.addAll(vhostArgs(daemon.vhostSocket, maxPorts));
            }
            int namesLimitS = 20; // the guest gives up when no new port came for this long
            String script = PRELUDE + "need_ports b1\n" + (c.guestStats ? "grep -i virtio /proc/interrupts\n" : "")
                    + "mark ready\nmark names $(benchtool names h " + c.hotAdd + " "
                    + namesLimitS * 1000 + ")\nmark ports-in-sysfs $(ls /sys/class/virtio-ports | wc -l)\n"
                    + (c.guestStats ? "grep -i virtio /proc/interrupts\n" : "");
            try (GuestRun g = GuestRun.start(c, dev + "-hot-r" + round, dir, script, qemu, timeoutSeconds())) {
                g.awaitMark("ready", 120);
                long t0;
                if (dev.equals(BUILTIN)) {
                    try (Qmp q = Qmp.connect(qmp, g)) {
                        t0 = System.nanoTime();
                        for (int i = 1; i <= c.hotAdd; i++) {
                            if (c.hotAddBatch > 0 && i > 1 && (i - 1) % c.hotAddBatch == 0) {
                                // QEMU drops control messages that find the guest's control queue
                                // full: let the guest take in this batch before sending the next
                                int want = i - 1;
                                g.await("the guest to see " + want + " hot-added ports", 120, () -> g.latest("names-seen") >= want);
                            }
                            q.execute("chardev-add", "{\"id\":\"h" + i + "\",\"backend\":{\"type\":\"socket\",\"data\":{"
                                    + "\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + dir.resolve("h" + i + ".sock")
                                    + "\"}},\"server\":true,\"wait\":false}}}");
                            q.execute("device_add", "{\"driver\":\"virtserialport\",\"bus\":\"vser0.0\",\"nr\":" + (i + 1)
                                    + ",\"name\":\"h" + i + "\",\"chardev\":\"h" + i + "\",\"id\":\"hp" + i + "\"}");
                        }
                    }
                } else {
                    try (VportdApi a = VportdApi.connect(api, g)) {
                        t0 = System.nanoTime();
                        for (int i = 1; i <= c.hotAdd; i++) {
                            a.addPort(i + 1, "h" + i, dir.resolve("h" + i + ".sock"));
                        }
                    }
                }
                long tSent = System.nanoTime();
                String seen = g.awaitMark("names", namesLimitS + 120).trim();
                long t1 = g.markTime("names");
                log("hot-add %s: %d ports requested in %.0f ms, guest saw %s names", dev, c.hotAdd, (tSent - t0) / 1e6, seen);
                if (seen.equals(Integer.toString(c.hotAdd))) {
                    record("hotadd-" + c.hotAdd, dev, round, (t1 - t0) / 1e6);
                } else {
                    note(String.format(Locale.ROOT, "hot-add, %s, round %d: after %d s the guest had only %s of the %d ports "
                            + "(all %d requests were accepted in %.0f ms); no time recorded for that round",
                            dev, round, namesLimitS, seen, c.hotAdd, c.hotAdd, (tSent - t0) / 1e6));
                }
                int status = g.awaitExit(60);
                if (status != 0) {
                    throw new IllegalStateException("guest scenario exited with " + status);
                }
            }
        } finally {
            if (daemon != null) {
                daemon.close();
            }
            deleteTree(dir);
        }
    }

    static void deleteTree(Path dir) {
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            log("could not clean %s: %s", dir, e);
        }
    }

    // ---- machine description ------------------------------------------------------

    void describeMachine() {
        machine.put("date (UTC)", Instant.now().toString().replaceAll("\\.\\d+Z$", "Z"));
        machine.put("commit", sh("git", "-C", c.repo.toString(), "log", "-1", "--format=%h %s"));
        String dirty = sh("git", "-C", c.repo.toString(), "status", "--porcelain", "--untracked-files=no");
        if (!dirty.isBlank()) {
            machine.put("commit", machine.get("commit") + " (with uncommitted changes)");
        }
        machine.put("host CPU", sh("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'")
                + ", " + Runtime.getRuntime().availableProcessors() + " CPUs");
        machine.put("host kernel", sh("uname", "-r"));
        machine.put("host memory", sh("sh", "-c", "awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo"));
        machine.put("load average at start", sh("cut", "-d", " ", "-f1-3", "/proc/loadavg"));
        machine.put("JDK (vportd and harness)", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
                + (c.vportdJavaOpts.isBlank() ? "" : ", vportd extra JVM options: " + c.vportdJavaOpts)
                + (c.vportdArgs.isBlank() ? "" : ", vportd extra options: " + c.vportdArgs));
        if (!c.builtinArgs.isBlank()) {
            machine.put("built-in device's extra properties", c.builtinArgs);
        }
        machine.put("guest memory", c.guestMemoryMiB + " MiB, 1 vCPU");
    }

    void captureMachine(GuestRun g) {
        if (!machine.containsKey("accelerator")) {
            g.onLine(line -> {
                var m = java.util.regex.Pattern.compile("accel=(\\w+)").matcher(line);
                if (line.contains("booting the guest") && m.find()) {
                    machine.putIfAbsent("accelerator", m.group(1));
                }
                int k = line.indexOf("VPORTD-GUEST-BOOTED kernel=");
                if (k >= 0) {
                    machine.putIfAbsent("guest kernel", line.substring(k + 27).trim() + " (Debian trixie linux-image-amd64)");
                }
            });
        }
        if (!machine.containsKey("QEMU")) {
            String root = System.getenv().getOrDefault("VPORTD_CACHE", c.repo.resolve(".cache").toString());
            machine.put("QEMU", sh("chroot", root + "/rig/rootfs-v1", "qemu-system-x86_64", "--version").lines().findFirst().orElse("?"));
        }
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

    // ---- processes -------------------------------------------------------------------

    /** One run-guest process: its console lines, marks with their arrival time, and a watchdog. */
    static final class GuestRun implements AutoCloseable {
        final String name;
        final Process process;
        final List<String> lines = new CopyOnWriteArrayList<>();
        final Map<String, String> marks = new java.util.concurrent.ConcurrentHashMap<>();
        final Map<String, Long> markTimes = new java.util.concurrent.ConcurrentHashMap<>();
        final Map<String, Long> latestNumbers = new java.util.concurrent.ConcurrentHashMap<>();
        final List<java.util.function.Consumer<String>> listeners = new CopyOnWriteArrayList<>();
        final ConcurrentLinkedQueue<AutoCloseable> tracked = new ConcurrentLinkedQueue<>();
        final Thread pump;
        final Thread watchdog;
        final Path log;
        volatile boolean closed;

        private GuestRun(String name, Process process, Path log, long deadlineNanos) {
            this.name = name;
            this.process = process;
            this.log = log;
            this.pump = Thread.ofPlatform().daemon().name("console-" + name).start(this::pumpConsole);
            this.watchdog = Thread.ofPlatform().daemon().name("watchdog-" + name).start(() -> {
                try {
                    long wait = deadlineNanos - System.nanoTime();
                    if (!process.waitFor(Math.max(1, wait), TimeUnit.NANOSECONDS)) {
                        GuestBench.log("%s: deadline passed, stopping the guest", name);
                        process.destroyForcibly();
                    }
                    // the guest is gone: unblock every host read that still waits on it
                    pump.join(5000);
                    closeTracked();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }

        static GuestRun start(Config c, String name, Path dir, String script, List<String> qemu, int timeoutS) throws IOException {
            Path scen = c.out.resolve("scenario-" + name + ".sh");
            Files.writeString(scen, script);
            List<String> cmd = new ArrayList<>(List.of(c.repo.resolve("integration-tests/rig/run-guest").toString(),
                    "--scenario", scen.toString(), "--timeout", Integer.toString(timeoutS),
                    "--socket-dir", dir.toString(), "--memory", Integer.toString(c.guestMemoryMiB),
                    "--add-file", c.benchtool + ":bin/benchtool", "--"));
            cmd.addAll(qemu);
            Path log = c.out.resolve("console-" + name + ".log");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            LIVE.add(p);
            GuestBench.log("booted %s (console: %s)", name, log);
            return new GuestRun(name, p, log, System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutS + 30));
        }

        <T extends AutoCloseable> T track(T resource) {
            tracked.add(resource);
            if (!process.isAlive()) {
                closeTracked();
            }
            return resource;
        }

        void closeTracked() {
            AutoCloseable r;
            while ((r = tracked.poll()) != null) {
                try {
                    r.close();
                } catch (Exception ignored) {
                    // closing to unblock readers; nothing to report
                }
            }
        }

        void onLine(java.util.function.Consumer<String> l) {
            listeners.add(l);
            lines.forEach(l);
        }

        private void pumpConsole() {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                 var w = Files.newBufferedWriter(log)) {
                String line;
                while ((line = r.readLine()) != null) {
                    long now = System.nanoTime();
                    line = line.replace("\r", "");
                    int k = line.indexOf("VPORTD-MARK ");
                    if (k >= 0) {
                        String[] kv = line.substring(k + 12).trim().split(" ", 2);
                        markTimes.putIfAbsent(kv[0], now);
                        marks.putIfAbsent(kv[0], kv.length > 1 ? kv[1] : "");
                        if (kv.length > 1 && kv[1].trim().matches("\\d{1,9}")) {
                            latestNumbers.put(kv[0], Long.parseLong(kv[1].trim()));
                        }
                    }
                    lines.add(line);
                    for (var l : listeners) {
                        l.accept(line);
                    }
                    w.write(line);
                    w.newLine();
                    w.flush();
                }
            } catch (IOException e) {
                lines.add("(console stream ended: " + e + ")");
            }
        }

        boolean isAlive() {
            return process.isAlive();
        }

        String tail() {
            int n = lines.size();
            return String.join("\n", lines.subList(Math.max(0, n - 25), n));
        }

        String awaitMark(String key, int seconds) {
            await("mark " + key, seconds, () -> marks.containsKey(key) || marks.containsKey("fail"));
            if (marks.containsKey("fail") && !marks.containsKey(key)) {
                throw new IllegalStateException(name + ": guest failed: " + marks.get("fail") + "\n" + tail());
            }
            return marks.get(key);
        }

        /** The last numeric value of a mark that repeats (e.g. names-seen), -1 before the first. */
        long latest(String key) {
            return latestNumbers.getOrDefault(key, -1L);
        }

        long markTime(String key) {
            return markTimes.get(key);
        }

        void await(String what, int seconds, BooleanSupplier cond) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            while (!cond.getAsBoolean()) {
                if (!process.isAlive()) {
                    try {
                        pump.join(5000);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    if (cond.getAsBoolean()) {
                        return;
                    }
                    throw new IllegalStateException(name + ": the guest ended while waiting for " + what + "\n" + tail());
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(name + ": no " + what + " within " + seconds + " s\n" + tail());
                }
                pause(5);
            }
        }

        int awaitExit(int seconds) throws InterruptedException {
            if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
                throw new IllegalStateException(name + ": the guest did not power off within " + seconds + " s\n" + tail());
            }
            pump.join(5000);
            return process.exitValue();
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            closeTracked();
            process.destroy();
            try {
                if (!process.waitFor(15, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(10, TimeUnit.SECONDS);
                }
                pump.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }

    /** A vportd daemon from the jar, its log in the output folder. */
    static final class Daemon implements AutoCloseable {
        final Process process;
        final Path vhostSocket;
        final Path logFile;

        private Daemon(Process process, Path vhostSocket, Path logFile) {
            this.process = process;
            this.vhostSocket = vhostSocket;
            this.logFile = logFile;
        }

        static Daemon start(Config c, Path dir, List<String> args, String tag) throws IOException {
            Path vhost = dir.resolve("vportd.sock");
            List<String> cmd = new ArrayList<>(List.of(c.javaCmd, "--enable-native-access=ALL-UNNAMED"));
            if (!c.vportdJavaOpts.isBlank()) {
                for (String o : c.vportdJavaOpts.trim().split("\\s+")) {
                    cmd.add(o.replace("{tag}", tag));
                }
            }
            cmd.addAll(List.of("-jar", c.jar.toString(), "--socket-path", vhost.toString()));
            cmd.addAll(args);
            if (!c.vportdArgs.isBlank()) {
                cmd.addAll(List.of(c.vportdArgs.trim().split("\\s+")));
            }
            Path logFile = c.out.resolve("vportd-" + tag + ".log");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(logFile.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            LIVE.add(p);
            Daemon d = new Daemon(p, vhost, logFile);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!Files.exists(vhost)) {
                if (!p.isAlive() || System.nanoTime() > deadline) {
                    d.close();
                    throw new IOException("vportd did not listen on " + vhost + ":\n" + d.log());
                }
                pause(20);
            }
            return d;
        }

        long pid() {
            return process.pid();
        }

        double rssMiB() {
            return rss(process.pid());
        }

        String log() {
            try {
                return Files.readString(logFile);
            } catch (IOException e) {
                return "";
            }
        }

        @Override
        public void close() {
            process.destroy();
            try {
                if (!process.waitFor(20, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }

    /** Resident set size of a process in MiB (VmRSS), NaN when unreadable. */
    static double rss(long pid) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (l.startsWith("VmRSS:")) {
                    return Long.parseLong(l.replaceAll("[^0-9]", "")) / 1024.0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // the process is gone
        }
        return Double.NaN;
    }

    /** User + system CPU time of a process in milliseconds (from /proc/PID/stat), NaN when unreadable. */
    static double cpuMillis(long pid) {
        try {
            String st = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = st.substring(st.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10.0; // fields 14, 15; USER_HZ = 100
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }

    /** Samples a process's RSS every 50 ms until stopped; reports the largest. */
    static final class RssSampler {
        final AtomicLong maxKiB = new AtomicLong();
        final Thread t;
        volatile boolean stop;

        RssSampler(long pid) {
            t = Thread.ofPlatform().daemon().name("rss").start(() -> {
                while (!stop) {
                    double m = rss(pid);
                    if (!Double.isNaN(m)) {
                        maxKiB.accumulateAndGet((long) (m * 1024), Math::max);
                    }
                    pause(50);
                }
            });
        }

        double stop() throws InterruptedException {
            stop = true;
            t.join();
            return maxKiB.get() / 1024.0;
        }
    }

    /** Minimal QMP client: one command at a time, waits for its return. */
    static final class Qmp implements AutoCloseable {
        final SocketChannel ch;
        final BufferedReader in;

        private Qmp(SocketChannel ch) {
            this.ch = ch;
            this.in = new BufferedReader(new InputStreamReader(java.nio.channels.Channels.newInputStream(ch), StandardCharsets.UTF_8));
        }

        static Qmp connect(Path sock, GuestRun g) throws IOException {
            Qmp q = new Qmp(g.track(GuestBench.connect(sock, g)));
            String greeting = q.in.readLine();
            if (greeting == null || !greeting.contains("QMP")) {
                throw new IOException("no QMP greeting: " + greeting);
            }
            q.execute("qmp_capabilities", null);
            return q;
        }

        String execute(String cmd, String argsJson) throws IOException {
            String req = "{\"execute\":\"" + cmd + "\"" + (argsJson != null ? ",\"arguments\":" + argsJson : "") + "}\n";
            writeFully(ch, ByteBuffer.wrap(req.getBytes(StandardCharsets.UTF_8)));
            while (true) {
                String line = in.readLine();
                if (line == null) {
                    throw new IOException("QMP closed during " + cmd);
                }
                if (line.contains("\"return\"")) {
                    return line;
                }
                if (line.contains("\"error\"")) {
                    throw new IOException("QMP " + cmd + " failed: " + line);
                }
                // events are skipped
            }
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }

    /** vportd's management API (JSON lines on --api-socket): add-port requests, one at a time. */
    static final class VportdApi implements AutoCloseable {
        final SocketChannel ch;
        final BufferedReader in;
        int nextId = 1;

        private VportdApi(SocketChannel ch) {
            this.ch = ch;
            this.in = new BufferedReader(new InputStreamReader(java.nio.channels.Channels.newInputStream(ch), StandardCharsets.UTF_8));
        }

        static VportdApi connect(Path sock, GuestRun g) throws IOException {
            return new VportdApi(g.track(GuestBench.connect(sock, g)));
        }

        void addPort(int nr, String name, Path socket) throws IOException {
            int id = nextId++;
            String req = "{\"id\":" + id + ",\"op\":\"add-port\",\"nr\":" + nr + ",\"name\":\"" + name
                    + "\",\"endpoint\":\"socket=" + socket + "\"}\n";
            writeFully(ch, ByteBuffer.wrap(req.getBytes(StandardCharsets.UTF_8)));
            String line = in.readLine();
            if (line == null) {
                throw new IOException("vportd API closed during add-port " + nr);
            }
            if (line.contains("\"error\"") || line.contains("\"ok\":false")) {
                throw new IOException("vportd add-port " + nr + " failed: " + line);
            }
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
