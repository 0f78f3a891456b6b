/**
 * The device side of virtio split virtqueues over guest memory shared by the frontend.
 *
 * <p>{@link io.vportd.vring.GuestMemory} translates addresses; {@link io.vportd.vring.SplitQueue}
 * pops descriptor chains into a reusable {@link io.vportd.vring.Chain} (host segments plus a
 * native iovec array for readv/writev) and returns them through the used ring;
 * {@link io.vportd.vring.QueueStats} counts what happened, including every refused chain by
 * {@link io.vportd.vring.ChainError}.
 *
 * <p>A ring worker serves a kick like this (the re-check after re-enabling is what makes
 * suppression safe; with EVENT_IDX it is also what re-arms the driver's next kick, so every
 * drain must end with {@code enableNotifications()}):
 *
 * <pre>{@code
 * do {
 *     q.disableNotifications();
 *     int r;
 *     while ((r = q.pop(chain)) != SplitQueue.EMPTY) {
 *         if (r == SplitQueue.POPPED) {
 *             // writev(fd, chain.iovAddress(), chain.iovCount()); chain.advance(n); ...
 *             q.pushUsed(chain.head(), bytesWrittenIntoGuest);
 *         }                       // BAD_CHAIN: already returned with length 0 and counted
 *     }
 *     if (q.publishUsed()) {
 *         signal(callFd);
 *     }
 * } while (q.enableNotifications());
 * }</pre>
 *
 * <p>A worker that stops part-way (endpoint would block, batch limit reached) keeps the popped
 * chain, returns later, and must still publish what it pushed. Nothing here allocates per chain
 * or per descriptor, and nothing throws for guest input.
 */
package io.vportd.vring;
