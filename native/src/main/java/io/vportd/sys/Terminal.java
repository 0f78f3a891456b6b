package io.vportd.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/** Terminals and pseudo-terminals: isatty, window size, termios (raw mode), posix_openpt. */
public final class Terminal {

    private Terminal() {
    }

    private static final long TIOCGWINSZ = 0x5413;
    private static final long TIOCSWINSZ = 0x5414;
    private static final int TCSANOW = 0;
    private static final int TERMIOS_SIZE = 60;

    private static final class Isatty {
        static final MethodHandle H =
                Libc.linkInt("isatty");
    }
    private static final class IoctlPtr {
        static final MethodHandle H =
                Libc.linkVariadic("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), 2);
    }
    private static final class Tcgetattr {
        static final MethodHandle H =
                Libc.linkInt("tcgetattr");
    }
    private static final class Tcsetattr {
        static final MethodHandle H =
                Libc.linkInt("tcsetattr");
    }
    private static final class Cfmakeraw {
        static final MethodHandle H =
                Libc.linkPlain("cfmakeraw", FunctionDescriptor.ofVoid(ADDRESS));
    }
    private static final class PosixOpenpt {
        static final MethodHandle H =
                Libc.linkInt("posix_openpt");
    }
    private static final class Grantpt {
        static final MethodHandle H =
                Libc.linkInt("grantpt");
    }
    private static final class Unlockpt {
        static final MethodHandle H =
                Libc.linkInt("unlockpt");
    }
    private static final class PtsnameR {
        static final MethodHandle H =
                Libc.linkInt("ptsname_r");
    }

    /** isatty(3). */
    public static boolean isatty(int fd) {
        return Libc.once(cap -> Libc.call(Isatty.H, cap, fd)) == 1;
    }

    /**
     * The terminal size (TIOCGWINSZ) packed as {@code cols << 16 | rows} (each clamped to
     * 0..0x7fff), or -errno (-ENOTTY for a non-terminal).
     */
    public static int windowSize(int fd) {
        MemorySegment ws = Libc.scratch().u64;
        int r = (int) Libc.once(cap -> (int) IoctlPtr.H.invokeExact(cap, fd, TIOCGWINSZ, ws));
        if (r < 0) {
            return r;
        }
        int rows = Math.min(Short.toUnsignedInt(ws.get(JAVA_SHORT, 0)), 0x7fff);
        int cols = Math.min(Short.toUnsignedInt(ws.get(JAVA_SHORT, 2)), 0x7fff);
        return cols << 16 | rows;
    }

    /** Columns from a packed {@link #windowSize} value. */
    public static int windowCols(int packed) {
        return packed >>> 16;
    }

    /** Rows from a packed {@link #windowSize} value. */
    public static int windowRows(int packed) {
        return packed & 0xffff;
    }

    /** Sets the terminal size (TIOCSWINSZ), e.g. on a PTY master. */
    public static void setWindowSize(int fd, int cols, int rows) throws NativeException {
        MemorySegment ws = Libc.scratch().u64;
        ws.set(JAVA_SHORT, 0, (short) rows);
        ws.set(JAVA_SHORT, 2, (short) cols);
        ws.set(JAVA_SHORT, 4, (short) 0);
        ws.set(JAVA_SHORT, 6, (short) 0);
        Libc.check("ioctl(" + fd + ", TIOCSWINSZ)", cap -> (int) IoctlPtr.H.invokeExact(cap, fd, TIOCSWINSZ, ws));
    }

    /** The terminal attributes of {@code fd} (an opaque {@code struct termios} copy). */
    public static byte[] tcgetattr(int fd) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment t = arena.allocate(TERMIOS_SIZE, 8);
            Libc.check("tcgetattr(" + fd + ")", cap -> Libc.call(Tcgetattr.H, cap, fd, t.address()));
            return t.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Restores attributes saved by {@link #tcgetattr} or {@link #enterRawMode} (TCSANOW). */
    public static void tcsetattr(int fd, byte[] saved) throws NativeException {
        if (saved.length != TERMIOS_SIZE) {
            throw new IllegalArgumentException("not a saved termios: " + saved.length + " bytes");
        }
        setAttributes(fd, saved, false, "tcsetattr(" + fd + ")");
    }

    /** Puts the terminal into raw mode (cfmakeraw) and returns the previous attributes. */
    public static byte[] enterRawMode(int fd) throws NativeException {
        byte[] saved = tcgetattr(fd);
        setAttributes(fd, saved, true, "tcsetattr(" + fd + ", raw)");
        return saved;
    }

    private static void setAttributes(int fd, byte[] termios, boolean raw, String what) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment t = arena.allocate(TERMIOS_SIZE, 8);
            MemorySegment.copy(termios, 0, t, ValueLayout.JAVA_BYTE, 0, TERMIOS_SIZE);
            Libc.check(what, cap -> {
                if (raw) {
                    Cfmakeraw.H.invokeExact(t);
                }
                return Libc.call(Tcsetattr.H, cap, fd, TCSANOW, t.address());
            });
        }
    }

    /** A pseudo-terminal: the master end (owned) and the slave device path. */
    public record Pty(Fd master, String slavePath) {
    }

    /** posix_openpt(O_RDWR|O_NOCTTY|O_CLOEXEC), grantpt, unlockpt, ptsname_r. */
    public static Pty openPty() throws NativeException {
        int m = (int) Libc.check("posix_openpt",
                cap -> Libc.call(PosixOpenpt.H, cap, Io.O_RDWR | Io.O_NOCTTY | Io.O_CLOEXEC));
        Fd master = Fd.adopt(m);
        try (Arena arena = Arena.ofConfined()) {
            Libc.check("grantpt(" + m + ")", cap -> Libc.call(Grantpt.H, cap, m));
            Libc.check("unlockpt(" + m + ")", cap -> Libc.call(Unlockpt.H, cap, m));
            MemorySegment name = arena.allocate(128);
            Libc.check("ptsname_r(" + m + ")", cap -> {
                int r = Libc.call(PtsnameR.H, cap, m, name.address(), 128L);
                if (r != 0) {
                    throw new NativeException("ptsname_r(" + m + ")", r); // returns the error number
                }
                return 0;
            });
            return new Pty(master, name.getString(0));
        } catch (NativeException | RuntimeException e) {
            master.closeQuietly();
            throw e;
        }
    }
}
