package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 16: the packaged systemd units under a real systemd (252, Debian bookworm, booted as PID 1
 * of a namespace by the rig in {@code integration-tests/rig/systemd/}). The .deb is installed
 * with dpkg; {@code systemd-analyze verify} passes on {@code vportd.service} and
 * {@code vportd@.service}; then a oneshot unit ordered {@code After=vportd@test.service} is
 * started, which pulls vportd@test in: with {@code Type=notify} systemd starts the oneshot only
 * after vportd said READY=1, so it finds the vhost-user socket already there. vportd runs as the
 * package's vportd user, under the hardening of the unit, and answers vportd-ctl.
 */
class SystemdUnitsIT {

    private static final String PROBE = "vportd-after-probe.service";

    @Test
    @Timeout(600)
    void unitsVerifyAndAUnitAfterVportdFindsItsSocket() throws Exception {
        SystemdRig rig = SystemdRig.require();
        Packages pkg = Packages.build(Rig.require());
        Path run = Files.createTempDirectory("vportd-units-it");
        Path share = Files.createDirectories(run.resolve("share"));
        Files.copy(pkg.deb(), share.resolve("vportd.deb"));
        String in = SystemdRig.SHARE_IN_TREE;
        Files.writeString(share.resolve("test.conf"),
                "VPORTD_ARGS=--socket-path /run/vportd/test/vhost.sock --max-ports 2 "
                        + "--api-socket /run/vportd/test/api.sock "
                        + "--port nr=1,name=org.example.x,socket=/run/vportd/test/x.sock\n");
        Files.writeString(share.resolve(PROBE), """
                [Unit]
                Description=starts after vportd@test and records whether its socket was there
                Requires=vportd@test.service
                After=vportd@test.service

                [Service]
                Type=oneshot
                RemainAfterExit=yes
                ExecStart=/bin/sh -c 'if [ -S /run/vportd/test/vhost.sock ]; then echo present; else echo absent; fi >%s/after.txt'
                """.formatted(in));

        try (SystemdRig.Booted sys = rig.boot(run, share)) {
            sys.ok("dpkg", "-i", in + "/vportd.deb");
            SystemdRig.Result verify = sys.exec(Duration.ofSeconds(90), "systemd-analyze", "verify",
                    "/usr/lib/systemd/system/vportd.service", "vportd@test.service");
            System.out.println("[systemd-analyze verify]\n" + verify.output());
            assertEquals(0, verify.status(), verify.output());
            for (String line : verify.output().lines().toList()) {
                // systemd 252 does not know FileDescriptorStorePreserve= (254+): the only remark allowed
                assertTrue(line.isBlank() || line.contains("FileDescriptorStorePreserve"), "systemd-analyze: " + line);
            }

            sys.ok("install", "-D", "-m", "644", in + "/test.conf", "/etc/vportd/test.conf");
            sys.ok("systemctl", "link", in + "/" + PROBE);
            sys.ok("systemctl", "start", PROBE);
            assertEquals("present", Files.readString(share.resolve("after.txt")).strip(),
                    () -> "the unit After=vportd@test.service ran before the socket existed\n"
                            + sys.diagnostics("vportd@test.service"));
            assertEquals("active", sys.property("vportd@test.service", "ActiveState"), () -> sys.diagnostics("vportd@test.service"));
            assertEquals("vportd", sys.ok("ps", "-o", "user=", "-p", sys.property("vportd@test.service", "MainPID")).strip());
            String ports = sys.ok("vportd-ctl", "--api-socket", "/run/vportd/test/api.sock", "list-ports");
            assertTrue(ports.contains("org.example.x"), ports);
            sys.ok("systemctl", "stop", "vportd@test.service");
            assertEquals("inactive", sys.property("vportd@test.service", "ActiveState"), () -> sys.diagnostics("vportd@test.service"));
        }
    }
}
