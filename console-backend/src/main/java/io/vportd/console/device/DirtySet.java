package io.vportd.console.device;

/**
 * A fixed set of small non-negative indices (ports, queues) with work waiting, as a bitmap: the
 * data plane visits only the marked ones instead of scanning every port and queue on each wake.
 * Confined to the data-plane thread; allocates nothing after construction.
 */
final class DirtySet {

    private final long[] words;
    private int count;

    DirtySet(int capacity) {
        this.words = new long[Math.max(1, (capacity + 63) >>> 6)];
    }

    void mark(int i) {
        long bit = 1L << i;
        int w = i >>> 6;
        if ((words[w] & bit) == 0) {
            words[w] |= bit;
            count++;
        }
    }

    boolean contains(int i) {
        return (words[i >>> 6] & 1L << i) != 0;
    }

    /** Removes {@code i}; returns whether it was there. */
    boolean clear(int i) {
        long bit = 1L << i;
        int w = i >>> 6;
        if ((words[w] & bit) == 0) {
            return false;
        }
        words[w] &= ~bit;
        count--;
        return true;
    }

    boolean isEmpty() {
        return count == 0;
    }

    /** The lowest marked index at or above {@code from}, or -1. */
    int next(int from) {
        if (from < 0) {
            from = 0;
        }
        int w = from >>> 6;
        if (w >= words.length) {
            return -1;
        }
        long bits = words[w] & (-1L << from);
        while (true) {
            if (bits != 0) {
                return (w << 6) + Long.numberOfTrailingZeros(bits);
            }
            if (++w == words.length) {
                return -1;
            }
            bits = words[w];
        }
    }
}
