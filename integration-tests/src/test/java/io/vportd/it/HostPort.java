package io.vportd.it;

import io.vportd.testsupport.Await;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;
import java.util.concurrent.TimeUnit;

/**
 * The host end of one port: a Unix stream socket (JDK NIO) connected to whatever serves the
 * port (QEMU's chardev, or vportd). Every operation takes a time limit and fails with an
 * {@link AssertionError} naming the port when it runs out. Reading and writing may run on two
 * threads at once.
 */
public final class HostPort implements AutoCloseable {

    private static final int CHUNK = 64 * 1024;

    private final String label;
    private final SocketChannel channel;
    private final Selector readSelector;
    private final Selector writeSelector;
    private volatile BooleanSupplier abortWhen = () -> false;
    private volatile String abortReason = "";

    private HostPort(String label, SocketChannel channel) throws IOException {
        this.label = label;
        this.channel = channel;
        channel.configureBlocking(false);
        this.readSelector = Selector.open();
        this.writeSelector = Selector.open();
        channel.register(readSelector, SelectionKey.OP_READ);
        channel.register(writeSelector, SelectionKey.OP_WRITE);
    }

    /** Connects to {@code socket}, retrying while it does not exist or refuses, until {@code within} runs out. */
    public static HostPort connect(Path socket, Duration within) {
        String label = socket.getFileName().toString();
        IOException[] last = new IOException[1];
        SocketChannel ch = Await.value("a listener on " + socket, within, () -> {
            SocketChannel c = null;
            try {
                c = SocketChannel.open(StandardProtocolFamily.UNIX);
                c.connect(UnixDomainSocketAddress.of(socket));
                return Optional.of(c);
            } catch (IOException e) {
                last[0] = e;
                closeQuietly(c);
                return Optional.empty();
            }
        });
        try {
            return new HostPort(label, ch);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new UncheckedIOException("cannot set up " + socket, e);
        }
    }

    /**
     * Makes every wait on this port give up early (with an {@link AssertionError} saying
     * {@code reason}) once {@code condition} holds, e.g. when the guest has already ended.
     */
    public HostPort abortWhen(BooleanSupplier condition, String reason) {
        this.abortWhen = condition;
        this.abortReason = reason;
        return this;
    }

    public String label() {
        return label;
    }

    public void write(String text, Duration within) {
        write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)), within);
    }

    public void write(byte[] data, Duration within) {
        write(ByteBuffer.wrap(data), within);
    }

    /** Writes all of {@code data} (the guest may apply back-pressure; that is waited out). */
    public void write(ByteBuffer data, Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        try {
            while (data.hasRemaining()) {
                if (channel.write(data) == 0) {
                    selectOrFail(writeSelector, deadline, within, "writing " + data.remaining() + " more bytes");
                }
            }
        } catch (IOException e) {
            throw new AssertionError(label + ": write failed: " + e, e);
        }
    }

    /**
     * Writes {@code count} pseudo-random bytes (from {@code seed}) and returns their SHA-256 in hex.
     */
    public String writeRandom(long count, long seed, Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        SplittableRandom rnd = new SplittableRandom(seed);
        MessageDigest md = Digests.sha256();
        byte[] chunk = new byte[CHUNK];
        long left = count;
        while (left > 0) {
            int n = (int) Math.min(CHUNK, left);
            rnd.nextBytes(chunk);
            md.update(chunk, 0, n);
            write(ByteBuffer.wrap(chunk, 0, n), Duration.ofNanos(Math.max(1, Await.nanosLeft(deadline))));
            left -= n;
        }
        return Digests.hex(md.digest());
    }

    /** Reads exactly {@code count} bytes. */
    public byte[] readExactly(int count, Duration within) {
        ByteBuffer buf = ByteBuffer.allocate(count);
        long deadline = System.nanoTime() + within.toNanos();
        while (buf.hasRemaining()) {
            int n = readSome(buf, deadline, within, count);
            if (n < 0) {
                throw new AssertionError(label + ": EOF after " + buf.position() + " of " + count + " bytes");
            }
        }
        return buf.array();
    }

    public String readString(int byteCount, Duration within) {
        return new String(readExactly(byteCount, within), StandardCharsets.UTF_8);
    }

    /** Reads exactly {@code count} bytes and returns their SHA-256 in hex. */
    public String readSha256(long count, Duration within) {
        return readSha256Slowly(count, CHUNK, Duration.ZERO, within);
    }

    /**
     * A slow reader: reads exactly {@code count} bytes at most {@code chunk} at a time, pausing
     * {@code pause} between reads (so the sender meets back-pressure), and returns their SHA-256.
     */
    public String readSha256Slowly(long count, int chunk, Duration pause, Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        MessageDigest md = Digests.sha256();
        ByteBuffer buf = ByteBuffer.allocate(chunk);
        long got = 0;
        while (got < count) {
            buf.clear();
            buf.limit((int) Math.min(chunk, count - got));
            int n = readSome(buf, deadline, within, count);
            if (n < 0) {
                throw new AssertionError(label + ": EOF after " + got + " of " + count + " bytes");
            }
            buf.flip();
            md.update(buf);
            got += n;
            if (pause.isZero()) {
                continue;
            }
            try {
                Thread.sleep(pause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
        }
        return Digests.hex(md.digest());
    }

    /** Reads until EOF and returns how many bytes came before it. */
    public long readUntilEof(Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        ByteBuffer buf = ByteBuffer.allocate(CHUNK);
        long total = 0;
        while (true) {
            buf.clear();
            int n = readSome(buf, deadline, within, -1);
            if (n < 0) {
                return total;
            }
            total += n;
        }
    }

    /** True when nothing at all can be read right now (no data, no EOF). */
    public boolean nothingToRead() {
        try {
            return readSelector.selectNow() == 0;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            readSelector.selectedKeys().clear();
        }
    }

    private int readSome(ByteBuffer buf, long deadline, Duration within, long wanted) {
        try {
            while (true) {
                int n = channel.read(buf);
                if (n != 0) {
                    return n;
                }
                selectOrFail(readSelector, deadline, within,
                        "reading (" + (wanted < 0 ? "until EOF" : "want " + wanted + " bytes") + ")");
            }
        } catch (IOException e) {
            throw new AssertionError(label + ": read failed: " + e, e);
        }
    }

    private void selectOrFail(Selector sel, long deadline, Duration within, String doing) throws IOException {
        long left = Await.nanosLeft(deadline);
        if (left == 0) {
            throw new AssertionError(label + ": timed out after " + within.toMillis() + " ms " + doing);
        }
        // wake up now and then to notice an abort condition (e.g. the guest died)
        sel.select(Math.clamp(TimeUnit.NANOSECONDS.toMillis(left), 1, 200));
        sel.selectedKeys().clear();
        if (abortWhen.getAsBoolean()) {
            throw new AssertionError(label + ": gave up " + doing + ": " + abortReason);
        }
    }

    /** Half-closes: the peer reads EOF, this side can still read. */
    public void shutdownOutput() {
        try {
            channel.shutdownOutput();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        closeQuietly(readSelector);
        closeQuietly(writeSelector);
        closeQuietly(channel);
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception ignored) {
                // closing: nothing useful to do
            }
        }
    }
}
