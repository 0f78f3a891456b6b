package io.vportd.console.api;

/** A request the protocol refuses before it reaches the device; {@link #code()} is the wire error code. */
public final class ApiException extends RuntimeException {

    private final String code;

    public ApiException(String code, String message) {
        super(message);
        this.code = code;
    }

    public String code() {
        return code;
    }
}
