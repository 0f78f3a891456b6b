package io.vportd.console;

import java.util.logging.ConsoleHandler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.Logger;

/** One log line per event on standard error: time, level, logger, message. */
final class Logging {

    private Logging() {
    }

    static void configure(System.Logger.Level level) {
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

    static Level parse(System.Logger.Level level) {
        return switch (level) {
            case ALL -> Level.ALL;
            case TRACE -> Level.FINEST;
            case DEBUG -> Level.FINE;
            case INFO -> Level.INFO;
            case WARNING -> Level.WARNING;
            case ERROR -> Level.SEVERE;
            case OFF -> Level.OFF;
        };
    }
}
