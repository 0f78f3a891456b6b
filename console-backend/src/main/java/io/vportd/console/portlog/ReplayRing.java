package io.vportd.console.portlog;

/**
 * The last {@code capacity} bytes of a port's guest output, for host clients that connect late
 * and for {@code vportd ctl log}. Confined to the data-plane thread, which both appends guest
 * output and hands the contents to a new client, so a client's replay and the live output after
 * it meet at one place in the stream: no gap, no byte twice.
 */
public final class ReplayRing {

    private final byte[] ring;
    private long total; // bytes ever appended

    public ReplayRing(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        this.ring = new byte[capacity];
    }

    public int capacity() {
        return ring.length;
    }

    /** Bytes ever appended (the stream position of the byte after the last one kept). */
    public long total() {
        return total;
    }

    /** Bytes held now: min(total, capacity). */
    public int size() {
        return (int) Math.min(total, ring.length);
    }

    public void append(byte[] b, int off, int len) {
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
        int cap = ring.length;
        int start = (int) ((total - n) % cap);
        int first = Math.min(n, cap - start);
        System.arraycopy(ring, start, out, 0, first);
        System.arraycopy(ring, 0, out, first, n - first);
        return out;
    }
}
