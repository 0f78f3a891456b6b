package io.vportd.console.device;

import io.vportd.console.control.PortConfig;
import io.vportd.console.portlog.FileLogTarget;
import io.vportd.console.portlog.JournalLogTarget;
import io.vportd.console.portlog.LogFollower;
import io.vportd.console.portlog.LogSpec;
import io.vportd.console.portlog.LogTarget;
import io.vportd.console.portlog.LogWriter;
import io.vportd.console.portlog.ReplayRing;
import io.vportd.vring.Chain;
import java.io.IOException;
import java.nio.file.Path;

/**
 * A copy of a port's guest output for its log ({@code log=}), its replay ring ({@code replay=})
 * and its {@code ctl log --follow} clients, taken on the data-plane thread and handed on without
 * waiting: the log writer and each follower have a bounded buffer of their own, and what does
 * not fit there is dropped and counted, never waited for.
 *
 * <p>Which bytes are copied: on a generic port, exactly the bytes the host endpoint accepted, as
 * it accepts them (a chain taken in several writes is copied piece by piece, each byte once,
 * also across a ring restart); on a console and on a {@code null} endpoint, every byte the guest
 * wrote, when its buffer is completed (console output the host cannot take, even what overflows
 * the backlog, is in the log). Confined to the data-plane thread.
 */
final class PortTap {

    /** Followers one port serves at a time. */
    static final int MAX_FOLLOWERS = 8;

    private final PortCounters counters;
    final LogWriter writer;
    final ReplayRing replay;
    private final LogFollower[] followers = new LogFollower[MAX_FOLLOWERS];
    private int followerCount;
    private final byte[] scratch = new byte[4096];

    PortTap(PortCounters counters, LogWriter writer, int replayBytes) {
        this.counters = counters;
        this.writer = writer;
        this.replay = replayBytes > 0 ? new ReplayRing(replayBytes) : null;
    }

    /**
     * Opens what the port's {@link LogSpec} asks for (the log file or the journal socket) on the
     * calling thread, the one adding the port: an unwritable path or an absent journal refuses the
     * port before anything of it runs. The writer thread starts with {@link #start()}.
     *
     * @return null when the port needs no tap
     */
    static LogWriter openWriter(PortConfig c, String device, Path journalSocket) throws IOException {
        LogSpec s = c.log();
        if (!s.logs()) {
            return null;
        }
        LogTarget target = s.journal() ? JournalLogTarget.open(journalSocket, device, c.id(), c.name())
                : FileLogTarget.open(s);
        return new LogWriter(target, PortRuntime.labelOf(c), LogWriter.DEFAULT_CAPACITY);
    }

    /** Copies {@code n} bytes of {@code c} starting at chain offset {@code from}. */
    void fromChain(Chain c, long from, long n) {
        for (long off = from, end = from + n; off < end; ) {
            int got = c.copyOut(off, scratch, 0, (int) Math.min(scratch.length, end - off));
            if (got <= 0) {
                return;
            }
            bytes(scratch, 0, got);
            off += got;
        }
    }

    /** Guest output {@code b[off, off+len)}: to the log writer, the replay ring and the followers. */
    void bytes(byte[] b, int off, int len) {
        if (writer != null) {
            int dropped = writer.offer(b, off, len, System.currentTimeMillis());
            if (dropped > 0) {
                counters.add(PortCounters.LOG_DROPPED_BYTES, dropped);
            }
        }
        if (replay != null) {
            replay.append(b, off, len);
        }
        for (int i = 0; i < followerCount; ) {
            if (followers[i].offer(b, off, len)) {
                i++;
            } else {
                if (!followers[i].cancelled()) {
                    counters.add(PortCounters.LOG_FOLLOWERS_DROPPED, 1); // too slow: dropped
                }
                removeAt(i);
            }
        }
    }

    /** Registers a follower; false when the port already has {@link #MAX_FOLLOWERS}. */
    boolean follow(LogFollower f) {
        for (int i = 0; i < followerCount; ) { // forget followers whose clients left
            if (followers[i].cancelled()) {
                removeAt(i);
            } else {
                i++;
            }
        }
        if (followerCount == MAX_FOLLOWERS) {
            return false;
        }
        followers[followerCount++] = f;
        return true;
    }

    private void removeAt(int i) {
        followers[i] = followers[--followerCount];
        followers[followerCount] = null;
    }

    /** The replay ring's contents (empty without one). */
    byte[] snapshot() {
        return replay == null ? new byte[0] : replay.snapshot();
    }

    void start() {
        if (writer != null) {
            writer.start();
        }
    }

    /** The port is gone: the writer finishes what it holds and closes its file; followers end. */
    void close() {
        if (writer != null) {
            writer.close();
        }
        for (int i = 0; i < followerCount; i++) {
            followers[i].cancel();
        }
        followerCount = 0;
    }
}
