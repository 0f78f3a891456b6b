package io.vportd.console.api;

/** A request the protocol refuses before it reaches the device; {@link #code()} is the wire error code. */
final class ApiException extends RuntimeException {

    private final String code;

    ApiException(String code, String message) {
        super(message);
        this.code = code;
    }

    String code() {
        return code;
    }
}
