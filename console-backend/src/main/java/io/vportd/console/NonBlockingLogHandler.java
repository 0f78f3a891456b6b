package io.vportd.console;

import io.vportd.telemetry.Counter;
import io.vportd.telemetry.MetricSet;
import io.vportd.telemetry.SharedCounter;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.jctools.queues.atomic.MpscAtomicArrayQueue;

/**
 * A log handler that never makes the logging thread wait for the output. Each record is
 * formatted on the calling thread and offered to a bounded queue; one writer thread takes the
 * lines and writes them to the stream (it alone may block, e.g. on a stderr pipe nobody reads).
 * When the queue is full the record is dropped and counted ({@code vportd_log_records_dropped_total}),
 * and once the writer has caught up it writes one line saying how many were dropped.
 */
final class NonBlockingLogHandler extends Handler {

    static final int DEFAULT_CAPACITY = 4096;
    private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final OutputStream out;
    private final MpscAtomicArrayQueue<String> queue;
    private final MetricSet metrics = new MetricSet();
    private final SharedCounter dropped = metrics.shared("vportd_log_records_dropped_total",
            "Log records dropped because the log writer could not keep up (its output was slow or blocked).");
    private final Counter written = metrics.counter("vportd_log_records_written_total",
            "Log records (and dropped-record notes) handed to the log output.");
    private final Thread writer;
    private volatile boolean sleeping;
    private volatile boolean stopping;
    /** Drops already reported in a line (written by the writer thread only). */
    private volatile long reported;

    NonBlockingLogHandler(OutputStream out, Formatter formatter, int capacity) {
        this.out = out;
        this.queue = new MpscAtomicArrayQueue<>(capacity);
        setFormatter(formatter);
        this.writer = Thread.ofPlatform().name("vportd-log").daemon(true).unstarted(this::drain);
        writer.start();
    }

    /** This handler's counters, to register with the metric registry. */
    MetricSet metrics() {
        return metrics;
    }

    long dropped() {
        return dropped.get();
    }

    long written() {
        return written.get();
    }

    @Override
    public void publish(LogRecord record) {
        if (!isLoggable(record)) {
            return;
        }
        String line;
        try {
            line = getFormatter().format(record);
        } catch (RuntimeException e) {
            line = record.getLevel() + " " + record.getLoggerName() + ": (unformattable record: " + e + ")\n";
        }
        if (!queue.offer(line)) {
            dropped.incrementAndGet();
            return;
        }
        if (sleeping) {
            LockSupport.unpark(writer);
        }
    }

    private void drain() {
        while (true) {
            String line = queue.poll();
            if (line != null) {
                write(line);
                continue;
            }
            long d = dropped.get();
            if (d != reported) {
                // Caught up: say what was lost, once.
                write(dropNote(d - reported));
                reported = d;
                continue;
            }
            flushQuietly();
            if (stopping) {
                return;
            }
            sleeping = true;
            if (queue.isEmpty() && dropped.get() == reported && !stopping) {
                LockSupport.parkNanos(this, IDLE_PARK_NANOS);
            }
            sleeping = false;
        }
    }

    private String dropNote(long n) {
        LogRecord r = new LogRecord(Level.WARNING, n + " log records dropped: the log output did not keep up");
        r.setLoggerName("vportd.log");
        return getFormatter().format(r);
    }

    private void write(String line) {
        try {
            out.write(line.getBytes(StandardCharsets.UTF_8));
            written.increment();
        } catch (IOException | RuntimeException e) {
            // Nowhere left to report it; the line is lost.
        }
    }

    private void flushQuietly() {
        try {
            out.flush();
        } catch (IOException | RuntimeException e) {
            // as above
        }
    }

    /** Waits at most {@code timeoutMillis} for the queue to be written out. */
    boolean awaitDrained(long timeoutMillis) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (!queue.isEmpty() || dropped.get() != reported) {
            if (System.nanoTime() - deadline >= 0 || !writer.isAlive()) {
                return false;
            }
            LockSupport.unpark(writer);
            LockSupport.parkNanos(1_000_000);
        }
        return true;
    }

    /** Writes out what is queued (bounded wait); later records are still taken. */
    @Override
    public void flush() {
        awaitDrained(2_000);
    }

    /** Writes out what is queued (bounded wait) and stops the writer. */
    @Override
    public void close() {
        awaitDrained(2_000);
        stopping = true;
        LockSupport.unpark(writer);
        try {
            writer.join(1_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
