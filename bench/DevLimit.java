import io.vportd.vhost.testing.TestFrontend;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Device-limit benchmark: vportd without a guest. This program plays QEMU (through the project's
 * test {@link TestFrontend}: the real vhost-user socket, a sealed memfd as guest RAM, real kick
 * and call eventfds) and the guest's virtio-console driver (its own split rings in that memfd,
 * EVENT_IDX, 256 entries), against a real vportd process with one generic port on a Unix socket
 * endpoint. A host thread reads or writes that endpoint. Every row is paired, in the same
 * round, with a plain AF_UNIX stream copy of the same chunk sizes. Run it through
 * {@code bench/devlimit}, which builds the jars and sets the class path.
 *
 * <p>Stream content: the bytes of stream offset o are a fixed pattern of (o mod 4096), except
 * that each 4 KiB page p starts with the little-endian long p and ends with ~p. Timed runs check
 * both stamps of every page (loss, duplication and reordering show at page granularity);
 * {@code --smoke} checks every byte. Any mismatch ends the run with exit status 1.
 *
 * <p>One file on purpose: it is launched as a single-file source program
 * (like GuestBench.java), so it needs no module or build step of its own.
 */
public final class DevLimit {

    static final int RING = 256;
    static final int PAGE = 4096;
    static final int MAX_PORTS = 2;
    static final int QUEUES = 2 * (MAX_PORTS + 1);
    static final int CONTROL_RX = 2, CONTROL_TX = 3, PORT_RX = 4, PORT_TX = 5;
    static final long MEM = 64L << 20;
    static final int HOST_READ = 256 << 10;
    static final Duration WAIT = Duration.ofSeconds(20);
    static final VarHandle U16 = ValueLayout.JAVA_SHORT.varHandle().withInvokeBehavior();
    static final byte[] PATTERN = new byte[PAGE];
    /** DEVLIMIT_CORRUPT=1 flips one byte of the first guest chain, to show the checker fails the run. */
    static final boolean CORRUPT = "1".equals(System.getenv("DEVLIMIT_CORRUPT"));

    static {
        for (int i = 0; i < PAGE; i++) {
            PATTERN[i] = (byte) (i * 31 + 7);
        }
    }

    // ---- options -----------------------------------------------------------------------

    int rounds = 5;
    /** Devices of 8 ports (no frontend) served beside the measured one by the same process (vportd --config). */
    int idleDevices = 0;
    /** Serve the measured device from a --config file even with no idle device beside it (on an event loop). */
    boolean viaConfig;
    /** With a --config file: its event-loops key (0: vportd's default). */
    int eventLoops;
    /** Ports of each idle device beside the measured one (--idle-ports, default 8: a console and 7 sockets). */
    int idlePorts = 8;
    /**
     * Share of the last host→guest row's wall time its host writer spent on a CPU, and the same
     * for the last plain copy's writer (stderr only): near 1, the row is as fast as that writer.
     */
    double hostWriterBusy = Double.NaN;
    double plainWriterBusy = Double.NaN;
    /** Rows to run (--rows 1,4: numbers as in the table, from 1); null: all. */
    java.util.Set<Integer> onlyRows;
    double gibPerRow = 2;
    boolean smoke;
    Path out;
    Path jar;
    String javaCmd = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    int rtCount = 10_000;
    /** Extra vportd options (--vportd-arg, repeatable), e.g. --poll-us 0. */
    List<String> vportdArgs = new ArrayList<>();
    /** Extra JVM options for vportd (--vportd-jvm-arg, repeatable), e.g. a flight recording. */
    List<String> vportdJvmArgs = new ArrayList<>();
    /**
     * CPUs vportd may run on (--vportd-cpus 1: taskset's list form), empty: any. With the bench's
     * own CPUs (DEVLIMIT_BENCH_CPUS for bench/devlimit) it fixes where each side runs, so rounds
     * do not differ by where the scheduler happened to put the threads.
     */
    String vportdCpus = "";
    /**
     * --versus "OPTIONS": a second vportd (B) run with these bench options over the others, beside
     * the first (A); each row alternates between them in slices of --slice-mib, so both see the
     * same moments of a shared machine (see {@link #versus}).
     */
    String versus;
    DevLimit other;
    int sliceMiB = 32;
    /** After the rounds: vportd's CPU over this many idle seconds (nothing moves; --poll-us must cost nothing then). */
    int idleSeconds;
    /**
     * Guest→host rows as a slow guest writes them (--trickle-us N): one chain per kick, then N µs
     * of busy work before the next, so vportd finds the ring dry after almost every chain (what a
     * TCG guest's write(2) loop does) instead of a full ring. 0 (default): fill the ring.
     */
    int trickleMicros;

    public static void main(String[] args) throws Exception {
        DevLimit b = new DevLimit();
        b.parse(args);
        if (b.versus != null) { // B: the same options, then those of --versus over them
            b.other = new DevLimit();
            b.other.parse(args);
            b.other.versus = null;
            b.other.parse(b.versus.isBlank() ? new String[0] : b.versus.trim().split("\\s+"));
        }
        if (b.smoke) {
            b.rounds = 1;
            b.rtCount = 200;
        }
        int status;
        try {
            status = b.run();
        } catch (Mismatch m) {
            System.err.println("devlimit: DATA MISMATCH: " + m.getMessage());
            status = 1;
        }
        System.exit(status);
    }

    void parse(String[] args) {
        DevLimit b = this;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--rounds" -> b.rounds = Integer.parseInt(args[++i]);
                case "--gib-per-row" -> b.gibPerRow = Double.parseDouble(args[++i]);
                case "--smoke" -> b.smoke = true;
                case "--out" -> b.out = Path.of(args[++i]);
                case "--jar" -> b.jar = Path.of(args[++i]);
                case "--rt-count" -> b.rtCount = Integer.parseInt(args[++i]);
                case "--idle-devices" -> b.idleDevices = Integer.parseInt(args[++i]);
                case "--via-config" -> b.viaConfig = Boolean.parseBoolean(args[++i]);
                case "--event-loops" -> b.eventLoops = Integer.parseInt(args[++i]);
                case "--idle-ports" -> b.idlePorts = Integer.parseInt(args[++i]);
                case "--rows" -> b.onlyRows = java.util.Arrays.stream(args[++i].split("[,+]"))
                        .map(x -> Integer.parseInt(x.trim()) - 1).collect(java.util.stream.Collectors.toSet());
                case "--vportd-arg" -> b.vportdArgs.add(args[++i]);
                case "--vportd-jvm-arg" -> b.vportdJvmArgs.add(args[++i]);
                case "--vportd-cpus" -> b.vportdCpus = args[++i];
                case "--idle-seconds" -> b.idleSeconds = Integer.parseInt(args[++i]);
                case "--trickle-us" -> b.trickleMicros = Integer.parseInt(args[++i]);
                case "--versus" -> b.versus = args[++i];
                case "--slice-mib" -> b.sliceMiB = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
    }

