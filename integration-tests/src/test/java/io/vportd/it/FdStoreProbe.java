package io.vportd.it;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.ListenFds;
import io.vportd.sys.MemFd;
import io.vportd.sys.NativeException;
import io.vportd.sys.SdNotify;
import io.vportd.sys.Sockets;
import io.vportd.sys.UnixSockets;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A tiny {@code Type=notify} service for {@link SystemdFdStoreIT}, run by real systemd inside
 * the rig's tree with vportd's own {@link SdNotify} and {@link ListenFds}: what vportd will do
 * with its vhost-user connection, in miniature.
 *
 * <p>First start: makes a memfd holding a generation counter ({@code probe.state}, stored with
 * FDPOLL=0) and a listening socket {@code DIR/probe.sock} ({@code probe.listen}). Every
 * connection it accepts is stored too ({@code probe.conn}, polled: a client that goes away
 * leaves the store) and greeted with {@code gen=N hello}. After a crash systemd starts it again
 * with those descriptors: it bumps the generation in the same memfd, keeps serving the same
 * listener, reports what it got in {@code DIR/probe-N.txt}, writes {@code gen=N resumed conns=K}
 * to each connection it got back (whose client never saw an EOF), then says {@code READY=1}. A client may send {@code remove NAME}: the probe sends
 * {@code FDSTOREREMOVE=1} for that name and answers {@code removed NAME}. A memfd stored
 * under {@code probe.scratch} (FDPOLL=0) exists to be removed that way.
 * Usage: {@code FdStoreProbe DIR}.
 */
public final class FdStoreProbe {

    private FdStoreProbe() {
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        SdNotify notify = SdNotify.fromEnvironment();
        String names = String.valueOf(System.getenv(ListenFds.ENV_FDNAMES));
        List<Fd> state;
        List<Fd> listeners;
        List<Fd> conns;
        List<Fd> scratch;
        String unexpected;
        try (ListenFds passed = ListenFds.fromEnvironment()) {
            state = passed.take("probe.state");
            listeners = passed.take("probe.listen");
            conns = passed.take("probe.conn");
            scratch = passed.take("probe.scratch");
            unexpected = passed.names().toString();
        }
        if (state.size() > 1 || listeners.size() > 1) {
            throw new IllegalStateException("more than one state or listener came back: " + names);
        }
        Arena arena = Arena.ofShared(); // lives as long as the process
        Fd stateFd;
        if (state.isEmpty()) {
            stateFd = MemFd.create("probe.state");
            MemFd.truncate(stateFd.fd(), 4096);
        } else {
            stateFd = state.getFirst();
        }
        MemorySegment record = MemFd.mapShared(stateFd.fd(), 0, 4096, arena);
        long generation = record.get(ValueLayout.JAVA_LONG, 0) + 1;
        record.set(ValueLayout.JAVA_LONG, 0, generation);
        Fd listener = listeners.isEmpty() ? UnixSockets.listen(dir.resolve("probe.sock"), 16) : listeners.getFirst();
        if (state.isEmpty()) {
            notify.storeFds("probe.state", false, stateFd.fd());
        }
        if (listeners.isEmpty()) {
            notify.storeFds("probe.listen", true, listener.fd());
        }
        if (state.isEmpty()) {
            try (Fd s = MemFd.create("probe.scratch")) {
                notify.storeFds("probe.scratch", false, s.fd());
            }
        }
        Files.writeString(dir.resolve("probe-" + generation + ".txt"),
                "generation=" + generation + "\n"
                        + "pid=" + ProcessHandle.current().pid() + "\n"
                        + "LISTEN_FDNAMES=" + names + "\n"
                        + "restored=probe.state:" + state.size() + ",probe.listen:" + listeners.size()
                        + ",probe.conn:" + conns.size() + ",probe.scratch:" + scratch.size() + "\n"
                        + "state_inode=" + Io.fileId(stateFd.fd()).inode() + "\n"
                        + "listener_inode=" + Io.fileId(listener.fd()).inode() + "\n"
                        + "unexpected=" + unexpected + "\n");
        // after the report, so that a client reading this line finds the report written
        for (Fd c : conns) {
            writeLine(c, "gen=" + generation + " resumed conns=" + conns.size());
        }
        notify.ready("generation " + generation);

        for (Fd c : conns) {
            serve(notify, c);
        }
        while (true) {
            int c = Sockets.accept(listener.fd(), false);
            if (c < 0) {
                if (c == -Errno.ECONNABORTED) {
                    continue;
                }
                throw new NativeException("accept", -c);
            }
            Fd conn = Fd.adopt(c);
            notify.storeFds("probe.conn", true, conn.fd());
            writeLine(conn, "gen=" + generation + " hello");
            serve(notify, conn);
        }
    }

    /** A thread that answers {@code remove NAME} lines on {@code conn} until EOF, then closes it. */
    private static void serve(SdNotify notify, Fd conn) {
        Thread.ofPlatform().daemon().start(() -> {
            try (Arena a = Arena.ofConfined(); conn) {
                MemorySegment buf = a.allocate(1);
                StringBuilder line = new StringBuilder();
                while (true) {
                    long n = Io.read(conn.fd(), buf.address(), 1);
                    if (n <= 0) {
                        return;
                    }
                    char ch = (char) buf.get(ValueLayout.JAVA_BYTE, 0);
                    if (ch != '\n') {
                        line.append(ch);
                        continue;
                    }
                    if (line.toString().startsWith("remove ")) {
                        String name = line.substring("remove ".length());
                        notify.removeFds(name);
                        writeLine(conn, "removed " + name);
                    }
                    line.setLength(0);
                }
            } catch (IOException | RuntimeException e) {
                e.printStackTrace();
            }
        });
    }

    private static void writeLine(Fd fd, String line) throws IOException {
        byte[] bytes = (line + "\n").getBytes(StandardCharsets.US_ASCII);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(bytes.length);
            MemorySegment.copy(bytes, 0, buf, ValueLayout.JAVA_BYTE, 0, bytes.length);
            long n = Io.write(fd.fd(), buf.address(), bytes.length);
            if (n != bytes.length) {
                throw new NativeException("write(" + line + ") = " + n, n < 0 ? (int) -n : Errno.EIO);
            }
        }
    }
}
