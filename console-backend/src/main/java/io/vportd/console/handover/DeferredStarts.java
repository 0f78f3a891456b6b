package io.vportd.console.handover;

import io.vportd.console.device.ConsoleDevice;
import io.vportd.vhost.MemoryTable;
import io.vportd.vhost.QueueSetup;
import io.vportd.vhost.VhostUserBackend;
import io.vportd.vhost.VhostUserServer;
import java.util.ArrayList;
import java.util.List;

/**
 * The device as the replayed session of a hand-over sees it: while the session is replayed, what
 * needs the data-plane thread (the acked features, the memory table, ring starts) is collected
 * in order instead of each making its own round trip to that thread, then {@link #flush} runs it
 * all there in one hand-off (a replay ends every ring's messages with its kick, so nothing stops
 * a ring it started). Afterwards every call goes straight to the device.
 */
final class DeferredStarts implements VhostUserBackend {

    private final ConsoleDevice device;
    private List<java.util.function.Consumer<ConsoleDevice>> pending = new ArrayList<>();

    DeferredStarts(ConsoleDevice device) {
        this.device = device;
    }

    /**
     * The vhost-user server of a device rebuilt from a state record: the record's session replayed
     * into it (ring starts collected and made in one hand-off), serving the record's listener and
     * connection once started. With {@code recovering} the rings start at their used indexes
     * ({@link VhostUserServer#adopt(java.nio.file.Path, io.vportd.vhost.VhostUserBackend,
     * VhostUserServer.Options, io.vportd.sys.Fd, io.vportd.sys.Fd, List, boolean)}).
     */
    static VhostUserServer replayInto(ConsoleDevice device, java.nio.file.Path socketPath, HandoverState.Daemon d,
                                      boolean recovering) throws java.io.IOException {
        List<io.vportd.vhost.Session.Message> replay = new ArrayList<>();
        for (io.vportd.vhost.Session.Replay r : d.replay()) {
            io.vportd.sys.Fd[] fds = new io.vportd.sys.Fd[r.fds().length];
            for (int i = 0; i < fds.length; i++) {
                fds[i] = io.vportd.sys.Fd.adopt(r.fds()[i]);
            }
            replay.add(new io.vportd.vhost.Session.Message(new io.vportd.vhost.Codec.Header(r.request(),
                    io.vportd.vhost.Codec.VERSION, r.payload().length), r.payload(), fds));
        }
        DeferredStarts backend = new DeferredStarts(device);
        VhostUserServer vhost = VhostUserServer.adopt(socketPath, backend,
                new VhostUserServer.Options(d.allowUnsealedMemory(), VhostUserServer.DEFAULT_HANDSHAKE_TIMEOUT),
                io.vportd.sys.Fd.adopt(d.vhostListenerFd()),
                d.vhostConnectionFd() < 0 ? null : io.vportd.sys.Fd.adopt(d.vhostConnectionFd()), replay, recovering);
        backend.flush();
        return vhost;
    }

    /** Runs what was collected, in order, in one hand-off, and passes every later call straight through. */
    void flush() {
        List<java.util.function.Consumer<ConsoleDevice>> steps = pending;
        pending = null;
        if (!steps.isEmpty()) {
            device.dataPlane().inOneHandOff(() -> {
                for (java.util.function.Consumer<ConsoleDevice> step : steps) {
                    step.accept(device);
                }
            });
        }
    }

    @Override
    public void startQueue(int index, QueueSetup setup) {
        if (pending != null) {
            pending.add(d -> d.startQueue(index, setup));
        } else {
            device.startQueue(index, setup);
        }
    }

    @Override
    public int stopQueue(int index) {
        if (pending != null) {
            throw new IllegalStateException("a replayed session stopped queue " + index + " while starts were deferred");
        }
        return device.stopQueue(index);
    }

    @Override
    public int[] stopQueues(int[] indexes) {
        if (pending != null) {
            throw new IllegalStateException("a replayed session stopped queues while starts were deferred");
        }
        return device.stopQueues(indexes);
    }

    @Override
    public long deviceFeatures() {
        return device.deviceFeatures();
    }

    @Override
    public int queueCount() {
        return device.queueCount();
    }

    @Override
    public int configSize() {
        return device.configSize();
    }

    @Override
    public void getConfig(int offset, byte[] dst) {
        device.getConfig(offset, dst);
    }

    @Override
    public void setConfig(int offset, byte[] src) {
        device.setConfig(offset, src);
    }

    @Override
    public void setFeatures(long acked) {
        if (pending != null) {
            pending.add(d -> d.setFeatures(acked));
        } else {
            device.setFeatures(acked);
        }
    }

    @Override
    public void setMemory(MemoryTable table) {
        if (pending != null) {
            pending.add(d -> d.setMemory(table));
        } else {
            device.setMemory(table);
        }
    }

    @Override
    public void reset() {
        device.reset();
    }

    @Override
    public void bind(SessionControl control) {
        device.bind(control);
    }
}
