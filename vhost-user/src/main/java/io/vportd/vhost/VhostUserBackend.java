package io.vportd.vhost;

import io.vportd.vring.GuestMemory;

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

    /** The new guest memory table; synchronous: returns when no worker uses the old table. */
    void setMemory(GuestMemory memory);

    /** Starts a queue; the ring is translated and validated, kick/call fds stay valid until stop. */
    void startQueue(int index, QueueSetup setup);

    /** Stops a started queue and returns the next available index (GET_VRING_BASE); synchronous. */
    int stopQueue(int index);

    /** The frontend went away or sent RESET_DEVICE: stop everything; synchronous. */
    void reset();
}
