package io.vportd.console.endpoint;

import java.io.IOException;

/**
 * The host side of one port: where guest output goes and where guest input comes from. The data
 * plane moves bytes itself, straight between guest memory and {@link #outputFd()} /
 * {@link #inputFd()} with readv/writev; an endpoint only owns the descriptors and the connection
 * life cycle. All methods run on the data-plane thread.
 */
public interface Endpoint extends AutoCloseable {

    /**
     * Everything that may block: resolving a host name, binding, opening a file or a pseudo
     * terminal, making a link. Called once, first, on the thread that adds the port (start-up or
     * a management client), never on the data-plane thread. An endpoint that was opened and then
     * not started must still be closed.
     */
    default void open() throws IOException {
    }

    /**
     * Registers the endpoint's descriptors with the data plane and reports a peer that is already
     * there; runs on the data-plane thread after {@link #open}, so it must not block.
     */
    void start(EndpointHost host, int port) throws IOException;

    /** Readiness on a descriptor this endpoint registered with the role {@link EndpointHost#ROLE_LISTEN}. */
    default void onListenReady(int events) {
    }

    /** True while a host peer can take guest output (a connected client, an open file). */
    boolean connected();

    /** Descriptor guest output is written to while connected, or -1. */
    int outputFd();

    /** Descriptor host input is read from while connected, or -1 (output-only endpoints). */
    int inputFd();

    /** True when guest output is to be accepted and thrown away on purpose (the null endpoint). */
    default boolean discardsOutput() {
        return false;
    }

    /**
     * The data plane saw end of file or an error on the connection: close it. A listening endpoint
     * goes back to waiting for the next client; others stay disconnected.
     */
    void hostDisconnected();

    /**
     * True when this endpoint waits for time to pass (a reconnect back-off): the data plane then
     * calls {@link #tick} about every 100 ms.
     */
    default boolean wantsTicks() {
        return false;
    }

    /** Time passed ({@code nanoTime} is {@link System#nanoTime()}); only called when {@link #wantsTicks()}. */
    default void tick(long nanoTime) {
    }

    /**
     * A terminal whose window size a console port follows (checked about twice a second, like
     * reacting to SIGWINCH), or -1 when the endpoint is not a terminal.
     */
    default int terminalFd() {
        return -1;
    }

    /**
     * Counters the endpoint keeps itself (a pump thread's write errors, for example), exported per
     * port; null when it keeps none.
     */
    default io.vportd.telemetry.MetricSet metrics() {
        return null;
    }

    /**
     * The descriptors (still this endpoint's) and facts a live hand-over carries to the next
     * process, which rebuilds the endpoint with {@link Endpoints#adopt}. Runs on the data-plane
     * thread while it is frozen. Endpoints that cannot be handed over throw, naming why; the
     * hand-over is then refused and nothing changes.
     */
    /**
     * Before {@link #handover}, once the rings have stopped: lets a helper thread of the endpoint
     * reach a point where its descriptors can move (a file's writer finishing its current write).
     * The one method not run on the data-plane thread: it may wait, up to {@code millis}, so it
     * runs on the hand-over's own thread. Throws when the helper did not get there in time.
     */
    default void prepareHandover(long millis) throws java.io.IOException {
    }

    default Handed handover() throws java.io.IOException {
        throw new java.io.IOException(describe() + " cannot be handed over to another process");
    }

    /**
     * What a crash-recovery checkpoint keeps of this endpoint, on the data-plane thread while it
     * runs (so it must not wait): by default the descriptors a hand-over carries. An endpoint whose
     * helper thread holds state that a crash loses anyway answers {@link Handed#reopen()}: the
     * recovering process opens it afresh from its spec.
     */
    default Handed checkpoint() throws java.io.IOException {
        return handover();
    }

    /** The hand-over did not happen: carry on (endpoints that paused a helper thread restart it). */
    default void handoverAbandoned() {
    }

    /**
     * The files {@link #close} would remove (a socket file, a pty link), handed to the caller
     * instead: from now on {@code close} leaves them, and the caller removes them on a thread that
     * may wait on the file system (a port removal runs on the data-plane thread, which must not).
     */
    default java.util.List<java.nio.file.Path> detachFiles() {
        return java.util.List.of();
    }

    /** Human-readable description for logs and listings, e.g. {@code socket /run/vm1/clip.sock}. */
    String describe();

    @Override
    void close();
}
