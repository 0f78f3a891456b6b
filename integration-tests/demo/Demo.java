// A short, narrated demo: a real Linux guest under QEMU whose named ports talk to this host.
// Run by `./run demo` with JDK 25's source launcher (no build needed for this file):
//   java integration-tests/demo/Demo.java <repo-root>
// The ports are served by vportd (console-backend/target/vportd.jar, built by ./run demo) through
// QEMU's vhost-user-test-device-pci; with --builtin the same story runs on QEMU's own
// virtio-serial, the reference device.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public class Demo {

    static final String CHAT = "org.vportd.demo.chat";
    static final String LOG = "org.vportd.demo.log";

    static final String SCENARIO = """
            say() { echo "VPORTD-MARK say $*"; }
            say "guest is up; the ports it sees:"
            for d in /sys/class/virtio-ports/*; do
              n=$(cat "$d/name" 2>/dev/null)
              if [ -n "$n" ]; then say "  ${d##*/} named '$n' -> /dev/virtio-ports/$n"
              else say "  ${d##*/} without a name (the console, /dev/hvc0)"; fi
            done
            C=/dev/virtio-ports/%1$s
            L=/dev/virtio-ports/%2$s
            exec 3<> "$C"
            say "guest opened $C and waits for the host to say something"
            i=0; msg=""
            while [ $i -lt 600 ]; do msg=$(head -c 11 <&3); [ -n "$msg" ] && break; i=$((i + 1)); sleep 0.05; done
            say "guest read from the host: '$msg'"
            reply=$(echo "$msg" | tr a-z A-Z)
            printf '%%s' "$reply" >&3
            say "guest answered '$reply' on the same port"
            exec 3>&-
            echo "guest uptime: $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)" > "$L"
            say "guest wrote a log line to $L"
            printf 'hello from the guest console (hvc0)' > /dev/hvc0
            say "guest wrote to its console /dev/hvc0; done"
            """.formatted(CHAT, LOG);

    public static void main(String[] args) throws Exception {
        Path root = Path.of(args.length > 0 ? args[0] : ".").toAbsolutePath().normalize();
        boolean builtin = List.of(args).contains("--builtin");
        Path runGuest = root.resolve("integration-tests/rig/run-guest");
        Path work = Files.createTempDirectory("vportd-demo-");
        Path scenario = work.resolve("scenario.sh");
        Files.writeString(scenario, SCENARIO);
        List<String> cmd = new ArrayList<>(List.of(runGuest.toString(), "--scenario", scenario.toString(),
                "--timeout", "120", "--socket-dir", work.toString(), "--"));
        Process vportd = null;
        if (builtin) {
            cmd.addAll(builtinArgs(work));
            step("Device: QEMU's built-in virtio-serial (the reference).");
        } else {
            vportd = startVportd(root, work);
            cmd.addAll(vportdArgs(work));
            step("Device: vportd, serving a multiport virtio-console over vhost-user on " + work.resolve("vportd.sock"));
        }

        step("Booting a Debian trixie kernel under QEMU (TCG) with three ports:");
        step("  console (nr 0) -> host socket " + work.resolve("console.sock"));
        step("  " + CHAT + " (nr 1) -> host socket " + work.resolve("chat.sock"));
        step("  " + LOG + " (nr 2) -> host socket " + work.resolve("log.sock"));
        Process qemu = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        LinkedBlockingQueue<String> marks = new LinkedBlockingQueue<>();
        Thread pump = Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(qemu.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = r.readLine()) != null; ) {
                    l = l.replaceAll("\u001B\\[[0-9;?]*[A-Za-z]|\u001Bc|\r", "");
                    if (l.startsWith("VPORTD-MARK say ")) {
                        System.out.println("  [guest] " + l.substring(16));
                        marks.add(l.substring(16));
                    } else if (l.startsWith("VPORTD-GUEST-EXIT") || l.startsWith("rig:")) {
                        System.out.println("  [rig]   " + l);
                    }
                }
            } catch (IOException ignored) {
                // QEMU ended
            }
        });
        try (SocketChannel console = connect(work.resolve("console.sock"));
             SocketChannel chat = connect(work.resolve("chat.sock"));
             SocketChannel log = connect(work.resolve("log.sock"))) {
            step("Host connected to all three port sockets; the guest sees each port as open by the host.");
            waitFor(marks, "waits for the host");
            step("Host sends 'hello guest' on " + CHAT + ".");
            chat.write(ByteBuffer.wrap("hello guest".getBytes(StandardCharsets.US_ASCII)));
            step("Host received on " + CHAT + ": '" + read(chat, 11) + "'");
            waitFor(marks, "wrote a log line");
            step("Host received on " + LOG + ": '" + readLine(log).strip() + "'");
            step("Host received on the console: '" + read(console, 35) + "'");
            if (!qemu.waitFor(120, TimeUnit.SECONDS)) {
                qemu.destroyForcibly();
                throw new IllegalStateException("guest did not finish");
            }
            pump.join(5_000);
            step("The guest powered off; its scenario exit status was " + qemu.exitValue() + ".");
            if (qemu.exitValue() != 0) {
                System.exit(1);
            }
        } finally {
            if (vportd != null) {
                vportd.destroy();
                vportd.waitFor(10, TimeUnit.SECONDS);
            }
            qemu.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
            qemu.destroyForcibly();
            try (var files = Files.list(work)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(work);
        }
    }

    /** Starts vportd with the three ports and waits until QEMU can connect to it. */
    static Process startVportd(Path root, Path dir) throws IOException, InterruptedException {
        Path jar = root.resolve("console-backend/target/vportd.jar");
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = List.of(java, "--enable-native-access=ALL-UNNAMED", "-jar", jar.toString(),
                "--socket-path", dir.resolve("vportd.sock").toString(), "--max-ports", "4",
                "--port", "nr=0,console,socket=" + dir.resolve("console.sock"),
                "--port", "nr=1,name=" + CHAT + ",socket=" + dir.resolve("chat.sock"),
                "--port", "nr=2,name=" + LOG + ",socket=" + dir.resolve("log.sock"));
        step("Starting vportd: " + String.join(" ", cmd.subList(3, cmd.size())));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = r.readLine()) != null; ) {
                    System.out.println("  [vportd] " + l);
                }
            } catch (IOException ignored) {
                // vportd ended
            }
        });
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(dir.resolve("vportd.sock"))) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                throw new IllegalStateException("vportd did not start (is " + jar + " built?)");
            }
            Thread.sleep(20); // polling interval while the JVM starts
        }
        return p;
    }

    /** The vhost-user device QEMU attaches to vportd: 4 ports, so 10 queues. */
    static List<String> vportdArgs(Path dir) {
        return List.of(
                "-chardev", "socket,id=vp,path=" + dir.resolve("vportd.sock"),
                "-device", "vhost-user-test-device-pci,chardev=vp,virtio-id=3,num_vqs=10,config_size=12");
    }

    /** QEMU's built-in virtio-serial with one listening socket per port. */
    static List<String> builtinArgs(Path dir) {
        return List.of(
                "-device", "virtio-serial-pci,id=vser0,max_ports=4",
                "-chardev", "socket,id=p0,path=" + dir.resolve("console.sock") + ",server=on,wait=off",
                "-device", "virtconsole,bus=vser0.0,chardev=p0,nr=0",
                "-chardev", "socket,id=p1,path=" + dir.resolve("chat.sock") + ",server=on,wait=off",
                "-device", "virtserialport,bus=vser0.0,chardev=p1,nr=1,name=" + CHAT,
                "-chardev", "socket,id=p2,path=" + dir.resolve("log.sock") + ",server=on,wait=off",
                "-device", "virtserialport,bus=vser0.0,chardev=p2,nr=2,name=" + LOG);
    }

    static void step(String s) {
        System.out.println("demo: " + s);
    }

    static void waitFor(LinkedBlockingQueue<String> marks, String text) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (System.nanoTime() < deadline) {
            String m = marks.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
            if (m != null && m.contains(text)) {
                return;
            }
        }
        throw new IllegalStateException("the guest never said '" + text + "'");
    }

    static SocketChannel connect(Path socket) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    c.connect(UnixDomainSocketAddress.of(socket));
                    return c;
                } catch (IOException e) {
                    c.close();
                    throw e;
                }
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("QEMU never listened on " + socket, e);
                }
                Thread.sleep(20); // retry interval while QEMU starts
            }
        }
    }

    static String read(SocketChannel c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining() && c.read(b) >= 0) {
            // blocking read until n bytes or EOF
        }
        return new String(b.array(), 0, b.position(), StandardCharsets.UTF_8);
    }

    static String readLine(SocketChannel c) throws IOException {
        StringBuilder sb = new StringBuilder();
        ByteBuffer b = ByteBuffer.allocate(1);
        while (c.read(b) > 0) {
            char ch = (char) b.get(0);
            b.clear();
            sb.append(ch);
            if (ch == '\n') {
                break;
            }
        }
        return sb.toString();
    }
}
