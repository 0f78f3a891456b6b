package io.vportd.console.testing;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Runs a piece of a test while this process can open no further descriptor: the soft
 * RLIMIT_NOFILE is lowered to the lowest free descriptor number, so the next open, socket or
 * accept fails with EMFILE exactly as in a process that has run out. Restored afterwards.
 */
public final class FdLimit implements AutoCloseable {

    private static final int RLIMIT_NOFILE = 7;
    private static final MethodHandle GETRLIMIT;
    private static final MethodHandle SETRLIMIT;

    static {
        Linker linker = Linker.nativeLinker();
        FunctionDescriptor d = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS);
        GETRLIMIT = linker.downcallHandle(linker.defaultLookup().find("getrlimit").orElseThrow(), d);
        SETRLIMIT = linker.downcallHandle(linker.defaultLookup().find("setrlimit").orElseThrow(), d);
    }

    private final long savedCur;
    private final long savedMax;

    private FdLimit(long cur, long max) {
        this.savedCur = cur;
        this.savedMax = max;
    }

    /** Lowers the limit so no descriptor can be opened; close() restores it. */
    public static FdLimit exhaust() throws IOException {
        long[] saved = get();
        int lowestFree = lowestFreeFd();
        set(lowestFree, saved[1]);
        return new FdLimit(saved[0], saved[1]);
    }

    @Override
    public void close() {
        set(savedCur, savedMax);
    }

    private static int lowestFreeFd() throws IOException {
        Set<Integer> open = new HashSet<>();
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            s.forEach(p -> open.add(Integer.parseInt(p.getFileName().toString())));
        }
        // the listing's own descriptor is closed again by now, so its number counts as free
        int n = 0;
        while (open.contains(n) && isStillOpen(n)) {
            n++;
        }
        return n;
    }

    private static boolean isStillOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }

    private static long[] get() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = a.allocate(16, 8);
            if ((int) GETRLIMIT.invokeExact(RLIMIT_NOFILE, r) != 0) {
                throw new IllegalStateException("getrlimit failed");
            }
            return new long[] {r.get(ValueLayout.JAVA_LONG, 0), r.get(ValueLayout.JAVA_LONG, 8)};
        } catch (Throwable t) {
            throw t instanceof RuntimeException re ? re : new IllegalStateException(t);
        }
    }

    private static void set(long cur, long max) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = a.allocate(16, 8);
            r.set(ValueLayout.JAVA_LONG, 0, cur);
            r.set(ValueLayout.JAVA_LONG, 8, max);
            if ((int) SETRLIMIT.invokeExact(RLIMIT_NOFILE, r) != 0) {
                throw new IllegalStateException("setrlimit failed");
            }
        } catch (Throwable t) {
            throw t instanceof RuntimeException re ? re : new IllegalStateException(t);
        }
    }
}
