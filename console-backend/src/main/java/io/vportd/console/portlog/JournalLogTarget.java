package io.vportd.console.portlog;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.NativeException;
import io.vportd.sys.UnixSockets;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * A port's guest output as systemd journal entries, one per line, sent as datagrams over the
 * journal's native socket ({@code /run/systemd/journal/socket}) in its native protocol: fields
 * as {@code KEY=value\n}, or, for a value holding a newline, {@code KEY\n} then the value's
 * length as a little-endian 64-bit number, the value and {@code \n}. Fields: {@code MESSAGE}
 * (the line without its newline), {@code PRIORITY} (6; 4 for a drop notice),
 * {@code SYSLOG_IDENTIFIER=vportd}, {@code VPORTD_DEVICE}, {@code VPORTD_PORT},
 * {@code VPORTD_PORT_NAME} (when the port has a name). A line longer than {@link #MAX_LINE}
 * bytes is sent in pieces; a partial line is sent once it has waited {@link #PARTIAL_WAIT_MS}
 * (a shell prompt has no newline). Large entries through a memfd are not used: entries stay below
 * the socket's datagram size. Runs on the port's {@link LogWriter} thread.
 */
public final class JournalLogTarget implements LogTarget {

    /** Where journald listens for native-protocol datagrams. */
    public static final Path DEFAULT_SOCKET = Path.of("/run/systemd/journal/socket");
    static final int MAX_LINE = 8 * 1024;
    static final long PARTIAL_WAIT_MS = 1000;
    private static final int PRIORITY_INFO = 6;
    private static final int PRIORITY_WARNING = 4;

    private final Path socket;
    private final byte[] fixedFields;
    private final byte[] line = new byte[MAX_LINE];
    private int lineLength;
    private long lineSince;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment datagram;
    private final Fd fd;

    private JournalLogTarget(Path socket, Fd fd, String device, int port, String portName) {
        this.socket = socket;
        this.fd = fd;
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        field(b, "SYSLOG_IDENTIFIER", "vportd");
        field(b, "VPORTD_DEVICE", device);
        field(b, "VPORTD_PORT", Integer.toString(port));
        if (portName != null) {
            field(b, "VPORTD_PORT_NAME", portName);
        }
        this.fixedFields = b.toByteArray();
        this.datagram = arena.allocate(fixedFields.length + MAX_LINE + 256);
    }

    /** One field in the native protocol: {@code KEY=value\n}, or the length-prefixed form when the value holds a newline. */
    static void field(java.io.ByteArrayOutputStream out, String key, String value) {
        byte[] k = key.getBytes(StandardCharsets.US_ASCII);
        byte[] v = value.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(k);
        if (value.indexOf('\n') < 0) {
            out.write('=');
            out.writeBytes(v);
        } else {
            out.write('\n');
            for (int i = 0; i < 8; i++) {
                out.write((int) ((long) v.length >>> (8 * i)) & 0xff);
            }
            out.writeBytes(v);
        }
        out.write('\n');
    }

    /**
     * Connects to the journal socket: on the thread that adds the port, so a missing journal is a
     * clear refusal of the port. {@code device} names the device (its vhost-user socket path).
     */
    public static JournalLogTarget open(Path socket, String device, int port, String portName) throws IOException {
        Fd fd;
        try {
            fd = UnixSockets.connectDatagram(socket);
        } catch (NativeException e) {
            String why = e.errno() == Errno.ENOENT || e.errno() == Errno.ECONNREFUSED
                    ? "the journal socket " + socket + " is absent (is systemd-journald running?)"
                    : "cannot connect to the journal socket " + socket + ": " + e.getMessage();
            throw new IOException("log=journal: " + why, e);
        }
        return new JournalLogTarget(socket, fd, device, port, portName);
    }

    @Override
    public void write(byte[] b, int off, int len, long epochMillis) throws IOException {
        int end = off + len;
        for (int i = off; i < end; i++) {
            byte c = b[i];
            if (c == '\n') {
                sendLine();
                continue;
            }
            if (lineLength == 0) {
                lineSince = epochMillis;
            }
            line[lineLength++] = c;
            if (lineLength == MAX_LINE) {
                sendLine();
            }
        }
    }

    @Override
    public void dropped(long bytes, long epochMillis) throws IOException {
        sendLine();
        byte[] msg = ("vportd: " + bytes + " bytes of guest output dropped: " + FileLogTarget.DROP_REASON)
                .getBytes(StandardCharsets.UTF_8);
        send(msg, msg.length, PRIORITY_WARNING);
    }

    @Override
    public void idle(long epochMillis) throws IOException {
        if (lineLength > 0 && epochMillis - lineSince >= PARTIAL_WAIT_MS) {
            sendLine();
        }
    }

    private void sendLine() throws IOException {
        if (lineLength == 0) {
            return;
        }
        int n = lineLength;
        lineLength = 0;
        send(line, n, PRIORITY_INFO);
    }

    /** One entry: MESSAGE (never holding a newline: lines are split there), PRIORITY, the fixed fields. */
    private void send(byte[] message, int length, int priority) throws IOException {
        long at = putAscii(0, "MESSAGE=");
        MemorySegment.copy(message, 0, datagram, ValueLayout.JAVA_BYTE, at, length);
        at += length;
        at = putAscii(at, "\nPRIORITY=" + priority + "\n");
        MemorySegment.copy(fixedFields, 0, datagram, ValueLayout.JAVA_BYTE, at, fixedFields.length);
        at += fixedFields.length;
        long r = Io.write(fd.fd(), datagram.address(), at);
        if (r < 0) {
            throw new IOException("sending to the journal socket " + socket + ": " + Errno.describe((int) -r));
        }
    }

    private long putAscii(long at, String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(b, 0, datagram, ValueLayout.JAVA_BYTE, at, b.length);
        return at + b.length;
    }

    @Override
    public String describe() {
        return "journal " + socket;
    }

    @Override
    public void close() throws IOException {
        try {
            sendLine();
        } finally {
            fd.closeQuietly();
            arena.close();
        }
    }
}
