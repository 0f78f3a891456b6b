package io.vportd.console.device;

/** A management request on the data plane that cannot be carried out; {@link #reason()} says which rule it broke. */
public final class PortRequestException extends RuntimeException {

    /** Why a request was refused; the management API turns these into error codes. */
    public enum Reason {
        /** The id is not below max_nr_ports. */
        ID_OUT_OF_RANGE("id-out-of-range"),
        /** Another port has this id. */
        ID_TAKEN("id-taken"),
        /** Another port has this name. */
        NAME_TAKEN("name-taken"),
        /** No port has this id. */
        NO_SUCH_PORT("no-such-port"),
        /** The request needs a console port. */
        NOT_CONSOLE("not-console"),
        /** The endpoint could not be created or started (bind failed, path taken, ...). */
        ENDPOINT_FAILED("endpoint-failed"),
        /** The request is well formed but its values are not acceptable. */
        INVALID("invalid-argument");

        private final String code;

        Reason(String code) {
            this.code = code;
        }

        /** The wire spelling, e.g. {@code id-taken}. */
        public String code() {
            return code;
        }
    }

    private final Reason reason;

    public PortRequestException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public PortRequestException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
