package io.vportd.console.device;

/**
 * The 12-byte virtio-console configuration space: le16 cols, le16 rows, le32 max_nr_ports,
 * le32 emerg_wr. Reads return the current values; a write that touches emerg_wr carries one
 * character for the console (the low byte). Writes to other fields are ignored, as the
 * specification makes them read-only.
 */
public final class ConfigSpace {

    public static final int SIZE = 12;
    public static final int OFFSET_COLS = 0;
    public static final int OFFSET_ROWS = 2;
    public static final int OFFSET_MAX_PORTS = 4;
    public static final int OFFSET_EMERG_WR = 8;

    /** Returned by {@link #emergencyCharacter} when the write does not carry one. */
    public static final int NO_CHARACTER = -1;

    private final int maxPorts;
    private volatile int cols;
    private volatile int rows;

    public ConfigSpace(int maxPorts) {
        this.maxPorts = maxPorts;
    }

    public void size(int cols, int rows) {
        this.cols = cols & 0xffff;
        this.rows = rows & 0xffff;
    }

    /** Copies config bytes [offset, offset+dst.length) into dst; the caller checked the range. */
    public void read(int offset, byte[] dst) {
        byte[] all = new byte[SIZE];
        putLe(all, OFFSET_COLS, cols, 2);
        putLe(all, OFFSET_ROWS, rows, 2);
        putLe(all, OFFSET_MAX_PORTS, maxPorts, 4);
        // emerg_wr reads as zero.
        System.arraycopy(all, offset, dst, 0, dst.length);
    }

    /**
     * The emergency character carried by a config write at {@code offset}, or
     * {@link #NO_CHARACTER} when the write does not include emerg_wr's low byte.
     */
    public static int emergencyCharacter(int offset, byte[] src) {
        int at = OFFSET_EMERG_WR - offset;
        if (at < 0 || at >= src.length) {
            return NO_CHARACTER;
        }
        return src[at] & 0xff;
    }

    private static void putLe(byte[] b, int off, int v, int n) {
        for (int i = 0; i < n; i++) {
            b[off + i] = (byte) (v >>> (8 * i));
        }
    }
}
