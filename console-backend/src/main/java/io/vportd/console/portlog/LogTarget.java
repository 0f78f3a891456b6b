package io.vportd.console.portlog;

import java.io.IOException;

/**
 * Where a {@link LogWriter} puts a port's guest output: a rotated file or the journal. Called on
 * the writer's own thread only, so an implementation may block (a slow disk, a busy journald):
 * the data plane never waits for it, the writer's bounded buffer fills and drops instead.
 */
public interface LogTarget extends AutoCloseable {

    /** Guest output {@code b[off, off+len)} that reached the port at {@code epochMillis}. */
    void write(byte[] b, int off, int len, long epochMillis) throws IOException;

    /** {@code bytes} of guest output that did not fit the writer's buffer, at this point of the stream. */
    void dropped(long bytes, long epochMillis) throws IOException;

    /** The buffer ran empty: push out what is buffered (a partial line that has waited long enough). */
    default void idle(long epochMillis) throws IOException {
    }

    /** A short description for log lines, e.g. {@code /var/log/vm1.log} or {@code journal}. */
    String describe();

    @Override
    void close() throws IOException;
}
