package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;

/**
 * Linking to the C library (Linux, x86_64/glibc) and the native-call ceremony the binding
 * classes share: symbol lookup, the errno capture option, the per-thread capture segment and
 * scratch buffers, the EINTR retry and the {@link NativeException} of a failed set-up call.
 *
 * <p>Each function's method handle is the {@code static final} field {@code H} of a small holder
 * class of its own in the binding class, linked here when that holder is first used and called
 * with {@code invokeExact}. Linking a downcall costs the JVM some 5-20 ms at start-up (it
 * generates the call's adapter classes), so a daemon links only what it calls: a pty, a TCP port
 * or a guest's memory table pays for its functions when it first needs them. Once initialised,
 * the holder's field is a constant to the JIT, as a field of the binding class would be. errno is captured with {@code Linker.Option.captureCallState("errno")}
 * into the calling thread's capture segment; it is never read afterwards through
 * {@code __errno_location}.
 *
 * <p>Most of a start-up's cost of linking is per call shape, not per function: the JVM caches a
 * downcall's adapter by its {@link FunctionDescriptor}, so a second function of a shape it has
 * linked before costs a fraction of a millisecond against 10-20 ms for a new shape. Every call
 * that returns a C {@code int} and takes at most five integer or pointer arguments is therefore
 * linked with the one shape {@code int f(long, long, long, long, long)} ({@link #linkInt}) and
 * made through {@link #call}: ints are widened, pointers passed as their address, the unused
 * trailing arguments are 0. This is sound on the two C calling conventions vportd runs on (x86-64
 * System V, AArch64 AAPCS64): each of the first six (eight) integer arguments travels in a
 * register of its own, a callee reads only the low 32 bits of an {@code int} one, and a callee
 * never looks at registers past its own parameters. Variadic functions (fcntl, open, ioctl) keep
 * their own descriptors: on x86-64 their callers must also say how many vector registers they
 * used. The data path's calls (read, write, readv, writev, recvmsg, sendmsg), which return
 * {@code ssize_t}, keep theirs.
 */
final class Libc {

    private Libc() {
    }

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LOOKUP = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_HANDLE =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    /** The shape of {@link #retry}'s handles: (capture, fd, address, length) to a long result. */
    private static final MethodType FD_ADDR_LEN =
            MethodType.methodType(long.class, MemorySegment.class, int.class, long.class, long.class);

    /** The one shape of {@link #linkInt}'s functions (see the class comment). */
    private static final FunctionDescriptor INT_CALL = FunctionDescriptor.of(ValueLayout.JAVA_INT,
            ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG);

    /**
     * A libc function that returns {@code int} and takes at most five integer or pointer
     * arguments, errno captured, linked with the shared shape: call it with {@link #call}.
     */
    static MethodHandle linkInt(String name) {
        return link(name, INT_CALL);
    }

    /** Calls a {@link #linkInt} function of one argument. */
    static int call(MethodHandle h, MemorySegment cap, long a) throws Throwable {
        return (int) h.invokeExact(cap, a, 0L, 0L, 0L, 0L);
    }

    /** Calls a {@link #linkInt} function of two arguments. */
    static int call(MethodHandle h, MemorySegment cap, long a, long b) throws Throwable {
        return (int) h.invokeExact(cap, a, b, 0L, 0L, 0L);
    }

    /** Calls a {@link #linkInt} function of three arguments. */
    static int call(MethodHandle h, MemorySegment cap, long a, long b, long c) throws Throwable {
        return (int) h.invokeExact(cap, a, b, c, 0L, 0L);
    }

    /** Calls a {@link #linkInt} function of four arguments. */
    static int call(MethodHandle h, MemorySegment cap, long a, long b, long c, long d) throws Throwable {
        return (int) h.invokeExact(cap, a, b, c, d, 0L);
    }

    /** Calls a {@link #linkInt} function of five arguments. */
    static int call(MethodHandle h, MemorySegment cap, long a, long b, long c, long d, long e) throws Throwable {
        return (int) h.invokeExact(cap, a, b, c, d, e);
    }