    static final class Mismatch extends RuntimeException {
        Mismatch(String s) {
            super(s);
        }
    }

    // ---- rows --------------------------------------------------------------------------

    record Row(String name, boolean toHost, int chunk, int descs, int descLen) {
    }

    static final List<Row> ROWS = List.of(
            new Row("guest→host, 4 KiB chains", true, 4096, 1, 4096),
            new Row("guest→host, 64 KiB (2×32 KiB)", true, 65536, 2, 32768),
            new Row("guest→host, 1 MiB (32×32 KiB)", true, 1 << 20, 32, 32768),
            new Row("host→guest, 4 KiB writes", false, 4096, 1, 4096),
            new Row("host→guest, 64 KiB writes", false, 65536, 1, 4096),
            new Row("host→guest, 1 MiB writes", false, 1 << 20, 1, 4096));

    /**
     * One measurement. cpuTicks and syscalls are vportd's; sleeps, longSleeps (0.9 ms or more) and
     * sleepNanos are the driver's waits on the call eventfd; wakes/dryWakes (guest→host only, else -1):
     * sleeps after which the driver found used entries, and those where every chain in flight had
     * come back at once (the device had drained the ring before the completions were published).
     * copyCpuNanos is the plain socket copy's CPU time, its writer's and reader's threads together
     * (-1 for vportd's samples, whose CPU is cpuTicks).
     */
    record Sample(long bytes, long nanos, long cpuTicks, long syscalls, long sleeps, long longSleeps,
                  long sleepNanos, long wakes, long dryWakes, long copyCpuNanos) {
        /** The plain socket copy's sample. */
        Sample(long bytes, long nanos, long copyCpuNanos) {
            this(bytes, nanos, -1, -1, -1, -1, -1, -1, -1, copyCpuNanos);
        }

        /** The plain copy's CPU (writer and reader threads) per GiB moved, in ms. */
        double copyCpuMsPerGiB() {
            return copyCpuNanos / 1e6 / (bytes / (double) (1L << 30));
        }

        double asleepPct() {
            return 100.0 * sleepNanos / nanos;
        }

        double dryPct() {
            return wakes <= 0 ? Double.NaN : 100.0 * dryWakes / wakes;
        }

        double perMiB(long v) {
            return v / (bytes / (double) (1L << 20));
        }

        double mbps() {
            return bytes / 1e6 / (nanos / 1e9);
        }
    }

    boolean runs(Row row) {
        return onlyRows == null || onlyRows.contains(ROWS.indexOf(row));
    }

    int run() throws Exception {
        long rowBytes = smoke ? 4L << 20 : Math.max(1L << 20, (long) (gibPerRow * (1L << 30)) & -(1L << 20));
        out = out != null ? out : Path.of("/tmp/vportd-devlimit." + System.currentTimeMillis());
        Files.createDirectories(out);
        if (other != null) {
            return versus(rowBytes);
        }
        Launched v = launch(out);
        try {
            System.err.printf(Locale.ROOT, "devlimit: vportd pid %d; %s per row, %d round(s), %d idle device(s) beside, "
                    + "output %s%n", v.p.pid(), human(rowBytes), rounds, idleDevices, out);
            return measure(v.p, v.vhost, v.port, rowBytes, v.log);
        } finally {
            v.stop();
        }
    }

