package io.vportd.console.portlog;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * A port's log file with size rotation: output is appended to PATH until it holds
 * {@code maxBytes}, then PATH.(k) becomes PATH.(k+1) for k = keep-1 .. 1, PATH becomes PATH.1
 * (each a rename, so every name always points at a complete file) and a new PATH is started;
 * PATH.keep, the oldest, is replaced. Files are created 0600 (an existing PATH is set to 0600).
 * A file is filled to exactly {@code maxBytes}, so the files read oldest first, PATH.keep ..
 * PATH.1 then PATH, are the stream as written. With timestamps, each line starts with an RFC 3339
 * UTC time and a space ({@link Rfc3339}); a line that arrives in pieces is stamped when its first
 * piece arrived. Runs on the port's {@link LogWriter} thread.
 */
public final class FileLogTarget implements LogTarget {

    private static final Set<PosixFilePermission> OWNER_RW = PosixFilePermissions.fromString("rw-------");
    /** Why bytes are missing, in a drop marker: the writer fell behind, or the file could not take them. */
    public static final String DROP_REASON = "the log fell behind or could not be written";

    private final Path path;
    private final long maxBytes;
    private final int keep;
    private final boolean timestamps;
    private final Rfc3339 clock = new Rfc3339();
    private final ByteBuffer out = ByteBuffer.allocate(64 * 1024);
    private FileChannel file;
    private long size;
    private boolean lineStart = true;
    /** Rotations so far: a failed write can be undone only within one file. */
    private long rotations;

    private FileLogTarget(Path path, long maxBytes, int keep, boolean timestamps) {
        this.path = path;
        this.maxBytes = maxBytes;
        this.keep = keep;
        this.timestamps = timestamps;
    }

    /**
     * Opens (creates, 0600) the log at {@code spec.path()} for appending: on the thread that adds
     * the port, so a path that cannot be written is refused with the port, before anything runs.
     */
    public static FileLogTarget open(LogSpec spec) throws IOException {
        FileLogTarget t = new FileLogTarget(spec.path(), spec.maxBytes(), spec.keep(), spec.timestamps());
        t.openFile();
        return t;
    }

    private void openFile() throws IOException {
        try {
            file = FileChannel.open(path, Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND), PosixFilePermissions.asFileAttribute(OWNER_RW));
        } catch (NoSuchFileException e) {
            throw new IOException("log=" + path + ": the directory does not exist", e);
        } catch (AccessDeniedException e) {
            throw new IOException("log=" + path + ": permission denied", e);
        } catch (IOException e) {
            throw new IOException("log=" + path + ": cannot open: " + e.getMessage(), e);
        }
        try {
            Files.setPosixFilePermissions(path, OWNER_RW);
            size = file.size();
        } catch (IOException e) {
            file.close();
            throw new IOException("log=" + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Writes one record of guest output. All or nothing: when the file cannot take it (a full
     * disk), the file is cut back to where it was before the record, so the caller counts exactly
     * the record as lost and its marker says so (unless the failing record had crossed a
     * rotation: the part in the rotated file stays, and is counted as lost too).
     */
    @Override
    public void write(byte[] b, int off, int len, long epochMillis) throws IOException {
        long sizeBefore = size;
        long rotationsBefore = rotations;
        boolean lineBefore = lineStart;
        try {
            append(b, off, len, epochMillis);
        } catch (IOException | RuntimeException e) {
            undo(sizeBefore, rotationsBefore, lineBefore);
            throw e;
        }
    }

    /** Cuts the current file back to {@code sizeBefore} after a failed record (see {@link #write}). */
    private void undo(long sizeBefore, long rotationsBefore, boolean lineBefore) {
        out.clear();
        if (rotations != rotationsBefore || file == null || !file.isOpen()) {
            lineStart = true;
            return;
        }
        try {
            file.truncate(sizeBefore);
            size = sizeBefore;
            lineStart = lineBefore;
        } catch (IOException e) {
            lineStart = true; // what is in the file is unknown: start the next record on a new line
        }
    }

    private void append(byte[] b, int off, int len, long epochMillis) throws IOException {
        int end = off + len;
        if (!timestamps && len > 0) {
            put(b, off, len);
            lineStart = b[end - 1] == '\n'; // a drop marker starts on a line of its own
        }
        for (int i = off; timestamps && i < end; ) {
            if (lineStart) {
                put(clock.stamp(epochMillis));
                lineStart = false;
            }
            int nl = i;
            while (nl < end && b[nl] != '\n') {
                nl++;
            }
            int stop = nl < end ? nl + 1 : end;
            put(b, i, stop - i);
            lineStart = nl < end;
            i = stop;
        }
        flush();
    }

    @Override
    public void dropped(long bytes, long epochMillis) throws IOException {
        long sizeBefore = size;
        long rotationsBefore = rotations;
        boolean lineBefore = lineStart;
        try {
            marker(bytes, epochMillis);
        } catch (IOException | RuntimeException e) {
            undo(sizeBefore, rotationsBefore, lineBefore); // no half marker: it is written whole later
            throw e;
        }
    }

    private void marker(long bytes, long epochMillis) throws IOException {
        if (!lineStart) {
            put(new byte[] {'\n'});
        }
        if (timestamps) {
            put(clock.stamp(epochMillis));
        }
        put(("[vportd: " + bytes + " bytes of guest output dropped: " + DROP_REASON + "]\n")
                .getBytes(StandardCharsets.UTF_8));
        lineStart = true;
        flush();
    }

    private void put(byte[] b) throws IOException {
        put(b, 0, b.length);
    }

    private void put(byte[] b, int off, int len) throws IOException {
        while (len > 0) {
            int n = Math.min(len, out.remaining());
            out.put(b, off, n);
            off += n;
            len -= n;
            if (!out.hasRemaining()) {
                flush();
            }
        }
    }

    /** Writes the buffer to the file, rotating whenever the file reaches its size. */
    private void flush() throws IOException {
        out.flip();
        try {
            while (out.hasRemaining()) {
                if (size >= maxBytes) {
                    rotate();
                }
                int room = (int) Math.min(out.remaining(), maxBytes - size);
                int limit = out.limit();
                out.limit(out.position() + room);
                while (out.hasRemaining()) {
                    size += file.write(out);
                }
                out.limit(limit);
            }
        } finally {
            out.clear();
        }
    }

    private void rotate() throws IOException {
        rotations++;
        file.close();
        for (int k = keep - 1; k >= 1; k--) {
            Path from = rotated(k);
            if (Files.exists(from)) {
                Files.move(from, rotated(k + 1), StandardCopyOption.ATOMIC_MOVE);
            }
        }
        Files.move(path, rotated(1), StandardCopyOption.ATOMIC_MOVE);
        openFile();
    }

    /** PATH.k */
    public Path rotated(int k) {
        return path.resolveSibling(path.getFileName() + "." + k);
    }

    @Override
    public String describe() {
        return path.toString();
    }

    @Override
    public void close() throws IOException {
        file.close();
    }
}