    /** A libc function without errno capture. */
    static MethodHandle linkPlain(String name, FunctionDescriptor desc) {
        MemorySegment symbol = LOOKUP.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, desc);
    }

    /** A libc function whose errno is captured: the handle takes the capture segment first. */
    static MethodHandle link(String name, FunctionDescriptor desc) {
        return linkWith(name, desc, CAPTURE);
    }

    /** A variadic libc function (fcntl, open, ioctl) with errno capture. */
    static MethodHandle linkVariadic(String name, FunctionDescriptor desc, int firstVariadic) {
        return linkWith(name, desc, CAPTURE, Linker.Option.firstVariadicArg(firstVariadic));
    }

    private static MethodHandle linkWith(String name, FunctionDescriptor desc, Linker.Option... options) {
        MemorySegment symbol = LOOKUP.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no symbol " + name));
        return LINKER.downcallHandle(symbol, desc, options);
    }

    /**
     * A handle adapted to (capture, int fd, long address, long length) returning long, for
     * {@link #retry}; int arguments and results are converted (counts and flags are small).
     */
    static MethodHandle asFdAddrLen(MethodHandle h) {
        return MethodHandles.explicitCastArguments(h, FD_ADDR_LEN);
    }

    // ---- per-thread scratch ----------------------------------------------------------------

    /** Per-thread native scratch: errno capture state plus small buffers for the data path. */
    static final class Scratch {
        final MemorySegment capture;
        final MemorySegment u64;
        final MemorySegment event;
        final MemorySegment msghdr;
        final MemorySegment iovec;
        final MemorySegment control;

        private Scratch() {
            Arena arena = Arena.ofAuto(); // lives as long as the thread's scratch object
            capture = arena.allocate(CAPTURE_LAYOUT);
            u64 = arena.allocate(8, 8);
            event = arena.allocate(16, 8);
            msghdr = arena.allocate(UnixSockets.MSGHDR_SIZE, 8);
            iovec = arena.allocate(Io.IOVEC_BYTES, 8);
            control = arena.allocate(UnixSockets.CMSG_HDR + 4L * UnixSockets.MAX_RECV_FDS, 8);
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static Scratch scratch() {
        return SCRATCH.get();
    }

    /** The calling thread's errno capture segment. */
    static MemorySegment capture() {
        return SCRATCH.get().capture;
    }

    /** The errno the last call on this thread captured into {@code capture}. */
    static int errno(MemorySegment capture) {
        return (int) ERRNO_HANDLE.get(capture, 0L);
    }

    /** {@code r} when not negative, else {@code -errno}. */
    static int orErrno(int r, MemorySegment capture) {
        return r < 0 ? -errno(capture) : r;
    }

    static AssertionError linkageBug(Throwable t) {
        return new AssertionError("native call failed to invoke", t);
    }

    // ---- the ceremony ----------------------------------------------------------------------

    /**
     * Calls {@code h} (adapted with {@link #asFdAddrLen}) and retries on EINTR: the result, or
     * {@code -errno}. Allocates nothing: the data path (read, write, readv, writev, recvmsg,
     * sendmsg) goes through here.
     */
    static long retry(MethodHandle h, int fd, long addr, long len) {
        MemorySegment cap = capture();
        try {
            while (true) {
                long r = (long) h.invokeExact(cap, fd, addr, len);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    return -e;
                }
            }
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** One native call, given the calling thread's capture segment. */
    @FunctionalInterface
    interface Call {
        long invoke(MemorySegment capture) throws Throwable;
    }

    /**
     * A set-up call: {@code call} is made (again on EINTR) until it returns a value that is not
     * negative, which is returned; otherwise {@link NativeException} naming {@code what} and the
     * errno. A {@code NativeException} thrown inside {@code call} passes through.
     */
    static long check(String what, Call call) throws NativeException {
        MemorySegment cap = capture();
        try {
            while (true) {
                long r = call.invoke(cap);
                if (r >= 0) {
                    return r;
                }
                int e = errno(cap);
                if (e != Errno.EINTR) {
                    throw new NativeException(what, e);
                }
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }

    /** A call made once whose failure is a value: the result, or {@code -errno}. */
    static long once(Call call) {
        MemorySegment cap = capture();
        try {
            long r = call.invoke(cap);
            return r < 0 ? -errno(cap) : r;
        } catch (Throwable t) {
            throw linkageBug(t);
        }
    }
}
