package io.vportd.console.handover;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Waits, before a hand-over's pause begins, until this JVM's just-in-time compiler has finished
 * the work a warm-up queued. A rehearsal leaves the compiler threads busy for up to a second
 * (C2 compiling what the rounds made hot); started at once, the pause would run that code at a
 * lower tier while the compiler threads take one of the host's CPUs. The compiler's activity is
 * read from the CPU time of its threads ({@code /proc/self/task/TID/stat} of the threads named
 * {@code C1 CompilerThre…} / {@code C2 CompilerThre…}), so no management module is needed.
 */
final class CompilerQuiet {

    /** How often the compiler threads' CPU time is read. */
    static final long SAMPLE_MILLIS = 20;
    /** Samples in a row without compiler CPU time that count as quiet (the kernel counts in 10 ms ticks). */
    static final int QUIET_SAMPLES = 4;

    private CompilerQuiet() {
    }

    /**
     * Returns once the compiler threads have used no CPU for {@link #QUIET_SAMPLES} samples, or
     * after {@code maxMillis}; never throws. Returns the milliseconds waited.
     */
    static long await(long maxMillis) {
        long t0 = System.nanoTime();
        long deadline = t0 + maxMillis * 1_000_000L;
        long last = compilerTicks();
        if (last < 0) {
            return 0; // no /proc, or no compiler threads by those names: nothing to wait for
        }
        int quiet = 0;
        while (quiet < QUIET_SAMPLES && System.nanoTime() - deadline < 0) {
            try {
                Thread.sleep(SAMPLE_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            long now = compilerTicks();
            quiet = now == last ? quiet + 1 : 0;
            last = now;
        }
        return (System.nanoTime() - t0) / 1_000_000;
    }

    /** utime + stime of this process's compiler threads in clock ticks, or -1 when none are found. */
    static long compilerTicks() {
        long sum = 0;
        boolean found = false;
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path task : tasks) {
                String comm;
                String stat;
                try {
                    comm = Files.readString(task.resolve("comm"));
                    if (!isCompiler(comm)) {
                        continue;
                    }
                    stat = Files.readString(task.resolve("stat"));
                } catch (IOException e) {
                    continue; // the thread ended meanwhile
                }
                long t = cpuTicks(stat);
                if (t >= 0) {
                    sum += t;
                    found = true;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return found ? sum : -1;
    }

    static boolean isCompiler(String comm) {
        return comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre");
    }

    /**
     * utime + stime (fields 14 and 15) of a {@code stat} line, or -1 if it cannot be read. The
     * second field (the thread's name, in parentheses) may itself hold spaces and parentheses,
     * so fields are counted from the last closing parenthesis.
     */
    static long cpuTicks(String stat) {
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            return -1;
        }
        String[] f = stat.substring(close + 1).trim().split(" ");
        // f[0] is field 3 (state); utime is field 14, stime field 15.
        if (f.length < 13) {
            return -1;
        }
        try {
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
