package io.vportd.console;

import java.util.Locale;
import java.util.logging.ConsoleHandler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.Logger;

/** One log line per event on standard error: time, level, logger, message. */
final class Logging {

    private Logging() {
    }

    static void configure(String level) {
        System.setProperty("java.util.logging.SimpleFormatter.format",
                "%1$tF %1$tT.%1$tL %4$-7s %3$s: %5$s%6$s%n");
        LogManager.getLogManager().reset();
        Level l = parse(level);
        ConsoleHandler h = new ConsoleHandler();
        h.setLevel(l);
        Logger root = Logger.getLogger("");
        root.addHandler(h);
        root.setLevel(l);
    }

    static Level parse(String level) {
        if (level == null) {
            return Level.INFO;
        }
        return switch (level.toLowerCase(Locale.ROOT)) {
            case "error" -> Level.SEVERE;
            case "warn", "warning" -> Level.WARNING;
            case "info" -> Level.INFO;
            case "debug" -> Level.FINE;
            case "trace" -> Level.FINEST;
            default -> throw new IllegalArgumentException("unknown log level " + level);
        };
    }
}
