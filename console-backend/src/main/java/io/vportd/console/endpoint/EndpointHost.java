package io.vportd.console.endpoint;

import io.vportd.sys.NativeException;

/**
 * What an endpoint may ask of the data plane that owns it. Every call happens on the data-plane
 * thread; endpoints are never touched from anywhere else.
 */
public interface EndpointHost {

    /** The listening or accepting side of an endpoint. */
    int ROLE_LISTEN = 1;
    /** A connected host peer: readable and/or writable byte stream. */
    int ROLE_CONNECTION = 2;

    /** Adds {@code fd} to the readiness set; events come back tagged with port and role. */
    void watch(int fd, int events, int port, int role) throws NativeException;

    /** Removes {@code fd} from the readiness set before the endpoint closes it. */
    void unwatch(int fd);

    /** A host peer arrived on this port: the guest is told (PORT_OPEN 1) and data may flow. */
    void hostConnected(int port);
}
