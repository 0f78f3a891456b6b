package io.vportd.console.device;

import io.vportd.vring.QueueStats;

/**
 * One running virtqueue as metrics show it.
 *
 * @param index     the virtqueue index
 * @param port      the port it belongs to, or {@link QueueMap#CONTROL} for the control queues
 * @param direction {@code "rx"} (device to guest) or {@code "tx"} (guest to device)
 * @param stats     live counters, read without locks
 */
public record QueueStatus(int index, int port, String direction, QueueStats stats) {
}