    /** A vportd process started by {@link #launch}: its vhost-user socket and the measured port's. */
    record Launched(Process p, Path vhost, Path port, Path log) {
        void stop() throws InterruptedException {
            p.destroy();
            if (!p.waitFor(5, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
    }

    /** Starts vportd as this run's options say, its sockets in {@code dir}, and waits for them. */
    Launched launch(Path dir) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Path vhost = dir.resolve("vportd.sock");
        Path port = dir.resolve("port-1.sock");
        Files.deleteIfExists(vhost);
        Files.deleteIfExists(port);
        List<String> cmd = new ArrayList<>(List.of(javaCmd, "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(vportdJvmArgs);
        cmd.addAll(List.of("-jar", jar.toString(),
                "--socket-path", vhost.toString(), "--max-ports", Integer.toString(MAX_PORTS),
                "--port", "nr=1,name=devlimit,socket=" + port, "--log-level", "warning"));
        if (idleDevices > 0 || viaConfig) {
            // The measured device is the first of a configuration file; the others idle beside it.
            StringBuilder toml = new StringBuilder();
            if (eventLoops > 0) {
                toml.append("event-loops = ").append(eventLoops).append("\n\n");
            }
            toml.append("[[device]]\nid = \"measured\"\nsocket = \"").append(vhost).append("\"\nmax-ports = ")
                    .append(MAX_PORTS).append("\nports = [\"nr=1,name=devlimit,socket=").append(port).append("\"]\n");
            for (int i = 0; i < idleDevices; i++) {
                Path idle = dir.resolve("idle-" + i);
                toml.append("\n[[device]]\nid = \"idle").append(i).append("\"\nsocket = \"").append(idle)
                        .append(".sock\"\nmax-ports = 8\nports = [");
                if (idlePorts > 0) {
                    toml.append("\"nr=0,console,null\"");
                }
                for (int q = 1; q < idlePorts; q++) {
                    toml.append(", \"nr=").append(q).append(",name=p").append(q).append(",socket=").append(idle)
                            .append('-').append(q).append(".sock\"");
                }
                toml.append("]\n");
            }
            Path config = dir.resolve("vportd.toml");
            Files.writeString(config, toml);
            cmd = new ArrayList<>(List.of(javaCmd, "--enable-native-access=ALL-UNNAMED"));
            cmd.addAll(vportdJvmArgs);
            cmd.addAll(List.of("-jar", jar.toString(), "--config", config.toString(), "--log-level", "warning"));
        }
        cmd.addAll(vportdArgs);
        if (!vportdCpus.isEmpty()) {
            cmd.addAll(0, List.of("taskset", "-c", vportdCpus));
        }
        Path log = dir.resolve("vportd.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        Launched l = new Launched(p, vhost, port, log);
        try {
            awaitFile(vhost, p);
            awaitFile(port, p);
        } catch (IOException | InterruptedException | RuntimeException e) {
            l.stop();
            throw e;
        }
        return l;
    }

    static void awaitFile(Path f, Process p) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(f)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("vportd did not create " + f);
            }
            Thread.sleep(20);
        }
    }

    int measure(Process p, Path vhost, Path port, long rowBytes, Path log) throws Exception {
        TestFrontend.Options o = new TestFrontend.Options(QUEUES, 12, MEM, TestFrontend.DEFAULT_USER_BASE,
                true, -1L, false);
        try (TestFrontend fe = TestFrontend.connect(vhost, o)) {
            if ((fe.ackedFeatures() & 1L << 29) == 0) {
                throw new IOException("vportd did not offer VIRTIO_RING_F_EVENT_IDX");
            }
            Driver d = new Driver(fe);
            SocketChannel host = d.handshake(port);
            List<List<Sample[]>> perRow = new ArrayList<>(); // row -> rounds -> {vportd, plain}
            for (int r = 0; r < ROWS.size() + 1; r++) {
                perRow.add(new ArrayList<>());
            }
            double[][] rtt = new double[rounds][];
            // Per-round samples for bench/devlimit-compare: row|rt, round, name, then the figures.
            StringBuilder tsv = new StringBuilder();
            if (!smoke) { // unmeasured: JIT both sides (vportd and this program) before round 1
                long warm = Math.min(rowBytes, 64L << 20);
                for (Row row : ROWS) {
                    if (!runs(row)) {
                        continue;
                    }
                    if (row.toHost) {
                        d.guestToHost(row, host, warm, p.pid(), false);
                    } else {
                        d.hostToGuest(row, host, warm, p.pid(), false);
                    }
                    plain(row, warm, false);
                }
                d.roundTrips(host, 2000, false);
                plainRoundTrips(2000);
                System.err.printf(Locale.ROOT, "devlimit: warm-up done (%s per row, not measured)%n", human(warm));
            }
            for (int round = 0; round < rounds; round++) {
                for (int r = 0; r < ROWS.size(); r++) {
                    Row row = ROWS.get(r);
                    if (!runs(row)) {
                        continue;
                    }
                    long bytes = rowBytes;
                    long dp0 = dataPlaneTicks(p.pid());
                    Sample v = row.toHost ? d.guestToHost(row, host, bytes, p.pid(), smoke)
                            : d.hostToGuest(row, host, bytes, p.pid(), smoke);
                    double dpMsPerGiB = (dataPlaneTicks(p.pid()) - dp0) * 1000.0 / TICKS_PER_SECOND / (bytes / (double) (1L << 30));
                    Sample s = plain(row, bytes, smoke);
                    perRow.get(r).add(new Sample[] {v, s});
                    tsv.append(String.format(Locale.ROOT, "row\t%d\t%s\t%.1f\t%.1f\t%.1f\t%.2f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f%n",
                            round + 1, row.name, v.mbps(), s.mbps(), cpuMsPerGiB(v), v.perMiB(v.syscalls),
                            v.perMiB(v.sleeps), v.perMiB(v.longSleeps), v.asleepPct(), v.dryPct(), s.copyCpuMsPerGiB()));
                    System.err.printf(Locale.ROOT, "devlimit: round %d %-34s vportd %8.0f MB/s  plain %8.0f MB/s  %.2fx  %.0f CPU ms/GiB (data plane %.0f; plain copy %.0f)  %.1f syscalls/MiB  %.2f sleeps/MiB (%.2f >= 0.9 ms), asleep %.0f%%, drained wakes %s%n",
                            round + 1, row.name, v.mbps(), s.mbps(), v.mbps() / s.mbps(), cpuMsPerGiB(v), dpMsPerGiB,
                            s.copyCpuMsPerGiB(),
                            v.perMiB(v.syscalls), v.perMiB(v.sleeps), v.perMiB(v.longSleeps), v.asleepPct(),
                            row.toHost ? String.format(Locale.ROOT, "%.0f%%", v.dryPct())
                                    : String.format(Locale.ROOT, "n/a; host writer on a CPU %.0f%% of the row (plain writer %.0f%%)",
                                            100 * hostWriterBusy, 100 * plainWriterBusy));
                }
                long[] ns = d.roundTrips(host, rtCount, smoke);
                long[] ref = plainRoundTrips(rtCount);
                rtt[round] = new double[] {pct(ns, 50), pct(ns, 99), pct(ref, 50), pct(ref, 99)};
                tsv.append(String.format(Locale.ROOT, "rt\t%d\t64-byte round trip\t%.2f\t%.2f\t%.2f\t%.2f%n",
                        round + 1, rtt[round][0], rtt[round][1], rtt[round][2], rtt[round][3]));
                System.err.printf(Locale.ROOT, "devlimit: round %d 64-byte round trip  vportd p50 %.1f µs p99 %.1f µs; plain p50 %.1f µs p99 %.1f µs%n",
                        round + 1, rtt[round][0], rtt[round][1], rtt[round][2], rtt[round][3]);
            }
            if (idleSeconds > 0) {
                Thread.sleep(200); // past any poll window
                long t0 = cpuTicks(p.pid());
                long n0 = System.nanoTime();
                Thread.sleep(idleSeconds * 1000L);
                long ticks = cpuTicks(p.pid()) - t0;
                double secs = (System.nanoTime() - n0) / 1e9;
                double pct = 100.0 * ticks / TICKS_PER_SECOND / secs;
                System.err.printf(Locale.ROOT, "devlimit: vportd idle for %.1f s after the rounds: %d ms CPU (%.2f%% of a CPU)%n",
                        secs, ticks * 1000 / TICKS_PER_SECOND, pct);
                tsv.append(String.format(Locale.ROOT, "idle\t0\tvportd idle CPU\t%.1f\t%d%n", secs, ticks * 1000 / TICKS_PER_SECOND));
            }
            Files.writeString(out.resolve("samples.tsv"), tsv.toString());
            String table = table(perRow, rtt, rowBytes);
            Files.writeString(out.resolve("devlimit.md"), table);
            System.out.print(table);
            if (!p.isAlive()) {
                throw new IOException("vportd exited: " + Files.readString(log));
            }
            System.err.println(smoke ? "devlimit: smoke OK (every byte verified)" : "devlimit: done (page stamps verified)");
            return 0;
        }
    }

    /**
     * --versus: vportd A (this run's options) and vportd B (the same with --versus's options over
     * them) serve at once, each its own frontend, driver and host socket, and each row alternates
     * between them in slices of --slice-mib (A B, then B A, ...), --gib-per-row each per round.
     * Rounds in separate processes (bench/devlimit-compare) pair a variant with the other's
     * run seconds or minutes later; here a pair is some tens of milliseconds apart, so a
     * neighbour's burst on a shared machine falls on both alike. Reported per row: each one's
     * MB/s and CPU per GiB over all its slices, B/A of those, and the median of the slice pairs'
     * ratios. No plain socket copy here: that is bench/devlimit without --versus.
     */
    int versus(long rowBytes) throws Exception {
        long slice = smoke ? rowBytes : Math.min(rowBytes, (long) sliceMiB << 20);
        long perRound = Math.max(1, rowBytes / slice);
        Launched la = launch(out.resolve("a"));
        Launched lb;
        try {
            lb = other.launch(out.resolve("b"));
        } catch (IOException | InterruptedException | RuntimeException e) {
            la.stop();
            throw e;
        }
        TestFrontend.Options o = new TestFrontend.Options(QUEUES, 12, MEM, TestFrontend.DEFAULT_USER_BASE,
                true, -1L, false);
        try (TestFrontend fa = TestFrontend.connect(la.vhost, o); TestFrontend fb = TestFrontend.connect(lb.vhost, o)) {
            System.err.printf(Locale.ROOT, "devlimit: versus: A pid %d (%d idle device(s) beside), B pid %d (%d), "
                    + "%s per row each per round in %s slices, %d round(s), output %s%n", la.p.pid(), idleDevices,
                    lb.p.pid(), other.idleDevices, human(perRound * slice), human(slice), rounds, out);
            Driver[] d = {new Driver(fa), other.new Driver(fb)};
            SocketChannel[] host = {d[0].handshake(la.port), d[1].handshake(lb.port)};
            long[] pid = {la.p.pid(), lb.p.pid()};
            if (!smoke) { // unmeasured: both JITs past their first compilations
                for (Row row : ROWS) {
                    for (int v = 0; v < 2 && runs(row); v++) {
                        slice(d[v], row, host[v], 256L << 20, pid[v]);
                    }
                }
                for (int v = 0; v < 2; v++) {
                    d[v].roundTrips(host[v], 2000, false);
                }
                System.err.println("devlimit: versus: warm-up done (256 MiB per row each, not measured)");
            }
            long[][] sum = new long[ROWS.size()][6]; // A bytes, nanos, ticks, then B's
            List<List<Double>> pairs = new ArrayList<>();
            for (int r = 0; r < ROWS.size(); r++) {
                pairs.add(new ArrayList<>());
            }
            double[][][] rtt = new double[2][rounds][];
            StringBuilder tsv = new StringBuilder();
            for (int round = 0; round < rounds; round++) {
                for (int r = 0; r < ROWS.size(); r++) {
                    Row row = ROWS.get(r);
                    if (!runs(row)) {
                        continue;
                    }
                    for (long i = 0; i < perRound; i++) {
                        Sample[] got = new Sample[2];
                        int first = (int) ((i + round) & 1);
                        for (int k = 0; k < 2; k++) {
                            int v = first ^ k;
                            got[v] = slice(d[v], row, host[v], slice, pid[v]);
                            sum[r][3 * v] += got[v].bytes;
                            sum[r][3 * v + 1] += got[v].nanos;
                            sum[r][3 * v + 2] += got[v].cpuTicks;
                        }
                        double q = got[1].mbps() / got[0].mbps();
                        pairs.get(r).add(q);
                        tsv.append(String.format(Locale.ROOT, "pair\t%d\t%s\t%.1f\t%.1f\t%.4f%n", round + 1, row.name,
                                got[0].mbps(), got[1].mbps(), q));
                    }
                    List<Double> l = pairs.get(r);
                    System.err.printf(Locale.ROOT, "devlimit: versus: round %d %-34s A %6.0f MB/s  B %6.0f MB/s so far; "
                            + "pairs' median B/A %.3f%n", round + 1, row.name, mbps(sum[r][0], sum[r][1]),
                            mbps(sum[r][3], sum[r][4]), median(l.stream().mapToDouble(Double::doubleValue).toArray()));
                }
                List<long[]> ns = new ArrayList<>(List.of(new long[0], new long[0]));
                for (int i = 0; i < 4; i++) {
                    for (int k = 0; k < 2; k++) {
                        int v = (i & 1) ^ k;
                        long[] more = d[v].roundTrips(host[v], Math.max(10, rtCount / 4), smoke);
                        long[] all = Arrays.copyOf(ns.get(v), ns.get(v).length + more.length);
                        System.arraycopy(more, 0, all, ns.get(v).length, more.length);
                        ns.set(v, all);
                    }
                }
                for (int v = 0; v < 2; v++) {
                    rtt[v][round] = new double[] {pct(ns.get(v), 50), pct(ns.get(v), 99)};
                }
                tsv.append(String.format(Locale.ROOT, "rt\t%d\t%.2f\t%.2f\t%.2f\t%.2f%n", round + 1,
                        rtt[0][round][0], rtt[0][round][1], rtt[1][round][0], rtt[1][round][1]));
            }
            Files.writeString(out.resolve("samples-versus.tsv"), tsv.toString());
            StringBuilder b = new StringBuilder();
            double[] load = loadAvg();
            b.append(String.format(Locale.ROOT, "A: %s%nB: A with %s%n%d round(s) of %s per row each, in %s slices "
                    + "alternating A B / B A; ring %d, EVENT_IDX; load average at the end %.2f %.2f %.2f%n%n",
                    describe(), versus, rounds, human(perRound * slice), human(slice), RING, load[0], load[1], load[2]));
            b.append("| row | A MB/s | B MB/s | B/A | pairs' median B/A | pairs | A CPU ms/GiB | B CPU ms/GiB |\n"
                    + "|---|---:|---:|---:|---:|---:|---:|---:|\n");
            double logSum = 0;
            int rows = 0;
            for (int r = 0; r < ROWS.size(); r++) {
                List<Double> l = pairs.get(r);
                if (l.isEmpty()) {
                    continue;
                }
                long[] x = sum[r];
                double q = mbps(x[3], x[4]) / mbps(x[0], x[1]);
                logSum += Math.log(q);
                rows++;
                b.append(String.format(Locale.ROOT, "| %s | %.0f | %.0f | %.3f | %.3f | %d | %.0f | %.0f |%n", ROWS.get(r).name,
                        mbps(x[0], x[1]), mbps(x[3], x[4]), q, median(l.stream().mapToDouble(Double::doubleValue).toArray()),
                        l.size(), ticksMsPerGiB(x[2], x[0]), ticksMsPerGiB(x[5], x[3])));
            }
            b.append(String.format(Locale.ROOT, "%nGeometric mean of B/A over the %d row(s): %.3f%n", rows, Math.exp(logSum / rows)));
            double[][] c = new double[4][rounds];
            for (int i = 0; i < rounds; i++) {
                c[0][i] = rtt[0][i][0];
                c[1][i] = rtt[0][i][1];
                c[2][i] = rtt[1][i][0];
                c[3][i] = rtt[1][i][1];
            }
            b.append(String.format(Locale.ROOT, "%n| 64-byte round trip (median over rounds) | p50 µs | p99 µs |%n|---|---:|---:|%n"
                    + "| A | %.1f | %.1f |%n| B | %.1f | %.1f |%n", median(c[0]), median(c[1]), median(c[2]), median(c[3])));
            Files.writeString(out.resolve("devlimit-versus.md"), b.toString());
            System.out.print(b);
            for (Launched l : List.of(la, lb)) {
                if (!l.p.isAlive()) {
                    throw new IOException("vportd exited: " + Files.readString(l.log));
                }
            }
            System.err.println(smoke ? "devlimit: versus smoke OK (every byte verified)" : "devlimit: versus done (page stamps verified)");
            return 0;
        } finally {
            la.stop();
            lb.stop();
        }
    }

    /** One slice of {@code row}'s stream through {@code d}'s vportd. */
    Sample slice(Driver d, Row row, SocketChannel host, long bytes, long pid) throws Exception {
        return row.toHost ? d.guestToHost(row, host, bytes, pid, smoke) : d.hostToGuest(row, host, bytes, pid, smoke);
    }

    /** What this run's vportd is, for the versus table's heading. */
    String describe() {
        return String.format(Locale.ROOT, "%s, %d idle device(s) beside%s%s%s", jar.getFileName(), idleDevices,
                viaConfig ? ", via --config" : "", vportdArgs.isEmpty() ? "" : ", vportd " + String.join(" ", vportdArgs),
                vportdCpus.isEmpty() ? "" : ", on CPUs " + vportdCpus);
    }

    static double mbps(long bytes, long nanos) {
        return bytes / 1e6 / (nanos / 1e9);
    }

    static double ticksMsPerGiB(long ticks, long bytes) {
        return ticks * 1000.0 / TICKS_PER_SECOND / (bytes / (double) (1L << 30));
    }

    static double cpuMsPerGiB(Sample s) {
        return s.cpuTicks * 1000.0 / TICKS_PER_SECOND / (s.bytes / (double) (1L << 30));
    }

    static final int TICKS_PER_SECOND = 100; // USER_HZ on Linux

    /** read-type plus write-type system calls of the process so far (syscr + syscw of /proc/PID/io). */
    static long syscalls(long pid) throws IOException {
        long n = 0;
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/io"))) {
            if (line.startsWith("syscr:") || line.startsWith("syscw:")) {
                n += Long.parseLong(line.substring(6).trim());
            }
        }
        return n;
    }

