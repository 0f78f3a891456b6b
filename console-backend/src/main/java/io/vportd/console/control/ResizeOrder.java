package io.vportd.console.control;

/**
 * Order of the two le16 fields that follow a RESIZE control message.
 *
 * <p>The virtio specification puts columns first. The Linux guest driver read rows first for
 * many years, switched to the specification's order in 6.15, and that switch was reverted in
 * 2025; stable kernels picked up the switch too (Debian trixie's 6.12.117 reads columns first,
 * as our real-guest test shows). Because guests disagree, the order is a per-port setting;
 * {@link PortConfig#DEFAULT_RESIZE_ORDER} is the specification's {@link #COLS_ROWS}.
 */
public enum ResizeOrder {
    /** cols, then rows: the order written in the virtio specification. */
    COLS_ROWS("cols-rows"),
    /** rows, then cols: what older Linux kernels, and those carrying the 2025 revert, read. */
    ROWS_COLS("rows-cols");

    private final String specName;

    ResizeOrder(String specName) {
        this.specName = specName;
    }

    /** The spelling used on the command line ({@code cols-rows} or {@code rows-cols}). */
    public String specName() {
        return specName;
    }

    /** Parses the command-line spelling; returns null when the text is neither spelling. */
    public static ResizeOrder fromSpecName(String text) {
        for (ResizeOrder o : values()) {
            if (o.specName.equals(text)) {
                return o;
            }
        }
        return null;
    }
}
