package io.vportd.vhost;

import java.io.IOException;

/** A frontend message that is malformed or not acceptable; it ends the session. */
public final class VhostProtocolException extends IOException {

    private static final long serialVersionUID = 1L;

    public VhostProtocolException(String message) {
        super(message);
    }

    public VhostProtocolException(String message, Throwable cause) {
        super(message, cause);
    }
}