    static long cpuTicks(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime (fields 14, 15)
    }

    /** utime + stime of the process's data-plane threads (or its event loops'), without JIT compilation and GC. */
    static long dataPlaneTicks(long pid) {
        long n = 0;
        try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                try {
                    String stat = Files.readString(t.resolve("stat"));
                    String comm = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
                    if (comm.startsWith("vportd-dataplan") || comm.startsWith("vportd-loop")) {
                        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                        n += Long.parseLong(f[11]) + Long.parseLong(f[12]);
                    }
                } catch (IOException | RuntimeException gone) {
                    // a thread that ended meanwhile
                }
            }
        } catch (IOException e) {
            return -1;
        }
        return n;
    }

    static double pct(long[] ns, int p) {
        long[] s = ns.clone();
        Arrays.sort(s);
        return s[Math.min(s.length - 1, (int) Math.ceil(p / 100.0 * s.length) - 1)] / 1000.0;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    String table(List<List<Sample[]>> perRow, double[][] rtt, long rowBytes) throws IOException {
        StringBuilder b = new StringBuilder();
        double[] load = loadAvg();
        b.append(String.format(Locale.ROOT, "%d round(s), %s per row, ring %d, EVENT_IDX; medians over rounds "
                + "(ratio: median of the per-round ratios); load average at the end %.2f %.2f %.2f%n%n",
                rounds, human(rowBytes), RING, load[0], load[1], load[2]));
        b.append("| row | vportd MB/s | plain socket MB/s | ratio | vportd CPU ms/GiB | plain copy CPU ms/GiB (writer + reader) | vportd CPU / plain copy CPU | vportd syscalls/MiB | driver sleeps/MiB | of which ≥ 0.9 ms | driver asleep % | wakes finding the ring drained % |\n"
                + "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int r = 0; r < ROWS.size(); r++) {
            List<Sample[]> l = perRow.get(r);
            if (l.isEmpty()) {
                continue; // not among --rows
            }
            double[] v = new double[l.size()], s = new double[l.size()], q = new double[l.size()], c = new double[l.size()];
            double[] sc = new double[l.size()], sl = new double[l.size()], ll = new double[l.size()];
            double[] ap = new double[l.size()], dp = new double[l.size()];
            double[] pc = new double[l.size()], cr = new double[l.size()];
            for (int i = 0; i < l.size(); i++) {
                v[i] = l.get(i)[0].mbps();
                s[i] = l.get(i)[1].mbps();
                q[i] = v[i] / s[i];
                c[i] = cpuMsPerGiB(l.get(i)[0]);
                pc[i] = l.get(i)[1].copyCpuMsPerGiB();
                cr[i] = c[i] / pc[i];
                Sample x = l.get(i)[0];
                sc[i] = x.perMiB(x.syscalls);
                sl[i] = x.perMiB(x.sleeps);
                ll[i] = x.perMiB(x.longSleeps);
                ap[i] = x.asleepPct();
                dp[i] = x.dryPct();
            }
            b.append(String.format(Locale.ROOT, "| %s | %.0f | %.0f | %.2f× | %.0f | %.0f | %.2f | %.1f | %.2f | %.2f | %.0f | %s |%n",
                    ROWS.get(r).name, median(v), median(s), median(q), median(c), median(pc), median(cr), median(sc), median(sl),
                    median(ll), median(ap),
                    ROWS.get(r).toHost ? String.format(Locale.ROOT, "%.0f", median(dp)) : "–"));
        }
        double[][] cols = new double[4][rtt.length];
        for (int i = 0; i < rtt.length; i++) {
            for (int k = 0; k < 4; k++) {
                cols[k][i] = rtt[i][k];
            }
        }
        b.append(String.format(Locale.ROOT, "%n| 64-byte round trip (%d per round) | p50 µs | p99 µs |%n|---|---:|---:|%n", rtCount));
        b.append(String.format(Locale.ROOT, "| vportd (guest→host→guest echo) | %.1f | %.1f |%n", median(cols[0]), median(cols[1])));
        b.append(String.format(Locale.ROOT, "| plain socket (A→B→A echo) | %.1f | %.1f |%n", median(cols[2]), median(cols[3])));
        return b.toString();
    }

    static double[] loadAvg() throws IOException {
        String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
        return new double[] {Double.parseDouble(f[0]), Double.parseDouble(f[1]), Double.parseDouble(f[2])};
    }

    static String human(long bytes) {
        return bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? bytes / (1L << 30) + " GiB" : bytes / (1L << 20) + " MiB";
    }

    // ---- stream content ----------------------------------------------------------------

    static byte expected(long o) {
        int in = (int) (o & (PAGE - 1));
        long page = o >>> 12;
        if (in < 8) {
            return (byte) (page >>> (8 * in));
        }
        if (in >= PAGE - 8) {
            return (byte) (~page >>> (8 * (in - (PAGE - 8))));
        }
        return PATTERN[in];
    }

    /** Writes the stamps of every page in [streamOff, streamOff+len) (page aligned) into seg at off. */
    static void stamp(MemorySegment seg, long off, int len, long streamOff) {
        for (int k = 0; k < len; k += PAGE) {
            long page = (streamOff + k) >>> 12;
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off + k, page);
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off + k + PAGE - 8, ~page);
        }
    }

    /** Checks [off, off+len) of seg as stream bytes from streamOff: every byte (full) or the stamps. */
    static void check(MemorySegment seg, long off, long len, long streamOff, boolean full, String what) {
        long o = streamOff;
        long end = streamOff + len;
        while (o < end) {
            int in = (int) (o & (PAGE - 1));
            if (!full && in >= 8 && in < PAGE - 8) {
                long skip = Math.min(end, (o & -PAGE) + PAGE - 8);
                o = skip;
                continue;
            }
            byte got = seg.get(ValueLayout.JAVA_BYTE, off + (o - streamOff));
            if (got != expected(o)) {
                throw new Mismatch(String.format(Locale.ROOT, "%s: stream offset %d has 0x%02x, expected 0x%02x",
                        what, o, got & 0xff, expected(o) & 0xff));
            }
            o++;
        }
    }

    static void fillPattern(MemorySegment seg, long off, long len) {
        for (long k = 0; k < len; k += PAGE) {
            MemorySegment.copy(MemorySegment.ofArray(PATTERN), 0, seg, off + k, PAGE);
        }
    }

    // ---- host side ---------------------------------------------------------------------

    /** Reads exactly {@code total} bytes from ch, checking them; returns nothing, throws on mismatch. */
    static void readAll(SocketChannel ch, long total, int bufSize, boolean full, String what) throws IOException {
        ByteBuffer bb = ByteBuffer.allocateDirect(bufSize);
        MemorySegment seg = MemorySegment.ofBuffer(bb);
        long got = 0;
        while (got < total) {
            bb.clear();
            bb.limit((int) Math.min(bufSize, total - got));
            int n = ch.read(bb);
            if (n < 0) {
                throw new IOException(what + ": end of stream after " + got + " of " + total + " bytes");
            }
            check(seg, 0, n, got, full, what);
            got += n;
        }
    }

    static void writeAll(SocketChannel ch, long total, int chunk) throws IOException {
        ByteBuffer bb = ByteBuffer.allocateDirect(chunk);
        MemorySegment seg = MemorySegment.ofBuffer(bb);
        fillPattern(seg, 0, chunk);
        for (long done = 0; done < total; done += chunk) {
            stamp(seg, 0, chunk, done);
            bb.clear();
            while (bb.hasRemaining()) {
                ch.write(bb);
            }
        }
    }

    /** Runs body on a new thread; join() rethrows what it threw. */
    static final class Side {
        final Thread t;
        final AtomicReference<Throwable> err = new AtomicReference<>();

        Side(String name, ThrowingRunnable body) {
            t = Thread.ofPlatform().name(name).daemon().start(() -> {
                try {
                    body.run();
                } catch (Throwable e) {
                    err.set(e);
                }
            });
        }

        void join() throws Exception {
            if (!t.join(Duration.ofMinutes(10))) {
                throw new IOException(t.getName() + " did not finish");
            }
            rethrow();
        }

        void rethrow() throws Exception {
            Throwable e = err.get();
            if (e instanceof Mismatch m) {
                throw m;
            }
            if (e != null) {
                throw new IOException(t.getName() + ": " + e, e);
            }
        }
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    /** A connected AF_UNIX stream pair (what socketpair(AF_UNIX, SOCK_STREAM) gives), via a temporary listener. */
    SocketChannel[] pair() throws IOException {
        Path p = out.resolve("plain.sock");
        Files.deleteIfExists(p);
        try (ServerSocketChannel l = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            l.bind(UnixDomainSocketAddress.of(p));
            SocketChannel a = SocketChannel.open(UnixDomainSocketAddress.of(p));
            SocketChannel b = l.accept();
            Files.deleteIfExists(p);
            return new SocketChannel[] {a, b};
        }
    }

    /** The plain reference: writer writes row.chunk-sized writes, reader reads as the receiving side of the vportd row does. */
    Sample plain(Row row, long bytes, boolean full) throws Exception {
        SocketChannel[] ab = pair();
        try (SocketChannel a = ab[0]; SocketChannel b = ab[1]) {
            int readSize = row.toHost ? HOST_READ : PAGE;
            java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
            java.util.concurrent.atomic.AtomicLong writerCpu = new java.util.concurrent.atomic.AtomicLong();
            long r0 = threads.getCurrentThreadCpuTime();
            long t0 = System.nanoTime();
            Side w = new Side("plain-writer", () -> {
                long c0 = threads.getCurrentThreadCpuTime();
                writeAll(a, bytes, row.chunk);
                writerCpu.set(threads.getCurrentThreadCpuTime() - c0);
            });
            readAll(b, bytes, readSize, full, "plain " + row.name);
            long t1 = System.nanoTime();
            long readerCpu = threads.getCurrentThreadCpuTime() - r0;
            w.join();
            plainWriterBusy = writerCpu.get() / (double) (t1 - t0);
            return new Sample(bytes, t1 - t0, readerCpu + writerCpu.get());
        }
    }

    long[] plainRoundTrips(int n) throws Exception {
        SocketChannel[] ab = pair();
        try (SocketChannel a = ab[0]; SocketChannel b = ab[1]) {
            Side echo = new Side("plain-echo", () -> echo(b, 64L * (n + n / 10)));
            long[] ns = new long[n];
            ByteBuffer msg = ByteBuffer.allocateDirect(64);
            ByteBuffer in = ByteBuffer.allocateDirect(64);
            MemorySegment inSeg = MemorySegment.ofBuffer(in);
            long stream = 0;
            for (int i = -n / 10; i < n; i++) {
                msg.clear();
                for (int k = 0; k < 64; k++) {
                    msg.put(k, expected(stream + k));
                }
                long t0 = System.nanoTime();
                while (msg.hasRemaining()) {
                    a.write(msg);
                }
                in.clear();
                while (in.hasRemaining()) {
                    if (a.read(in) < 0) {
                        throw new IOException("plain echo closed");
                    }
                }
                long t1 = System.nanoTime();
                check(inSeg, 0, 64, stream, true, "plain round trip");
                stream += 64;
                if (i >= 0) {
                    ns[i] = t1 - t0;
                }
            }
            echo.join();
            return ns;
        }
    }

    static void echo(SocketChannel ch, long total) throws IOException {
        ByteBuffer bb = ByteBuffer.allocateDirect(4096);
        long done = 0;
        while (done < total) {
            bb.clear();
            int n = ch.read(bb);
            if (n < 0) {
                throw new IOException("echo: end of stream");
            }
            bb.flip();
            while (bb.hasRemaining()) {
                ch.write(bb);
            }
            done += n;
        }
    }

    // ---- the guest driver --------------------------------------------------------------

    /** One split ring in the frontend's memfd (gpa 0 = offset 0), driver side, EVENT_IDX. */
    static final class Ring {
        final int q;
        final MemorySegment ram;
        final long desc, avail, used;
        int availIdx, lastKickIdx, lastUsed;
        int lastLen;
        long sleeps, longSleeps, sleepNanos; // driver sleeps on the call eventfd, those of 0.9 ms or more, time asleep

        void resetSleeps() {
            sleeps = 0;
            longSleeps = 0;
            sleepNanos = 0;
        }

        Ring(TestFrontend fe, int q, long base) throws IOException {
            this.q = q;
            this.ram = fe.guestRam();
            this.desc = base;
            this.avail = base + 16L * RING;
            this.used = base + 2 * PAGE;
            fe.startQueue(q, desc, avail, used, RING);
        }

        void setDesc(int i, long addr, int len, int flags, int next) {
            long at = desc + 16L * i;
            ram.set(ValueLayout.JAVA_LONG_UNALIGNED, at, addr);
            ram.set(ValueLayout.JAVA_INT_UNALIGNED, at + 8, len);
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + 12, (short) flags);
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + 14, (short) next);
        }

        /** Puts head in the avail ring (not yet published). */
        void add(int head) {
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, avail + 4 + 2L * (availIdx & (RING - 1)), (short) head);
            availIdx = (availIdx + 1) & 0xFFFF;
        }

        /** Publishes avail idx and kicks when the device's avail_event asks for it (Linux's rule). */
        void publishAndKick(TestFrontend fe) {
            U16.setRelease(ram, avail + 2, (short) availIdx);
            VarHandle.fullFence();
            int event = Short.toUnsignedInt(ram.get(ValueLayout.JAVA_SHORT_UNALIGNED, used + 4 + 8L * RING));
            int now = availIdx, old = lastKickIdx;
            lastKickIdx = now;
            if (((now - event - 1) & 0xFFFF) < ((now - old) & 0xFFFF)) {
                fe.kick(q);
            }
        }

        int usedIdx() {
            return Short.toUnsignedInt((short) U16.getAcquire(ram, used + 2));
        }

        /** The next used id (length in lastLen), or -1. */
        int takeUsed() {
            if (usedIdx() == lastUsed) {
                return -1;
            }
            long at = used + 4 + 8L * (lastUsed & (RING - 1));
            int id = ram.get(ValueLayout.JAVA_INT_UNALIGNED, at);
            lastLen = ram.get(ValueLayout.JAVA_INT_UNALIGNED, at + 4);
            lastUsed = (lastUsed + 1) & 0xFFFF;
            return id;
        }

        /** Asks for an interrupt at the next used entry; true when entries are already there. */
        boolean armAndCheck() {
            U16.setRelease(ram, avail + 4 + 2L * RING, (short) lastUsed);
            VarHandle.fullFence();
            return usedIdx() != lastUsed;
        }

        /** Waits for used entries: arm the interrupt, re-check, then sleep on the call eventfd. */
        void await(TestFrontend fe) throws Exception {
            await(fe, null);
        }

        /** As {@link #await(TestFrontend)}, giving up early when the host side failed. */
        void await(TestFrontend fe, Side host) throws Exception {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!armAndCheck()) {
                if (host != null) {
                    host.rethrow();
                }
                long t0 = System.nanoTime();
                boolean called = fe.awaitCall(q, Duration.ofMillis(200));
                long slept = System.nanoTime() - t0;
                sleeps++;
                sleepNanos += slept;
                if (slept >= 900_000) {
                    longSleeps++;
                }
                if (called) {
                    continue;
                }
                if (System.nanoTime() > deadline) {
                    throw new IOException("no interrupt on queue " + q + " within " + WAIT);
                }
            }
        }
    }

    final class Driver {
        final TestFrontend fe;
        final MemorySegment ram;
        final Ring ctlRx, ctlTx, rx, tx;
        static final long CTL_BUF = 0x100000, RX_BUF = 0x200000, TX_BUF = 0x400000, TX_SLOT = 32768;
        long rxStream; // host->guest stream offset
        long rxBase;   // where the current row's stream (page 0) started
        int ctlTxHead;

        Driver(TestFrontend fe) throws IOException {
            this.fe = fe;
            this.ram = fe.guestRam();
            ctlRx = new Ring(fe, CONTROL_RX, 0x10000);
            ctlTx = new Ring(fe, CONTROL_TX, 0x20000);
            rx = new Ring(fe, PORT_RX, 0x30000);
            tx = new Ring(fe, PORT_TX, 0x40000);
            for (int i = 0; i < 64; i++) {
                ctlRx.setDesc(i, CTL_BUF + 512L * i, 512, 2, 0);
                ctlRx.add(i);
            }
            ctlRx.publishAndKick(fe);
            for (int i = 0; i < RING; i++) {
                rx.setDesc(i, RX_BUF + (long) PAGE * i, PAGE, 2, 0);
                tx.setDesc(i, TX_BUF + TX_SLOT * i, (int) TX_SLOT, 0, 0);
            }
            fillPattern(ram, TX_BUF, TX_SLOT * RING);
        }

        void say(int id, int event, int value) throws IOException {
            int head = ctlTxHead++ & (RING - 1);
            long buf = CTL_BUF + 64 * 512 + 16L * head;
            ram.set(ValueLayout.JAVA_INT_UNALIGNED, buf, id);
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, buf + 4, (short) event);
            ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, buf + 6, (short) value);
            ctlTx.setDesc(head, buf, 8, 0, 0);
            ctlTx.add(head);
            ctlTx.publishAndKick(fe);
        }

        /** Waits for the control message (id, event, value) from the device, reposting buffers. */
        void expect(int id, int event, int value) throws IOException {
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (System.nanoTime() < deadline) {
                int u;
                while ((u = ctlRx.takeUsed()) >= 0) {
                    long buf = CTL_BUF + 512L * u;
                    int gid = ram.get(ValueLayout.JAVA_INT_UNALIGNED, buf);
                    int ev = ram.get(ValueLayout.JAVA_SHORT_UNALIGNED, buf + 4);
                    int val = ram.get(ValueLayout.JAVA_SHORT_UNALIGNED, buf + 6);
                    ctlRx.add(u);
                    ctlRx.publishAndKick(fe);
                    if (System.getenv("DEVLIMIT_DEBUG") != null) {
                        System.err.printf("devlimit: control from device: id %d event %d value %d%n", gid, ev, val);
                    }
                    if (gid == id && ev == event && (value < 0 || val == value)) {
                        return;
                    }
                }
                while (ctlTx.takeUsed() >= 0) {
                    // control transmit buffers are reused round robin
                }
                if (!ctlRx.armAndCheck()) {
                    fe.awaitCall(CONTROL_RX, Duration.ofMillis(100));
                }
            }
            throw new IOException("no control message id " + id + " event " + event + " value " + value);
        }

        /** DEVICE_READY, PORT_ADD 1, PORT_READY, guest PORT_OPEN, host connects, PORT_OPEN 1 from the device. */
        SocketChannel handshake(Path port) throws IOException {
            say(0xFFFF_FFFF, 0, 1);      // DEVICE_READY
            expect(1, 1, -1);            // PORT_ADD
            say(1, 3, 1);                // PORT_READY
            say(1, 6, 1);                // PORT_OPEN: the guest opened the port
            SocketChannel host = SocketChannel.open(UnixDomainSocketAddress.of(port));
            expect(1, 6, 1);             // PORT_OPEN: the host side is connected
            for (int i = 0; i < RING; i++) {
                rx.add(i);
            }
            rx.publishAndKick(fe);
            return host;
        }

        Sample guestToHost(Row row, SocketChannel host, long bytes, long pid, boolean full) throws Exception {
            Ring ring = tx;
            int k = row.descs;
            int groups = RING / k;
            int[] free = new int[groups];
            int freeN = groups;
            for (int g = 0; g < groups; g++) {
                free[g] = g;
                for (int j = 0; j < k; j++) {
                    int di = g * k + j;
                    tx.setDesc(di, TX_BUF + TX_SLOT * di, row.descLen, j < k - 1 ? 1 : 0, di + 1);
                }
            }
            long c0 = cpuTicks(pid), s0 = syscalls(pid);
            ring.resetSleeps();
            long t0 = System.nanoTime();
            Side reader = new Side("host-reader", () -> readAll(host, bytes, HOST_READ, full, "vportd " + row.name));
            long sent = 0;
            int inFlight = 0;
            long wakes = 0, dryWakes = 0;
            int beforeSleep = 0;
            boolean woke = false;
            while (sent < bytes || inFlight > 0) {
                boolean added = false;
                while (freeN > 0 && sent < bytes && (trickleMicros == 0 || !added)) {
                    int g = free[--freeN];
                    for (int j = 0; j < k; j++) {
                        int di = g * k + j;
                        stamp(ram, TX_BUF + TX_SLOT * di, row.descLen, sent + (long) j * row.descLen);
                    }
                    if (CORRUPT && sent == 0) { // self-test of the checker: one wrong byte must fail the run
                        ram.set(ValueLayout.JAVA_BYTE, TX_BUF + TX_SLOT * (g * k) + 100, (byte) ~PATTERN[100]);
                    }
                    tx.add(g * k);
                    sent += row.chunk;
                    inFlight++;
                    added = true;
                }
                if (added) {
                    tx.publishAndKick(fe);
                    if (trickleMicros > 0) { // the slow guest's work before its next write
                        for (long until = System.nanoTime() + trickleMicros * 1000L; System.nanoTime() - until < 0; ) {
                            Thread.onSpinWait();
                        }
                    }
                }
                int id;
                boolean got = false;
                int reclaimed = 0;
                while ((id = tx.takeUsed()) >= 0) {
                    reclaimed++;
                    if (id % k != 0 || id / k >= groups) {
                        throw new Mismatch("used id " + id + " is not a chain head");
                    }
                    free[freeN++] = id / k;
                    inFlight--;
                    got = true;
                }
                if (woke && reclaimed > 0) {
                    wakes++;
                    if (reclaimed == beforeSleep) {
                        dryWakes++;
                    }
                    woke = false;
                }
                if (!got && (freeN == 0 || sent >= bytes) && inFlight > 0) {
                    beforeSleep = inFlight;
                    tx.await(fe, reader);
                    woke = true;
                }
            }
            reader.join();
            long t1 = System.nanoTime();
            return new Sample(bytes, t1 - t0, cpuTicks(pid) - c0, syscalls(pid) - s0, ring.sleeps, ring.longSleeps,
                    ring.sleepNanos, wakes, dryWakes, -1);
        }

        Sample hostToGuest(Row row, SocketChannel host, long bytes, long pid, boolean full) throws Exception {
            Ring ring = rx;
            long c0 = cpuTicks(pid), s0 = syscalls(pid);
            ring.resetSleeps();
            long t0 = System.nanoTime();
            rxBase = rxStream;
            java.lang.management.ThreadMXBean threads = java.lang.management.ManagementFactory.getThreadMXBean();
            java.util.concurrent.atomic.AtomicLong writerCpu = new java.util.concurrent.atomic.AtomicLong();
            Side writer = new Side("host-writer", () -> {
                long w0 = threads.getCurrentThreadCpuTime();
                writeAll(host, bytes, row.chunk);
                writerCpu.set(threads.getCurrentThreadCpuTime() - w0);
            });
            receive(bytes, full, "vportd " + row.name, writer);
            long t1 = System.nanoTime();
            writer.join();
            hostWriterBusy = writerCpu.get() / (double) (t1 - t0);
            return new Sample(bytes, t1 - t0, cpuTicks(pid) - c0, syscalls(pid) - s0, ring.sleeps, ring.longSleeps,
                    ring.sleepNanos, -1, -1, -1);
        }

        /** Takes {@code bytes} from the receive ring, checking them and reposting buffers. */
        void receive(long bytes, boolean full, String what, Side host) throws Exception {
            long end = rxStream + bytes;
            while (rxStream < end) {
                int id;
                boolean got = false;
                while ((id = rx.takeUsed()) >= 0) {
                    if (id < 0 || id >= RING || rx.lastLen < 0 || rx.lastLen > PAGE) {
                        throw new Mismatch("bad used entry id " + id + " len " + rx.lastLen);
                    }
                    check(ram, RX_BUF + (long) PAGE * id, rx.lastLen, rxStream - rxBase, full, what);
                    rxStream += rx.lastLen;
                    rx.add(id);
                    got = true;
                }
                if (got) {
                    rx.publishAndKick(fe);
                } else {
                    rx.await(fe, host);
                }
            }
            if (rxStream != end) {
                throw new Mismatch(what + ": received " + (rxStream - end) + " bytes more than sent");
            }
        }

        long[] roundTrips(SocketChannel host, int n, boolean full) throws Exception {
            int warm = n / 10;
            rxBase = rxStream;
            Side echo = new Side("host-echo", () -> echo(host, 64L * (n + warm)));
            for (int g = 0; g < RING; g++) {
                tx.setDesc(g, TX_BUF + TX_SLOT * g, 64, 0, 0);
            }
            int[] free = new int[RING];
            int freeN = RING;
            for (int g = 0; g < RING; g++) {
                free[g] = g;
            }
            long[] ns = new long[n];
            long stream = 0;
            for (int i = -warm; i < n; i++) {
                while (freeN == 0) {
                    int id;
                    while ((id = tx.takeUsed()) >= 0) {
                        free[freeN++] = id;
                    }
                    if (freeN == 0) {
                        tx.await(fe);
                    }
                }
                int g = free[--freeN];
                long buf = TX_BUF + TX_SLOT * g;
                for (int k = 0; k < 64; k++) {
                    ram.set(ValueLayout.JAVA_BYTE, buf + k, expected(stream + k));
                }
                long t0 = System.nanoTime();
                tx.add(g);
                tx.publishAndKick(fe);
                receive(64, true, "vportd round trip", echo);
                long t1 = System.nanoTime();
                stream += 64;
                int id;
                while ((id = tx.takeUsed()) >= 0) {
                    free[freeN++] = id;
                }
                if (i >= 0) {
                    ns[i] = t1 - t0;
                }
            }
            echo.join();
            while (freeN < RING) { // leave the transmit ring empty for the next round
                int id;
                while ((id = tx.takeUsed()) >= 0) {
                    free[freeN++] = id;
                }
                if (freeN < RING) {
                    tx.await(fe);
                }
            }
            return ns;
        }
    }

}
