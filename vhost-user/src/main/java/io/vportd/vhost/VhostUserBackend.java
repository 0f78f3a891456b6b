package io.vportd.vhost;

/**
 * The device behind a vhost-user session. The session decodes and validates every message
 * before calling in; all calls come from the session's thread, one at a time.
 */
public interface VhostUserBackend {

    /** Virtio feature bits the device offers (the server adds VHOST_USER_F_PROTOCOL_FEATURES). */
    long deviceFeatures();

    /** Number of virtqueues (answer to GET_QUEUE_NUM; queue indexes are checked against it). */
    int queueCount();

    /** Size of the device config space in bytes (at most {@link Codec#MAX_CONFIG_SIZE}). */
    int configSize();

    /** Fills {@code dst} from config offset {@code offset}; bounds already checked by the session. */
    void getConfig(int offset, byte[] dst);

    /** A driver write of {@code src} at config offset {@code offset}; bounds already checked. */
    void setConfig(int offset, byte[] src);

    /** The virtio features the driver acknowledged (a subset of what was offered). */
    void setFeatures(long acked);

    /**
     * The new guest memory table. The backend owns {@code table} from now on and must
     * {@link MemoryTable#close() close} the table it had before once no worker uses it any more
     * (and the last one when it is handed {@link MemoryTable#empty()} at the session's end). The
     * session never unmaps a region a table still holds, so a backend that switches tables later,
     * on its own thread, is safe; it just closes the old table after switching.
     */
    void setMemory(MemoryTable table);

    /** Starts a queue; the ring is translated and validated, kick/call fds stay valid until stop. */
    void startQueue(int index, QueueSetup setup);

    /** Stops a started queue and returns the next available index (GET_VRING_BASE); synchronous. */
    int stopQueue(int index);

    /**
     * Stops several started queues at once (a live hand-over stops them all); returns each one's
     * next available index, in order. A device whose queues live on another thread overrides it
     * to stop them in one hand-off instead of one per queue.
     */
    default int[] stopQueues(int[] indexes) {
        int[] next = new int[indexes.length];
        for (int i = 0; i < indexes.length; i++) {
            next[i] = stopQueue(indexes[i]);
        }
        return next;
    }

    /** The frontend went away or sent RESET_DEVICE: stop everything; synchronous. */
    void reset();

    /**
     * Called once by the {@link VhostUserServer} before it serves: lets the device end the
     * current session when the frontend's resources turn out to be broken (a fault in guest
     * memory, a kick descriptor that fails). The default ignores it.
     */
    default void bind(SessionControl control) {
    }

    /** What a device may ask of the server that drives it. Thread-safe. */
    @FunctionalInterface
    interface SessionControl {
        /**
         * Ends the current session (if any) as if the frontend had sent a refused message: the
         * connection is shut down, the session cleaned up, the next frontend accepted. Returns
         * at once; {@code reason} goes to the log and {@link VhostUserServer#lastError()}.
         */
        void endSession(String reason);
    }
}
