package io.vportd.console.device;

/**
 * The data plane's adaptive poll (issue 14, {@code --poll-us}): after a cycle that moved a
 * reply's worth of bytes (less than a page, either way), the loop keeps looking at its rings and
 * endpoints without sleeping (epoll with timeout 0) for up to the window, so the answer that
 * follows a small message is served without a sleep and a wake-up. A cycle that moved a page or
 * more is bulk: the window closes and the loop sleeps in epoll, leaving the CPU to the writer and
 * reader at either end, who are what bounds a stream. Once a window passes with nothing to do it
 * sleeps in epoll as before, so an idle device costs no CPU. The decision only, with the clock
 * handed in: the loop is in {@link DataPlane}. Confined to the data-plane thread.
 */
final class PollWindow {

    /** A cycle that moved fewer bytes than this (both ways together) opens the window; this many or more close it. */
    static final long SMALL_BYTES = 4096;

    /** Longest window {@code --poll-us} accepts (microseconds). */
    static final int MAX_MICROS = 1_000_000;

    private long windowNanos;
    private long deadline;
    private boolean open;

    /** Sets the window; 0 disables polling. */
    void setMicros(int micros) {
        if (micros < 0 || micros > MAX_MICROS) {
            throw new IllegalArgumentException("poll window must be 0.." + MAX_MICROS + " µs, got " + micros);
        }
        windowNanos = micros * 1000L;
        if (windowNanos == 0) {
            open = false;
        }
    }

    /**
     * A cycle ended at {@code now} (System.nanoTime) having moved {@code bytes}: a few bytes open
     * the window (again) from here, a page or more close it, none leave it as it was (a guest
     * posting buffers or a timer moves nothing).
     */
    void moved(long bytes, long now) {
        if (bytes >= SMALL_BYTES) {
            open = false;
        } else if (bytes > 0) {
            worked(now);
        }
    }

    /** A cycle at {@code now} (System.nanoTime) did work: the window starts (again) from here. */
    void worked(long now) {
        if (windowNanos > 0) {
            deadline = now + windowNanos;
            open = true;
        }
    }

    /**
     * The epoll timeout for the next wait: 0 while the window is open (or when {@code idleMillis}
     * is 0 because work is waiting), otherwise {@code idleMillis}; the window closes at its deadline.
     */
    int timeoutMillis(int idleMillis, long now) {
        if (idleMillis == 0) {
            return 0;
        }
        if (open) {
            if (now - deadline < 0) {
                return 0;
            }
            open = false;
        }
        return idleMillis;
    }

    /** True while polling (the loop then pauses briefly with {@link Thread#onSpinWait()}). */
    boolean isOpen() {
        return open;
    }
}
