package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The rig itself: a scenario's exit status and marks come back; a hung guest is cut off. */
class RigIT {

    @Test
    @Timeout(200)
    void scenarioStatusAndMarksComeBack() {
        try (Guest g = Guest.builder().name("rig-status")
                .scenario(GuestScripts.script("mark hello \"$(uname -s)\"\nexit 7\n"))
                .timeout(Duration.ofSeconds(120)).start()) {
            GuestResult r = g.awaitExit();
            assertEquals(7, r.status(), () -> "status of 'exit 7'\n" + r.output());
            assertEquals("Linux", r.mark("hello"));
            assertTrue(r.output().contains("VPORTD-GUEST-EXIT 7"), r::output);
        }
    }

    @Test
    @Timeout(120)
    void hungGuestIsKilledAtItsTimeout() {
        try (Guest g = Guest.builder().name("rig-timeout")
                .scenario(GuestScripts.script("mark hanging\nwhile :; do sleep 1; done\n"))
                .timeout(Duration.ofSeconds(1)).start()) {
            GuestResult r = g.awaitExit();
            assertEquals(124, r.status(), () -> "a guest past its timeout ends with 124\n" + r.output());
            assertTrue(r.output().contains("timeout after 1s"), r::output);
        }
    }
}
