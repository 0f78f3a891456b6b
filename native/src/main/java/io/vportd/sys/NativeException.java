package io.vportd.sys;

import java.io.IOException;

/**
 * A failed set-up system call: the call (with its main argument) and the errno it reported.
 * The message reads like {@code "bind(/run/x.sock): Address already in use (errno 98)"}.
 */
public final class NativeException extends IOException {

    private static final long serialVersionUID = 1L;

    private final String call;
    private final int errno;

    public NativeException(String call, int errno) {
        super(call + ": " + Errno.describe(errno) + " (errno " + Math.abs(errno) + ")");
        this.call = call;
        this.errno = Math.abs(errno);
    }

    /** The call as named in the message, e.g. {@code "bind(/run/x.sock)"}. */
    public String call() {
        return call;
    }

    /** The positive errno value. */
    public int errno() {
        return errno;
    }
}
