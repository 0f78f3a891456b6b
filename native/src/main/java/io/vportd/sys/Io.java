package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * File descriptors and plain I/O: close, read, write, readv, writev, O_NONBLOCK, FD_CLOEXEC,
 * open, pipe2, and a file's identity (fstat device and inode).
 *
 * <p>The data-path calls ({@link #read}, {@link #write}, {@link #readv}, {@link #writev},
 * {@link #close}) never throw and never allocate: they return the result or {@code -errno}, EINTR
 * retried inside (except close). Host memory addresses are passed as {@code long} (an LP64
 * pointer and a {@code long} travel the same way on the SysV x86_64 and AAPCS64 ABIs), so no
 * {@code MemorySegment} wrapper is made per call. Set-up calls return an owning {@link Fd} or
 * throw {@link NativeException}.
 */
public final class Io {

    private Io() {
    }

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_NOCTTY = 0400;
    public static final int O_TRUNC = 01000;
    public static final int O_APPEND = 02000;
    public static final int O_NONBLOCK = 04000;
    public static final int O_DIRECTORY = 0200000;
    public static final int O_CLOEXEC = 02000000;

    /** Size of one iovec; write base (u64) at +0 and length (u64) at +8. */
    public static final int IOVEC_BYTES = 16;

    private static final int F_GETFD = 1;
    private static final int F_SETFD = 2;
    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    private static final int F_DUPFD_CLOEXEC = 1030;
    private static final int FD_CLOEXEC = 1;
    private static final long STAT_SIZE = 144;  // struct stat, x86_64
    private static final long STAT_ST_DEV = 0;
    private static final long STAT_ST_INO = 8;

    private static final class Close {
        static final MethodHandle H =
                Libc.linkInt("close");
    }
    private static final class Read {
        static final MethodHandle H =
                Libc.asFdAddrLen( Libc.link("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG)));
    }
    private static final class Write {
        static final MethodHandle H =
                Libc.asFdAddrLen( Libc.link("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG)));
    }
    private static final class Readv {
        static final MethodHandle H =
                Libc.asFdAddrLen( Libc.link("readv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT)));
    }
    private static final class Writev {
        static final MethodHandle H =
                Libc.asFdAddrLen( Libc.link("writev", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT)));
    }
    /** fcntl(fd, cmd, int arg); shared with {@link MemFd} for the seal commands. */
    static final class Fcntl {
        static final MethodHandle H =
                Libc.linkVariadic("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), 2);
    }
    private static final class Open {
        static final MethodHandle H =
                Libc.linkVariadic("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), 2);
    }
    private static final class Fstat {
        static final MethodHandle H =
                Libc.linkInt("fstat");
    }
    private static final class Pipe2 {
        static final MethodHandle H =
                Libc.linkInt("pipe2");
    }

    /** close(2): 0 or -errno. Never retried (Linux releases the descriptor even on EINTR). */
    public static int close(int fd) {
        MemorySegment cap = Libc.capture();
        try {
            return Libc.orErrno(Libc.call(Close.H, cap, fd), cap);
        } catch (Throwable t) {
            throw Libc.linkageBug(t);
        }
    }

    /** read(2) into host memory at {@code addr}: bytes read (0 = EOF) or -errno. */
    public static long read(int fd, long addr, long len) {
        return Libc.retry(Read.H, fd, addr, len);
    }

    /** write(2) from host memory at {@code addr}: bytes written or -errno. */
    public static long write(int fd, long addr, long len) {
        return Libc.retry(Write.H, fd, addr, len);
    }

    /** readv(2) with an array of {@code iovCnt} 16-byte iovecs at {@code iovAddr}: bytes or -errno. */
    public static long readv(int fd, long iovAddr, int iovCnt) {
        return Libc.retry(Readv.H, fd, iovAddr, iovCnt);
    }

    /** writev(2) with an array of {@code iovCnt} 16-byte iovecs at {@code iovAddr}: bytes or -errno. */
    public static long writev(int fd, long iovAddr, int iovCnt) {
        return Libc.retry(Writev.H, fd, iovAddr, iovCnt);
    }

    /** Calls of each method handle {@link #primeInvokers} makes: one more than the JDK's customization threshold (127). */
    static final int INVOKER_CALLS = 128;

    /**
     * Calls read, write, readv, writev, recvmsg and sendmsg {@value #INVOKER_CALLS} times each on
     * no descriptor (-1: EBADF before anything is touched). At a method handle's 128th call from
     * code C2 has not compiled, the JDK rewrites the handle's invoker for it alone, generating a
     * class to do so (2–3 ms). A process about to take part in a hand-over does that here: in a
     * hand-over, a call that until then was rare (recvmsg of the state's descriptors) crossed the
     * threshold inside the guest's pause.
     */
    public static void primeInvokers() {
        for (int i = 0; i < INVOKER_CALLS; i++) {
            read(-1, 0, 0);
            write(-1, 0, 0);
            readv(-1, 0, 0);
            writev(-1, 0, 0);
            UnixSockets.callsOnNoDescriptor();
        }
    }

    private static int statusFlags(int fd) throws NativeException {
        return (int) Libc.check("fcntl(" + fd + ", F_GETFL)", cap -> (int) Fcntl.H.invokeExact(cap, fd, F_GETFL, 0));
    }

    /** Sets or clears O_NONBLOCK. */
    public static void setNonBlocking(int fd, boolean nonBlocking) throws NativeException {
        int flags = statusFlags(fd);
        int wanted = nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (wanted != flags) {
            Libc.check("fcntl(" + fd + ", F_SETFL)", cap -> (int) Fcntl.H.invokeExact(cap, fd, F_SETFL, wanted));
        }
    }

    /** True when O_NONBLOCK is set on {@code fd}. */
    public static boolean isNonBlocking(int fd) throws NativeException {
        return (statusFlags(fd) & O_NONBLOCK) != 0;
    }

    /** Sets or clears FD_CLOEXEC (the descriptor flag: it does not travel with dup'ed copies). */
    public static void setCloseOnExec(int fd, boolean closeOnExec) throws NativeException {
        int flags = (int) Libc.check("fcntl(" + fd + ", F_GETFD)", cap -> (int) Fcntl.H.invokeExact(cap, fd, F_GETFD, 0));
        int wanted = closeOnExec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        if (wanted != flags) {
            Libc.check("fcntl(" + fd + ", F_SETFD)", cap -> (int) Fcntl.H.invokeExact(cap, fd, F_SETFD, wanted));
        }
    }

    /** True when FD_CLOEXEC is set on {@code fd}. */
    public static boolean isCloseOnExec(int fd) throws NativeException {
        return ((int) Libc.check("fcntl(" + fd + ", F_GETFD)", cap -> (int) Fcntl.H.invokeExact(cap, fd, F_GETFD, 0))
                & FD_CLOEXEC) != 0;
    }

    /** The file a descriptor refers to, as fstat(2) names it: two descriptors with equal ids share the file. */
    public record FileId(long device, long inode) {
    }

    /** fstat(2)'s device and inode of the file behind {@code fd}. */
    public static FileId fileId(int fd) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(STAT_SIZE, 8);
            Libc.check("fstat(" + fd + ")", cap -> Libc.call(Fstat.H, cap, fd, st.address()));
            return new FileId(st.get(JAVA_LONG, STAT_ST_DEV), st.get(JAVA_LONG, STAT_ST_INO));
        }
    }

    /** open(2) with {@code flags} ({@link #O_CLOEXEC} always added) and {@code mode} for O_CREAT. */
    public static Fd open(Path path, int flags, int mode) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpath = arena.allocateFrom(path.toString());
            return Fd.adopt((int) Libc.check("open(" + path + ")",
                    cap -> (int) Open.H.invokeExact(cap, cpath, flags | O_CLOEXEC, mode)));
        }
    }

    /** pipe2(O_CLOEXEC): {@code [read end, write end]}. */
    public static Fd[] pipe() throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fds = arena.allocate(JAVA_INT, 2);
            Libc.check("pipe2", cap -> Libc.call(Pipe2.H, cap, fds.address(), O_CLOEXEC));
            return new Fd[] {Fd.adopt(fds.getAtIndex(JAVA_INT, 0)), Fd.adopt(fds.getAtIndex(JAVA_INT, 1))};
        }
    }

    /** A second descriptor for the same open file (fcntl F_DUPFD_CLOEXEC), owned by the caller. */
    public static Fd dup(int fd) throws NativeException {
        return Fd.adopt((int) Libc.check("fcntl(" + fd + ", F_DUPFD_CLOEXEC)",
                cap -> (int) Fcntl.H.invokeExact(cap, fd, F_DUPFD_CLOEXEC, 0)));
    }

    /** kcmp(2), through syscall(2): only crash recovery needs it. */
    private static final class Kcmp {
        static final long SYS_KCMP = 312; // x86_64
        static final int KCMP_FILE = 0;
        static final MethodHandle H = Libc.linkVariadic("syscall",
                FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG), 1);
    }

    /**
     * True when descriptors {@code a} and {@code b} of this process refer to the same open file
     * (kcmp(2) KCMP_FILE): what tells two eventfds apart, which fstat cannot (they share one
     * anonymous inode).
     *
     * @throws NativeException the kernel cannot compare (no kcmp, or a bad descriptor)
     */
    public static boolean sameOpenFile(int a, int b) throws NativeException {
        long pid = ProcessHandle.current().pid();
        return Libc.check("kcmp(" + a + ", " + b + ")",
                cap -> (long) Kcmp.H.invokeExact(cap, Kcmp.SYS_KCMP, pid, pid, (long) Kcmp.KCMP_FILE, (long) a, (long) b)) == 0;
    }
}
