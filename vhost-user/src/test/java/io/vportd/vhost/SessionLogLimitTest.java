package io.vportd.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.vhost.testing.RecordingBackend;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/** Lines a frontend can cause go through the one limiter, shared by all sessions of a server. */
class SessionLogLimitTest {

    @Test
    void aFrontendRepeatingUnknownRequestsCannotFloodTheLogEvenAcrossSessions() throws Exception {
        Logger jul = Logger.getLogger(Session.class.getName());
        List<String> lines = new CopyOnWriteArrayList<>();
        Handler h = new Handler() {
            @Override
            public void publish(LogRecord r) {
                lines.add(r.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        jul.addHandler(h);
        VhostStats shared = new VhostStats();
        try {
            for (int s = 0; s < 10; s++) {
                Session session = new Session(RecordingBackend.console(2), reply -> { }, shared);
                for (int i = 0; i < 100; i++) {
                    session.handle(new Session.Message(new Codec.Header(999, Codec.VERSION, 0), new byte[0],
                            new io.vportd.sys.Fd[0]));
                }
                session.close();
            }
        } finally {
            jul.removeHandler(h);
        }
        assertEquals(1000, shared.unknownRequests(), "every one counted");
        long about = lines.stream().filter(l -> l.contains("ignoring")).count();
        assertTrue(about >= 1 && about <= 10, about + " lines for 1000 unknown requests over 10 sessions");
    }
}
