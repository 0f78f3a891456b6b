package io.vportd.console.cli;

/**
 * The command line cannot be run: the message says why (or is the requested help or version
 * text, then {@link #exitCode()} is 0). Main prints the message to stderr for errors, stdout
 * otherwise, and exits with {@link #exitCode()}.
 */
public final class UsageException extends Exception {

    /** Exit code for a command-line error (as picocli and most tools use). */
    public static final int USAGE_ERROR = 2;

    private final int exitCode;

    private UsageException(String message, int exitCode) {
        super(message);
        this.exitCode = exitCode;
    }

    /** A command-line error. */
    public static UsageException error(String message) {
        return new UsageException(message, USAGE_ERROR);
    }

    /** Not an error: --help or --version was asked for; the message is the text to print. */
    public static UsageException informational(String text) {
        return new UsageException(text, 0);
    }

    public int exitCode() {
        return exitCode;
    }

    /** True for --help / --version (print to stdout, exit 0). */
    public boolean isInformational() {
        return exitCode == 0;
    }
}
