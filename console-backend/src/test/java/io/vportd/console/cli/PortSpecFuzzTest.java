package io.vportd.console.cli;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.vportd.console.control.PortConfig;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Arbitrary text into the port-spec parser and the command line: only
 * IllegalArgumentException / UsageException may come out, and whatever is accepted is valid.
 */
class PortSpecFuzzTest {

    @FuzzTest(maxDuration = "30s")
    void arbitrarySpecs(FuzzedDataProvider data) {
        String spec = data.consumeString(300);
        String other = data.consumeRemainingAsString();
        PortConfig p;
        try {
            p = PortSpecParser.parse(spec);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().startsWith("port spec '"), e.getMessage());
            p = null;
        }
        if (p != null) {
            assertTrue(p.id() >= 0 && p.id() <= PortConfig.MAX_ID);
            assertNotNull(p.endpoint());
            if (p.name() != null) {
                assertNull(PortConfig.nameProblem(p.name()));
            }
            assertTrue(p.console() || p.cols() == 0 && p.rows() == 0);
        }
        try {
            DaemonConfig.parse("--socket-path", "/run/v.sock", "--port", spec, "--port", other,
                    "--metrics-listen", other);
        } catch (UsageException e) {
            assertNotNull(e.getMessage());
        }
        try {
            HostPort.parse(other);
        } catch (IllegalArgumentException expected) {
            // fine
        }
    }
}
