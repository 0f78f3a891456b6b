package io.vportd.it;

import io.vportd.testsupport.Await;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The lines a child process prints: streamed to the test log with a prefix, kept, and
 * searchable with a deadline ({@link #awaitLine}).
 */
public final class LineLog {

    private final String name;
    private final List<String> lines = new ArrayList<>();
    private boolean ended;
    private final Thread pump;

    /** Starts a daemon thread copying {@code in} line by line until EOF. */
    public LineLog(String name, InputStream in) {
        this.name = name;
        this.pump = Thread.ofPlatform().daemon().name("log-" + name).start(() -> pump(in));
    }

    private void pump(InputStream in) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                String clean = clean(line);
                System.out.println("[" + name + "] " + clean);
                synchronized (lines) {
                    lines.add(clean);
                    lines.notifyAll();
                }
            }
        } catch (IOException e) {
            System.out.println("[" + name + "] output ended: " + e.getMessage());
        } finally {
            synchronized (lines) {
                ended = true;
                lines.notifyAll();
            }
        }
    }

    /** Drops carriage returns and terminal escape sequences (the guest firmware clears the screen). */
    static String clean(String line) {
        return line.replaceAll("\u001B\\[[0-9;?]*[A-Za-z]|\u001Bc|\r", "");
    }

    public String name() {
        return name;
    }

    /** Everything printed so far. */
    public String text() {
        synchronized (lines) {
            return lines.isEmpty() ? "" : String.join("\n", lines) + "\n";
        }
    }

    /** True once the stream reached EOF. */
    public boolean ended() {
        synchronized (lines) {
            return ended;
        }
    }

    /** Waits for the stream to end (bounded). */
    public void awaitEnd(Duration within) throws InterruptedException {
        pump.join(within);
    }

    /**
     * Waits for a line matching {@code pattern} (searching from the first line) and returns its
     * matcher; fails with the whole output when the stream ends first or time runs out.
     */
    public Matcher awaitLine(Pattern pattern, Duration within) {
        long deadline = System.nanoTime() + within.toNanos();
        int from = 0;
        synchronized (lines) {
            while (true) {
                for (; from < lines.size(); from++) {
                    Matcher m = pattern.matcher(lines.get(from));
                    if (m.find()) {
                        return m;
                    }
                }
                if (ended) {
                    throw new AssertionError(name + " ended before printing /" + pattern + "/\n--- " + name
                            + " output ---\n" + text());
                }
                long left = Await.nanosLeft(deadline);
                if (left == 0) {
                    throw new AssertionError(name + " printed no /" + pattern + "/ within " + within.toMillis()
                            + " ms\n--- " + name + " output ---\n" + text());
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(lines, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new AssertionError("interrupted waiting for " + name + " output", e);
                }
            }
        }
    }
}
