package io.vportd.vhost;

import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.EventFd;
import io.vportd.sys.MemFd;
import io.vportd.vhost.testing.RecordingBackend;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Drives a {@link Session} directly (no socket): messages in, replies collected. */
final class SessionHarness implements AutoCloseable {

    static final long RAM = 1 << 20;
    static final long UBASE = 0x7f00_0000_0000L;

    final RecordingBackend backend;
    final List<byte[]> replies = new ArrayList<>();
    final Session session;

    SessionHarness(RecordingBackend backend) {
        this.backend = backend;
        this.session = new Session(backend, replies::add);
    }

    static Fd memfd(long size) throws NativeException {
        Fd fd = MemFd.create("harness");
        try {
            MemFd.truncate(fd.fd(), size);
        } catch (NativeException e) {
            fd.closeQuietly();
            throw e;
        }
        return fd;
    }

    static Fd[] eventfds(int n) throws NativeException {
        Fd[] fds = new Fd[n];
        for (int i = 0; i < n; i++) {
            fds[i] = EventFd.create(0, 0);
        }
        return fds;
    }

    void send(int request, int flags, byte[] payload, Fd... fds) throws IOException {
        session.handle(new Session.Message(new Codec.Header(request, flags, payload.length), payload, fds));
    }

    void send(Request r, byte[] payload, Fd... fds) throws IOException {
        send(r.code, Codec.VERSION | Codec.FLAG_NEED_REPLY, payload, fds);
    }

    /** Negotiation as QEMU does it, plus SET_FEATURES and one 1 MiB region at gpa 0. */
    SessionHarness negotiated() throws IOException {
        send(Request.GET_FEATURES.code, Codec.VERSION, new byte[0]);
        send(Request.GET_PROTOCOL_FEATURES.code, Codec.VERSION, new byte[0]);
        send(Request.SET_PROTOCOL_FEATURES.code, Codec.VERSION, Codec.u64(Session.PROTOCOL_FEATURES_OFFERED));
        send(Request.SET_OWNER, new byte[0]);
        send(Request.SET_FEATURES, Codec.u64(backend.deviceFeatures() | 1L << Codec.F_PROTOCOL_FEATURES));
        send(Request.ADD_MEM_REG, Codec.singleRegion(new Codec.MemRegion(0, RAM, UBASE, 0)), memfd(RAM));
        return this;
    }

    long lastAck() {
        byte[] r = replies.get(replies.size() - 1);
        return Codec.u64(java.util.Arrays.copyOfRange(r, Codec.HEADER_SIZE, r.length));
    }

    @Override
    public void close() throws IOException {
        session.close();
    }
}
