package io.vportd.console.portlog;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The writer between the data plane and a port's log: a blocked sink never blocks the producer;
 * what does not fit is dropped, and the sink learns the exact count at the place it happened.
 */
@Timeout(30)
class LogWriterTest {

    /** Records what it is given; its first write waits for {@link #release}. */
    static final class BlockedSink implements LogTarget {
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final ByteArrayOutputStream data = new ByteArrayOutputStream();
        final List<String> events = new ArrayList<>();
        final CountDownLatch closed = new CountDownLatch(1);

        @Override
        public synchronized void write(byte[] b, int off, int len, long epochMillis) {
            entered.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            data.write(b, off, len);
            events.add("data " + len);
        }

        @Override
        public synchronized void dropped(long bytes, long epochMillis) {
            events.add("dropped " + bytes);
        }

        @Override
        public String describe() {
            return "test sink";
        }

        @Override
        public void close() {
            closed.countDown();
        }
    }

    @Test
    void aBlockedSinkDropsWithoutBlockingAndTheMarkerCarriesTheExactCount() throws InterruptedException {
        BlockedSink sink = new BlockedSink();
        LogWriter w = new LogWriter(sink, "port 1", 64 * 1024);
        w.start();
        byte[] chunk = new byte[1000];
        ByteArrayOutputStream kept = new ByteArrayOutputStream();
        int seq = 0;
        fill(chunk, seq++);
        assertEquals(0, w.offer(chunk, 0, chunk.length, 1));
        kept.write(chunk, 0, chunk.length);
        sink.entered.await(); // the writer is stuck in the sink now
        long dropped = 0;
        for (int i = 0; i < 200; i++) { // 200 KB against a 64 KiB buffer: the producer never waits
            fill(chunk, seq++);
            int d = w.offer(chunk, 0, chunk.length, 1);
            if (d == 0) {
                kept.write(chunk, 0, chunk.length);
            }
            dropped += d;
        }
        assertTrue(dropped > 100_000, "most of it dropped: " + dropped);
        assertEquals(dropped, w.droppedTotal());
        fill(chunk, seq++);
        sink.release.countDown();
        // Once the writer catches up there is room again: the next offer records the drop first.
        int d;
        do {
            d = w.offer(chunk, 0, chunk.length, 2);
            if (d > 0) {
                dropped += d;
                Thread.onSpinWait();
            }
        } while (d > 0);
        kept.write(chunk, 0, chunk.length);
        w.close();
        assertTrue(w.awaitClosed(10_000));
        assertEquals(0, sink.closed.getCount(), "the target is closed after the last record");
        assertArrayEquals(kept.toByteArray(), sink.data.toByteArray(), "kept bytes in order, none twice");
        List<String> drops = sink.events.stream().filter(e -> e.startsWith("dropped")).toList();
        assertEquals(List.of("dropped " + dropped), drops);
        int markerAt = sink.events.indexOf("dropped " + dropped);
        long before = sink.events.subList(0, markerAt).stream().mapToLong(e -> Long.parseLong(e.substring(5))).sum();
        assertEquals(kept.size() - chunk.length, before, "the marker sits where the bytes went missing");
    }

    @Test
    void aDropNotYetRecordedIsRecordedOnClose() throws InterruptedException {
        BlockedSink sink = new BlockedSink();
        LogWriter w = new LogWriter(sink, "port 2", 4096);
        w.start();
        byte[] chunk = new byte[3000];
        assertEquals(0, w.offer(chunk, 0, chunk.length, 1));
        sink.entered.await();
        assertEquals(3000, w.offer(chunk, 0, chunk.length, 1)); // room for a header, not for the data
        sink.release.countDown();
        w.close();
        assertTrue(w.awaitClosed(10_000));
        assertEquals(List.of("data 3000", "dropped 3000"), sink.events);
    }

    private static void fill(byte[] b, int seq) {
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (seq * 7 + i);
        }
    }

    /** Fails its first {@code failures} writes (a full disk), then records like a working one. */
    static final class FailingSink implements LogTarget {
        int failures;
        final List<String> events = new ArrayList<>();
        final CountDownLatch closed = new CountDownLatch(1);

        FailingSink(int failures) {
            this.failures = failures;
        }

        @Override
        public synchronized void write(byte[] b, int off, int len, long epochMillis) throws java.io.IOException {
            if (failures > 0) {
                failures--;
                throw new java.io.IOException("No space left on device");
            }
            events.add("data " + len);
        }

        @Override
        public synchronized void dropped(long bytes, long epochMillis) throws java.io.IOException {
            if (failures > 0) {
                failures--;
                throw new java.io.IOException("No space left on device");
            }
            events.add("dropped " + bytes);
        }

        @Override
        public String describe() {
            return "failing sink";
        }

        @Override
        public void close() {
            closed.countDown();
        }
    }

    @Test
    void bytesOfFailedWritesAreCountedAndMarkedOnceWritingWorksAgain() throws InterruptedException {
        FailingSink sink = new FailingSink(3); // the write of 100, then the marker attempt with 200, fail; then 300's marker too
        LogWriter w = new LogWriter(sink, "port 3", 64 * 1024);
        for (int len : new int[] {100, 200, 300, 400}) {
            assertEquals(0, w.offer(new byte[len], 0, len, 1));
        }
        w.drainOnce(new byte[64 * 1024]); // on this thread: the writer thread is not started
        assertEquals(List.of("dropped 600", "data 400"), sink.events,
                "100 failed; 200 lost with the failed marker; 300 lost with the next failed marker; then the marker");
        w.close();
        assertTrue(w.awaitClosed(1000));
        assertEquals(0, sink.closed.getCount());
    }
}
