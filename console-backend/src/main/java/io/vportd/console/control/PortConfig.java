package io.vportd.console.control;

import io.vportd.console.endpoint.EndpointSpec;
import io.vportd.console.portlog.LogSpec;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Static description of one port.
 *
 * @param id          port id, 0..0x7FFF (the device further limits it to below max_nr_ports)
 * @param name        the name announced with PORT_NAME (guest: /dev/virtio-ports/NAME), or null
 * @param console     true to announce the port with CONSOLE_PORT (the guest makes it an hvc tty)
 * @param cols        initial columns, 0 = unknown (then no RESIZE is sent until a size arrives)
 * @param rows        initial rows, 0 = unknown
 * @param resizeOrder field order of RESIZE for this port (see {@link ResizeOrder})
 * @param endpoint    where the host side of the port lives
 * @param log         what is recorded of the guest output besides the endpoint (log file or
 *                    journal, replay ring); null means {@link LogSpec#defaults(boolean)}
 */
public record PortConfig(int id, String name, boolean console, int cols, int rows,
                         ResizeOrder resizeOrder, EndpointSpec endpoint, LogSpec log) {

    /** A port with the default log settings (consoles keep a replay ring, nothing is logged). */
    public PortConfig(int id, String name, boolean console, int cols, int rows, ResizeOrder resizeOrder,
                      EndpointSpec endpoint) {
        this(id, name, console, cols, rows, resizeOrder, endpoint, null);
    }

    /**
     * The RESIZE field order used unless a port says otherwise: the virtio specification's
     * {@link ResizeOrder#COLS_ROWS}, which current stable kernels such as Debian trixie's 6.12
     * read (checked by a real-guest test). Kernels from before the 6.15 change, and those carrying
     * its 2025 revert, read rows first and need {@link ResizeOrder#ROWS_COLS}.
     */
    public static final ResizeOrder DEFAULT_RESIZE_ORDER = ResizeOrder.COLS_ROWS;

    /** Highest port id the protocol allows (Linux refuses max_nr_ports above 0x8000). */
    public static final int MAX_ID = 0x7FFF;

    public PortConfig {
        if (id < 0 || id > MAX_ID) {
            throw new IllegalArgumentException("port id " + id + " is outside 0.." + MAX_ID);
        }
        if (name != null) {
            String problem = nameProblem(name);
            if (problem != null) {
                throw new IllegalArgumentException("port " + id + ": " + problem);
            }
        }
        if (cols < 0 || cols > 0xFFFF || rows < 0 || rows > 0xFFFF) {
            throw new IllegalArgumentException("port " + id + ": cols/rows must be 0..65535, got " + cols + "x" + rows);
        }
        resizeOrder = resizeOrder == null ? DEFAULT_RESIZE_ORDER : resizeOrder;
        Objects.requireNonNull(endpoint, "endpoint");
        log = log == null ? LogSpec.defaults(console) : log;
    }

    /** A plain generic port: no name, not a console, default resize order. */
    public static PortConfig generic(int id, EndpointSpec endpoint) {
        return new PortConfig(id, null, false, 0, 0, DEFAULT_RESIZE_ORDER, endpoint);
    }

    /** True when both cols and rows are known (non-zero). */
    public boolean sizeKnown() {
        return cols > 0 && rows > 0;
    }

    /** The name as UTF-8 bytes (empty when unnamed). */
    public byte[] nameUtf8() {
        return name == null ? new byte[0] : name.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Checks a port name: non-empty, at most 255 bytes of UTF-8, only printable characters,
     * no whitespace, no control or format characters, no '/', not "." or "..".
     *
     * @return null when the name is acceptable, otherwise what is wrong with it
     */
    public static String nameProblem(String name) {
        if (name == null || name.isEmpty()) {
            return "name must not be empty";
        }
        if (name.equals(".") || name.equals("..")) {
            return "name must not be '" + name + "'";
        }
        for (int i = 0; i < name.length(); ) {
            int cp = name.codePointAt(i);
            if (Character.isSurrogate((char) cp) && Character.charCount(cp) == 1) {
                return "name contains an unpaired surrogate at index " + i;
            }
            if (cp == '/') {
                return "name must not contain '/'";
            }
            if (Character.isWhitespace(cp) || Character.isSpaceChar(cp)) {
                return "name must not contain whitespace (at index " + i + ")";
            }
            int type = Character.getType(cp);
            if (Character.isISOControl(cp) || type == Character.CONTROL || type == Character.FORMAT
                    || type == Character.UNASSIGNED || type == Character.PRIVATE_USE
                    || type == Character.SURROGATE) {
                return String.format("name contains a non-printable character U+%04X at index %d", cp, i);
            }
            i += Character.charCount(cp);
        }
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > ControlMessage.MAX_NAME_BYTES) {
            return "name is " + bytes + " bytes of UTF-8, at most " + ControlMessage.MAX_NAME_BYTES + " are allowed";
        }
        return null;
    }
}
