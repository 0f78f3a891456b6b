package io.vportd.vhost;

import io.vportd.vring.GuestMemory;
import io.vportd.vring.GuestRegion;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A guest memory table handed to a {@link VhostUserBackend}, together with the right to let go
 * of its mappings. Retire, don't race: the session never unmaps a region that a table it handed
 * out still holds. Each mapping counts its holders (the session, and every table not yet
 * closed that contains it); it is unmapped when the last one lets go. So a backend that applies
 * a new table later (on its own thread) can go on using the old one until it has switched, and
 * then {@link #close()}s it.
 *
 * <p>{@link #close()} is idempotent and may be called from any thread.
 */
public final class MemoryTable implements AutoCloseable {

    private static final MemoryTable EMPTY = new MemoryTable(GuestMemory.empty(), List.of());

    /** One mapped region and the holders that keep it mapped. */
    static final class Mapping {
        final GuestRegion region;
        private final Arena arena;
        /** The region as the frontend described it (a live hand-over describes it again). */
        final Codec.MemRegion source;
        /** The memory file, kept open so a live hand-over can pass it on; closed with the mapping. */
        final io.vportd.sys.Fd file;
        private final AtomicInteger holders = new AtomicInteger(1); // the session's own hold

        Mapping(GuestRegion region, Arena arena) {
            this(region, arena, null, null);
        }

        Mapping(GuestRegion region, Arena arena, Codec.MemRegion source, io.vportd.sys.Fd file) {
            this.region = region;
            this.arena = arena;
            this.source = source;
            this.file = file;
        }

        void hold() {
            if (holders.getAndIncrement() <= 0) {
                throw new IllegalStateException("mapping " + region + " was already unmapped");
            }
        }

        /** Lets go of one hold; unmaps on the last. */
        void release() {
            int left = holders.decrementAndGet();
            if (left == 0) {
                arena.close();
                if (file != null) {
                    file.closeQuietly();
                }
            } else if (left < 0) {
                throw new IllegalStateException("mapping " + region + " released more often than held");
            }
        }

        boolean isMapped() {
            return holders.get() > 0;
        }
    }

    private final GuestMemory memory;
    private final List<Mapping> mappings;
    private final AtomicBoolean closed = new AtomicBoolean();

    private MemoryTable(GuestMemory memory, List<Mapping> mappings) {
        this.memory = memory;
        this.mappings = mappings;
    }

    /** A table of the given mappings; it holds each of them until closed. */
    static MemoryTable holding(GuestMemory memory, List<Mapping> mappings) {
        List<Mapping> copy = List.copyOf(mappings);
        for (Mapping m : copy) {
            m.hold();
        }
        return new MemoryTable(memory, copy);
    }

    /** The table without any memory. */
    public static MemoryTable empty() {
        return EMPTY;
    }

    /**
     * A table whose mappings belong to someone else (tests, or a caller that keeps them alive
     * longer than any backend): closing it unmaps nothing.
     */
    public static MemoryTable unowned(GuestMemory memory) {
        return new MemoryTable(memory, List.of());
    }

    /** The regions and their mappings; valid until this table is closed. */
    public GuestMemory memory() {
        return memory;
    }

    /** Lets go of this table's mappings (each is unmapped once nobody else holds it). */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            for (Mapping m : mappings) {
                m.release();
            }
        }
    }
}
