package io.vportd.vhost.testing;

import io.vportd.sys.Errno;
import io.vportd.sys.Fd;
import io.vportd.sys.NativeException;
import io.vportd.sys.Epoll;
import io.vportd.sys.EventFd;
import io.vportd.sys.Io;
import io.vportd.sys.MemFd;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.Codec;
import io.vportd.vhost.Request;
import io.vportd.vring.GuestMemory;
import io.vportd.vring.GuestRegion;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Plays QEMU's part of vhost-user over a real socket, for tests: guest RAM in a memfd passed
 * by descriptor, and the message sequence QEMU 11 sends for
 * {@code vhost-user-test-device-pci,virtio-id=3,num_vqs=N,config_size=12}.
 *
 * <p>{@link #connect} performs device initialisation (GET_FEATURES, GET_PROTOCOL_FEATURES,
 * SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_BACKEND_REQ_FD, SET_OWNER,
 * GET_FEATURES, SET_VRING_CALL per queue, GET_CONFIG) and the driver-OK step (SET_FEATURES,
 * ADD_MEM_REG or SET_MEM_TABLE). {@link #startQueue} then sends per queue SET_VRING_NUM,
 * SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ENABLE and, as QEMU's
 * unmask step does, SET_VRING_CALL again on the running ring (so a backend sees stop + restart).
 * Every request without a reply of its own is sent with need_reply and its REPLY_ACK awaited,
 * so when a call returns the backend has processed it.
 *
 * <p>A ring driver builds rings with guest physical addresses in {@link #guestRam()} /
 * {@link #memory()}; the frontend converts ring addresses to its "user" addresses as QEMU does.
 */
public final class TestFrontend implements AutoCloseable {

    /** Frontend "virtual address" of guest physical 0 (what QEMU would have in its own space). */
    public static final long DEFAULT_USER_BASE = 0x7f12_3400_0000L;

    /**
     * @param queueCount   queues the device is created with (num_vqs)
     * @param configSize   config_size; 0 skips GET_CONFIG
     * @param memSize      guest RAM bytes (one region at gpa 0)
     * @param userBase     frontend virtual address of the region
     * @param addMemReg    true: ADD_MEM_REG (what QEMU does with CONFIGURE_MEM_SLOTS); false: SET_MEM_TABLE
     * @param featureMask  the driver acknowledges {@code offered & featureMask} (PROTOCOL_FEATURES is kept)
     */
    public record Options(int queueCount, int configSize, long memSize, long userBase, boolean addMemReg,
                          long featureMask) {
        public static Options defaults(int queueCount, int configSize) {
            return new Options(queueCount, configSize, 16L << 20, DEFAULT_USER_BASE, true, -1L);
        }

        public Options withSetMemTable() {
            return new Options(queueCount, configSize, memSize, userBase, false, featureMask);
        }

        public Options withFeatureMask(long mask) {
            return new Options(queueCount, configSize, memSize, userBase, addMemReg, mask);
        }
    }

    /** A reply as received: header fields and payload. */
    public record Reply(int request, int flags, byte[] payload) {
        public long u64() {
            return Codec.u64(payload);
        }
    }

    private static final int TIMEOUT_MS = 10_000;

    private final Options options;
    private final Fd socket;
    private final Fd memfd;
    private final Arena ramArena = Arena.ofShared();
    private final MemorySegment ram;
    private final GuestMemory memory;
    private final Arena io = Arena.ofShared();
    private final MemorySegment ioBuf;
    private final Fd poller;
    private final MemorySegment events;
    private final Fd[] kicks;
    private final Fd[] calls;
    private Fd backendReqPeer;
    private long offeredFeatures;
    private long protocolFeatures;
    private long ackedFeatures;
    private long queueNum = -1;
    private long maxMemSlots = -1;
    private byte[] initialConfig = new byte[0];

    private TestFrontend(Options options, Fd socket) throws IOException {
        this.options = options;
        this.socket = socket;
        this.memfd = MemFd.create("test-frontend-ram");
        MemFd.truncate(memfd.fd(), options.memSize());
        MemFd.addSeals(memfd.fd(), MemFd.F_SEAL_SHRINK | MemFd.F_SEAL_GROW | MemFd.F_SEAL_SEAL); // as QEMU's seal=on
        this.ram = MemFd.mapShared(memfd.fd(), 0, options.memSize(), ramArena);
        this.memory = GuestMemory.of(List.of(new GuestRegion(0, options.memSize(), options.userBase(), ram)));
        this.ioBuf = io.allocate(Codec.HEADER_SIZE + Codec.MAX_PAYLOAD, 8);
        this.poller = Epoll.create();
        this.events = Epoll.allocateEvents(io, 4);
        this.kicks = new Fd[options.queueCount()];
        this.calls = new Fd[options.queueCount()];
    }

    /** Connects to {@code socketPath} and runs initialisation and driver-OK as QEMU does. */
    public static TestFrontend connect(Path socketPath, Options options) throws IOException {
        Fd s = UnixSockets.connect(socketPath);
        TestFrontend f;
        try {
            f = new TestFrontend(options, s);
        } catch (IOException | RuntimeException e) {
            s.closeQuietly();
            throw e;
        }
        try {
            f.initialise();
            f.driverOk();
            return f;
        } catch (IOException | RuntimeException e) {
            f.close();
            throw e;
        }
    }

    public static TestFrontend connect(Path socketPath, int queueCount, int configSize) throws IOException {
        return connect(socketPath, Options.defaults(queueCount, configSize));
    }

    /** Connects without sending anything (for tests that speak raw messages). */
    public static TestFrontend connectRaw(Path socketPath, Options options) throws IOException {
        Fd s = UnixSockets.connect(socketPath);
        try {
            return new TestFrontend(options, s);
        } catch (IOException | RuntimeException e) {
            s.closeQuietly();
            throw e;
        }
    }

    private void initialise() throws IOException {
        offeredFeatures = call(Request.GET_FEATURES, new byte[0]).u64();
        if ((offeredFeatures & 1L << Codec.F_PROTOCOL_FEATURES) == 0) {
            throw new IOException("backend does not offer VHOST_USER_F_PROTOCOL_FEATURES");
        }
        long offeredProtocol = call(Request.GET_PROTOCOL_FEATURES, new byte[0]).u64();
        long wanted = 1L << Codec.PROTOCOL_F_MQ | 1L << Codec.PROTOCOL_F_REPLY_ACK | 1L << Codec.PROTOCOL_F_BACKEND_REQ
                | 1L << Codec.PROTOCOL_F_CONFIG | 1L << Codec.PROTOCOL_F_RESET_DEVICE
                | 1L << Codec.PROTOCOL_F_CONFIGURE_MEM_SLOTS;
        protocolFeatures = offeredProtocol & wanted;
        send(Request.SET_PROTOCOL_FEATURES.code, Codec.VERSION, Codec.u64(protocolFeatures)); // QEMU: no reply asked
        if (has(Codec.PROTOCOL_F_MQ)) {
            queueNum = call(Request.GET_QUEUE_NUM, new byte[0]).u64();
            if (queueNum < options.queueCount()) {
                throw new IOException("backend supports " + queueNum + " queues, device has " + options.queueCount());
            }
        }
        if (has(Codec.PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
            maxMemSlots = call(Request.GET_MAX_MEM_SLOTS, new byte[0]).u64();
        }
        if (has(Codec.PROTOCOL_F_BACKEND_REQ)) {
            Fd[] pair = UnixSockets.pair();
            backendReqPeer = pair[0];
            try (Fd theirs = pair[1]) {
                requestAck(Request.SET_BACKEND_REQ_FD, new byte[0], theirs.fd());
            }
        }
        requestAck(Request.SET_OWNER, new byte[0]);
        call(Request.GET_FEATURES, new byte[0]);
        for (int i = 0; i < options.queueCount(); i++) {
            setCall(i); // QEMU installs its masked notifier per queue at init
        }
        if (options.configSize() > 0) {
            initialConfig = getConfig(0, options.configSize());
        }
    }

    private void driverOk() throws IOException {
        ackedFeatures = offeredFeatures & (options.featureMask() | 1L << Codec.F_PROTOCOL_FEATURES);
        requestAck(Request.SET_FEATURES, Codec.u64(ackedFeatures));
        Codec.MemRegion region = new Codec.MemRegion(0, options.memSize(), options.userBase(), 0);
        if (options.addMemReg() && has(Codec.PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
            requestAck(Request.ADD_MEM_REG, Codec.singleRegion(region), memfd.fd());
        } else {
            requestAck(Request.SET_MEM_TABLE, Codec.memTable(List.of(region)), memfd.fd());
        }
    }

    private boolean has(int protocolBit) {
        return (protocolFeatures & 1L << protocolBit) != 0;
    }

    // ---- the ring API ----------------------------------------------------------------------

    /** Guest RAM as mapped by the frontend (offset = guest physical address). */
    public MemorySegment guestRam() {
        return ram;
    }

    /** The frontend's own table of guest RAM (gpa 0, user address {@link Options#userBase()}). */
    public GuestMemory memory() {
        return memory;
    }

    /** The frontend virtual address of guest physical {@code gpa}. */
    public long userAddress(long gpa) {
        return options.userBase() + gpa;
    }

    /**
     * Configures and starts queue {@code index}: SET_VRING_NUM, SET_VRING_BASE 0,
     * SET_VRING_ADDR, SET_VRING_KICK (new eventfd), SET_VRING_CALL (new eventfd), SET_VRING_ENABLE 1.
     */
    public void startQueue(int index, long descGpa, long availGpa, long usedGpa, int size) throws IOException {
        startQueue(index, descGpa, availGpa, usedGpa, size, 0);
    }

    public void startQueue(int index, long descGpa, long availGpa, long usedGpa, int size, int base) throws IOException {
        requestAck(Request.SET_VRING_NUM, Codec.vringState(index, size));
        requestAck(Request.SET_VRING_BASE, Codec.vringState(index, base));
        requestAck(Request.SET_VRING_ADDR, Codec.vringAddr(new Codec.VringAddr(index, 0,
                userAddress(descGpa), userAddress(usedGpa), userAddress(availGpa), 0)));
        closeQuietly(kicks[index]);
        kicks[index] = EventFd.create(0, EventFd.EFD_NONBLOCK);
        requestAck(Request.SET_VRING_KICK, Codec.u64(index), kicks[index].fd());
        setCall(index);
        requestAck(Request.SET_VRING_ENABLE, Codec.vringState(index, 1));
        // QEMU's vhost-user-base unmasks every queue after vhost_dev_start, which sends the
        // call fd once more for a ring that is already running.
        requestAck(Request.SET_VRING_CALL, Codec.u64(index), calls[index].fd());
    }

    private void setCall(int index) throws IOException {
        closeQuietly(calls[index]);
        calls[index] = EventFd.create(0, EventFd.EFD_NONBLOCK);
        requestAck(Request.SET_VRING_CALL, Codec.u64(index), calls[index].fd());
    }

    /** GET_VRING_BASE: stops the queue and returns the backend's next available index. */
    public int stopQueue(int index) throws IOException {
        Reply r = call(Request.GET_VRING_BASE, Codec.vringState(index, 0));
        Codec.VringState s = Codec.vringState(r.payload());
        if (s.index() != index) {
            throw new IOException("GET_VRING_BASE reply for queue " + s.index() + ", asked " + index);
        }
        return s.num();
    }

    /** Signals queue {@code index}'s kick eventfd, as the guest's notification would. */
    public void kick(int index) {
        int r = EventFd.signal(kicks[index].fd());
        if (r < 0) {
            throw new IllegalStateException("kick " + index + ": " + Errno.describe(r));
        }
    }

    /** Waits until the backend signalled queue {@code index}'s call eventfd; drains it. */
    public boolean awaitCall(int index, Duration timeout) throws IOException {
        int fd = calls[index].fd();
        if (EventFd.drain(fd) > 0) {
            return true;
        }
        if (!waitReadable(fd, timeout.toMillis())) {
            return false;
        }
        return EventFd.drain(fd) > 0;
    }

    /** The call eventfd of queue {@code index} (what the backend signals), for custom waits. */
    public int callFd(int index) {
        return calls[index].fd();
    }

    /** The kick eventfd of queue {@code index}, or -1 before {@link #startQueue}. */
    public int kickFd(int index) {
        return kicks[index] == null ? -1 : kicks[index].fd();
    }

    /** GET_CONFIG of {@code size} bytes from {@code offset}; an empty array means the backend refused. */
    public byte[] getConfig(int offset, int size) throws IOException {
        Reply r = call(Request.GET_CONFIG, Codec.config(offset, 0, new byte[size]));
        if (r.payload().length == 0) {
            return new byte[0];
        }
        return Codec.config(r.payload()).data();
    }

    /**
     * SET_CONFIG (flags 0, a driver write), acknowledged. Note: QEMU's vhost-user-base forwards
     * every guest config write as SET_CONFIG of the whole config space (offset 0, config_size
     * bytes); {@link #guestConfigWrite} sends exactly that.
     */
    public void setConfig(int offset, byte[] data) throws IOException {
        requestAck(Request.SET_CONFIG, Codec.config(offset, 0, data));
    }

    /** What QEMU sends when the guest writes config bytes: the whole config, offset 0. */
    public void guestConfigWrite(byte[] wholeConfig) throws IOException {
        setConfig(0, wholeConfig);
    }

    /** RESET_DEVICE, acknowledged. */
    public void resetDevice() throws IOException {
        requestAck(Request.RESET_DEVICE, new byte[0]);
    }

    public long offeredFeatures() {
        return offeredFeatures;
    }

    public long ackedFeatures() {
        return ackedFeatures;
    }

    public long protocolFeatures() {
        return protocolFeatures;
    }

    public long queueNum() {
        return queueNum;
    }

    public long maxMemSlots() {
        return maxMemSlots;
    }

    /** The config read during initialisation. */
    public byte[] initialConfig() {
        return initialConfig.clone();
    }

    /** The memfd backing guest RAM (for tests that send their own memory messages). */
    public int memfd() {
        return memfd.fd();
    }

    // ---- raw messages ----------------------------------------------------------------------

    /** Sends one message as given, header flags included, with descriptors. */
    public void send(int request, int flags, byte[] payload, int... fds) throws IOException {
        sendBytes(Codec.message(request, flags, payload), fds);
    }

    /** Sends raw bytes (a whole or broken message) with descriptors. */
    public void sendBytes(byte[] bytes, int... fds) throws IOException {
        MemorySegment.copy(bytes, 0, ioBuf, ValueLayout.JAVA_BYTE, 0, bytes.length);
        long done = 0;
        boolean first = true;
        while (done < bytes.length || first) {
            long r = UnixSockets.sendWithFds(socket.fd(), ioBuf.asSlice(done), bytes.length - done, first ? fds : new int[0]);
            if (r < 0) {
                throw new NativeException("sendmsg(test frontend)", (int) -r);
            }
            done += r;
            first = false;
        }
    }

    /** Sends a request and reads its reply (for requests with a reply of their own). */
    public Reply call(Request r, byte[] payload, int... fds) throws IOException {
        send(r.code, Codec.VERSION, payload, fds);
        Reply reply = receive();
        if (reply.request() != r.code) {
            throw new IOException("reply to " + Request.describe(reply.request()) + ", expected " + r);
        }
        return reply;
    }

    /** Sends a request with need_reply and returns the REPLY_ACK value (0 = success). */
    public long request(Request r, byte[] payload, int... fds) throws IOException {
        send(r.code, Codec.VERSION | Codec.FLAG_NEED_REPLY, payload, fds);
        Reply reply = receive();
        if (reply.request() != r.code || reply.payload().length != 8) {
            throw new IOException("bad ack to " + r + ": " + Request.describe(reply.request()) + ", "
                    + reply.payload().length + " bytes");
        }
        return reply.u64();
    }

    private void requestAck(Request r, byte[] payload, int... fds) throws IOException {
        long v = request(r, payload, fds);
        if (v != 0) {
            throw new IOException(r + " failed: ack " + v);
        }
    }

    /** Reads one reply; IOException on timeout or when the backend closed the connection. */
    public Reply receive() throws IOException {
        readFully(0, Codec.HEADER_SIZE);
        Codec.Header h = Codec.decodeHeader(ioBuf.asSlice(0, Codec.HEADER_SIZE).toArray(ValueLayout.JAVA_BYTE));
        if ((h.flags() & Codec.FLAG_REPLY) == 0 || (h.flags() & Codec.VERSION_MASK) != Codec.VERSION) {
            throw new IOException("bad reply flags 0x" + Integer.toHexString(h.flags()));
        }
        if (h.size() < 0 || h.size() > Codec.MAX_PAYLOAD) {
            throw new IOException("bad reply size " + h.size());
        }
        readFully(Codec.HEADER_SIZE, h.size());
        byte[] payload = ioBuf.asSlice(Codec.HEADER_SIZE, h.size()).toArray(ValueLayout.JAVA_BYTE);
        return new Reply(h.request(), h.flags(), payload);
    }

    private void readFully(long off, long len) throws IOException {
        long done = 0;
        while (done < len) {
            if (!waitReadable(socket.fd(), TIMEOUT_MS)) {
                throw new IOException("no reply from the backend within " + TIMEOUT_MS + " ms");
            }
            long r = Io.read(socket.fd(), ioBuf.address() + off + done, len - done);
            if (r == 0) {
                throw new IOException("backend closed the connection");
            }
            if (r < 0 && r != -Errno.EAGAIN) {
                throw new NativeException("read(test frontend)", (int) -r);
            }
            done += Math.max(r, 0);
        }
    }

    /**
     * Waits until the backend closes the connection (reads and discards anything before EOF);
     * false on timeout.
     */
    public boolean awaitDisconnect(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            long left = (deadline - System.nanoTime()) / 1_000_000;
            if (left <= 0 || !waitReadable(socket.fd(), left)) {
                return false;
            }
            long r = Io.read(socket.fd(), ioBuf.address(), ioBuf.byteSize());
            if (r == 0 || r == -Errno.ECONNRESET) {
                return true;
            }
            if (r < 0 && r != -Errno.EAGAIN) {
                throw new NativeException("read(test frontend)", (int) -r);
            }
        }
    }

    private boolean waitReadable(int fd, long timeoutMs) throws IOException {
        int ep = poller.fd();
        int r = Epoll.ctl(ep, Epoll.EPOLL_CTL_ADD, fd, Epoll.EPOLLIN | Epoll.EPOLLRDHUP, fd);
        if (r < 0) {
            throw new NativeException("epoll_ctl(test frontend)", -r);
        }
        try {
            int n = Epoll.poll(ep, events, 4, (int) Math.min(timeoutMs, Integer.MAX_VALUE));
            if (n < 0) {
                throw new NativeException("epoll_wait(test frontend)", -n);
            }
            return n > 0;
        } finally {
            Epoll.ctl(ep, Epoll.EPOLL_CTL_DEL, fd, 0, 0);
        }
    }

    /** The connected socket, for tests that need to go below this API. */
    public int socketFd() {
        return socket.fd();
    }

    private static void closeQuietly(Fd fd) {
        if (fd != null) {
            fd.closeQuietly();
        }
    }

    /** Disconnects first (the backend sees EOF), then releases eventfds, memory and the memfd. */
    @Override
    public void close() {
        socket.closeQuietly();
        for (int i = 0; i < kicks.length; i++) {
            closeQuietly(kicks[i]);
            closeQuietly(calls[i]);
        }
        closeQuietly(backendReqPeer);
        poller.closeQuietly();
        ramArena.close();
        memfd.closeQuietly();
        io.close();
    }
}
