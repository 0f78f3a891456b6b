package io.vportd.console.portlog;

/**
 * The last {@code capacity} bytes of a port's guest output, for host clients that connect late
 * and for {@code vportd ctl log}. Confined to the data-plane thread, which both appends guest
 * output and hands the contents to a new client, so a client's replay and the live output after
 * it meet at one place in the stream: no gap, no byte twice.
 *
 * <p>The array grows with the output, by doubling, up to {@code capacity}: a port that has said
 * little holds little (a daemon of many idle devices holds one console ring each). Until it is
 * full size, the bytes sit at their stream positions, as they do in the full ring.
 */
public final class ReplayRing {

    /** The first array, when the first byte comes. */
    static final int FIRST = 4096;
    private static final byte[] NONE = new byte[0];

    private final int capacity;
    private byte[] ring = NONE;
    private long total; // bytes ever appended

    public ReplayRing(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        this.capacity = capacity;
    }

    public int capacity() {
        return capacity;
    }

    /** The bytes of memory the ring holds now (it grows up to {@link #capacity}). */
    int allocated() {
        return ring.length;
    }

    /** Bytes ever appended (the stream position of the byte after the last one kept). */
    public long total() {
        return total;
    }

    /** Bytes held now: min(total, capacity). */
    public int size() {
        return (int) Math.min(total, capacity);
    }

    public void append(byte[] b, int off, int len) {
        if (ring.length < capacity) {
            long needed = total + len;
            if (needed > ring.length) {
                // At most log2(capacity / FIRST) times in a port's life: not per write.
                long grown = Math.max(FIRST, 2L * ring.length);
                while (grown < needed) {
                    grown *= 2;
                }
                ring = java.util.Arrays.copyOf(ring, (int) Math.min(capacity, grown));
            }
            if (ring.length < capacity) { // not full size yet: nothing wraps, bytes go at their positions
                System.arraycopy(b, off, ring, (int) total, len);
                total += len;
                return;
            }
        }
        int cap = ring.length;
        if (len > cap) { // only the last cap bytes stay
            off += len - cap;
            total += len - cap;
            len = cap;
        }
        int at = (int) (total % cap); // the byte at stream position p sits at p % cap
        int first = Math.min(len, cap - at);
        System.arraycopy(b, off, ring, at, first);
        System.arraycopy(b, off + first, ring, 0, len - first);
        total += len;
    }

    /** The bytes held, oldest first. */
    public byte[] snapshot() {
        int n = size();
        byte[] out = new byte[n];
        if (n == 0) {
            return out;
        }
        int cap = ring.length;
        int start = (int) ((total - n) % cap);
        int first = Math.min(n, cap - start);
        System.arraycopy(ring, start, out, 0, first);
        System.arraycopy(ring, 0, out, first, n - first);
        return out;
    }
}
