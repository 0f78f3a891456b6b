package io.vportd.console.endpoint;

/**
 * A port whose guest output is thrown away on purpose and which never has input. Not final:
 * tests derive endpoints that differ in one method (a slow open, a failing start).
 */
public class NullEndpoint implements Endpoint {

    @Override
    public void start(EndpointHost host, int port) throws java.io.IOException {
        host.hostConnected(port);
    }

    @Override
    public Handed handover() {
        return new Handed();
    }

    @Override
    public boolean connected() {
        return true;
    }

    @Override
    public int outputFd() {
        return -1;
    }

    @Override
    public int inputFd() {
        return -1;
    }

    @Override
    public boolean discardsOutput() {
        return true;
    }

    @Override
    public void hostDisconnected() {
    }

    @Override
    public String describe() {
        return "null";
    }

    @Override
    public void close() {
    }
}
