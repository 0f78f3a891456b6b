package io.vportd.vring;

/**
 * Why a descriptor chain offered by the guest was refused. Each has its own counter in
 * {@link QueueStats}. All but {@link #AVAIL_INDEX_JUMP} consume the chain (used length 0) and
 * leave the queue working; {@link #AVAIL_INDEX_JUMP} marks the queue broken.
 */
public enum ChainError {
    /** The available ring entry names a head index at or beyond the ring size (no used entry is written). */
    HEAD_OUT_OF_RANGE("head index beyond the ring size"),
    /** A descriptor's next field points beyond its table. */
    NEXT_OUT_OF_RANGE("next index beyond the descriptor table"),
    /** More descriptors followed than the table holds: a next loop. */
    CHAIN_TOO_LONG("chain longer than its table (next loop)"),
    /** A buffer is not wholly inside guest memory, or its address range wraps. */
    ADDRESS_NOT_MAPPED("buffer outside guest memory"),
    /** A descriptor's WRITE flag disagrees with the queue direction. */
    WRONG_DIRECTION("descriptor direction does not match the queue"),
    /** The lengths of the chain add up to more than Integer.MAX_VALUE. */
    TOTAL_LENGTH_OVERFLOW("total chain length overflows"),
    /** An indirect table contains a descriptor with the INDIRECT flag. */
    NESTED_INDIRECT("indirect descriptor inside an indirect table"),
    /** A descriptor carries both INDIRECT and NEXT. */
    INDIRECT_WITH_NEXT("descriptor with both INDIRECT and NEXT"),
    /** An indirect table length is zero, not a multiple of 16, or too large. */
    INDIRECT_BAD_LENGTH("indirect table length invalid"),
    /** An indirect table is not wholly inside one guest memory region. */
    INDIRECT_NOT_MAPPED("indirect table outside guest memory"),
    /** The chain needs more host segments than the Chain can hold. */
    TOO_MANY_SEGMENTS("chain needs more segments than the queue size"),
    /** The available index moved more than the ring size past the device's position: queue broken. */
    AVAIL_INDEX_JUMP("available index jumped beyond the ring size");

    private final String text;

    ChainError(String text) {
        this.text = text;
    }

    /** A short human description for log lines. */
    public String text() {
        return text;
    }
}
