package io.vportd.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.testsupport.Await;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.openqa.selenium.By;
import org.openqa.selenium.Cookie;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WindowType;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.interactions.Actions;

/**
 * Issue 17 in a real browser: Debian's headless Chromium, driven through chromedriver by
 * Selenium, against vportd serving a real guest whose /dev/hvc1 runs an interactive shell on a
 * {@code web} console. The test logs in with the token, sees the port list, types
 * {@code echo $((6*7))} into hvc1's xterm.js terminal and reads {@code 42} from the terminal's
 * buffer, resizes the window and reads the new size from the guest's {@code stty size}, opens a
 * second tab read-only that sees the output and whose typing never reaches the guest, and checks
 * that no session or a foreign Origin is refused (401/403). Screenshots go to
 * {@code target/web-console*.png}. Chromium on two shared CPUs is slow: every wait is generous
 * and none is an assertion on time.
 */
class WebConsoleIT {

    static final Duration STEP = Duration.ofSeconds(180);
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final String BANNER = "boot-banner-from-the-guest";

    private Path dir;
    private VportdProcess daemon;
    private Guest guest;
    private WebDriver driver;

    @BeforeEach
    void prepare() throws IOException {
        Rig.require();
        boolean browser = Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER);
        if (!browser && "true".equalsIgnoreCase(System.getenv("CI"))) {
            throw new AssertionError("chromium and chromium-driver are not installed (./run setup installs them)");
        }
        Assumptions.assumeTrue(browser, "chromium and chromium-driver are not installed (./run setup installs them)");
        dir = Files.createTempDirectory("vportd-web-");
    }

    @AfterEach
    void tearDown() throws IOException {
        if (driver != null) {
            driver.quit();
        }
        if (guest != null) {
            guest.close();
        }
        if (daemon != null) {
            daemon.close();
            assertFalse(daemon.log().contains("Exception"), () -> "vportd logged an exception:\n" + daemon.log());
        }
        TempDirs.removeFlat(dir);
    }

    private WebDriver browser() {
        System.setProperty("webdriver.chrome.driver", CHROMEDRIVER.toString()); // no Selenium Manager download
        ChromeOptions o = new ChromeOptions();
        o.setBinary(CHROMIUM.toFile());
        o.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,720", "--no-first-run", "--disable-extensions");
        ChromeDriverService s = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort().build();
        ChromeDriver d = new ChromeDriver(s, o);
        d.manage().timeouts().pageLoadTimeout(STEP).scriptTimeout(STEP);
        return d;
    }

    /** The terminal's buffer, line by line (trailing blanks trimmed). */
    private String buffer() {
        Object r = ((JavascriptExecutor) driver).executeScript("""
                const t = window.vportdTerm; if (!t) return '';
                const b = t.buffer.active; const out = [];
                for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
                return out.join('\\n');""");
        return r == null ? "" : r.toString();
    }

    private boolean hasLine(String line) {
        for (String l : buffer().split("\n")) {
            if (l.strip().equals(line)) {
                return true;
            }
        }
        return false;
    }

    /** Types into the terminal as a user would: focus it, then keys (xterm.js turns Enter into CR). */
    private void type(String text) {
        ((JavascriptExecutor) driver).executeScript("window.vportdTerm.focus();");
        new Actions(driver).sendKeys(text).sendKeys(Keys.ENTER).perform();
    }

    private String role() {
        Object r = ((JavascriptExecutor) driver).executeScript("return document.body ? document.body.dataset.role : null;");
        return r == null ? null : r.toString();
    }

    /**
     * The visible text of the element with {@code id}, or "" while there is none. Read in one script
     * call: the port list is redrawn whenever an event arrives, so an element found by one WebDriver
     * call can be gone (stale) by the next.
     */
    private String text(String id) {
        Object r = ((JavascriptExecutor) driver).executeScript(
                "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';", id);
        return r == null ? "" : r.toString();
    }

    private long js(String expr) {
        return ((Number) ((JavascriptExecutor) driver).executeScript("return " + expr + ";")).longValue();
    }

    private Path screenshot(String name) throws IOException {
        Path out = Path.of(System.getProperty("vportd.root", "."), "integration-tests/target", name);
        Files.createDirectories(out.getParent());
        Files.copy(((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE).toPath(), out,
                StandardCopyOption.REPLACE_EXISTING);
        return out;
    }

    @Test
    @Timeout(1500)
    void aRealBrowserUsesAGuestConsole() throws Exception {
        Path token = dir.resolve("web.token");
        String secret = "it-token-" + Long.toHexString(System.nanoTime()) + "-0123456789";
        Files.writeString(token, secret + "\n");
        Files.setPosixFilePermissions(token, PosixFilePermissions.fromString("rw-------"));
        Path vhost = dir.resolve("vportd.sock");
        daemon = VportdProcess.start("web", vhost, List.of("--max-ports", "4",
                "--web-listen", "127.0.0.1:0", "--web-token-file", token.toString(),
                "--port", "nr=0,console,null", "--port", "nr=1,console,web",
                "--port", "nr=2,name=org.test.web,null"), Duration.ofSeconds(30));
        Matcher m = Pattern.compile("web console at http://127\\.0\\.0\\.1:(\\d+)/")
                .matcher(daemon.awaitLog("web console at", Duration.ofSeconds(30)));
        assertTrue(m.find(), daemon.log());
        int port = Integer.parseInt(m.group(1));
        String base = "http://127.0.0.1:" + port;
        guest = Guest.builder()
                .name("vportd-web")
                .scenario(GuestScripts.script("""
                        [ -c /dev/hvc1 ] || fail "no /dev/hvc1"
                        echo "%s" > /dev/hvc1
                        mark shell
                        PS1='guest$ ' sh -i </dev/hvc1 >/dev/hvc1 2>&1
                        mark shell-ended
                        """.formatted(BANNER)))
                .qemuArgs(VportdDevice.qemuArgs(vhost, 4))
                .socketDir(dir)
                .memoryMiB(256)
                .timeout(Duration.ofSeconds(1200))
                .start();
        guest.awaitMark("shell", STEP);

        // No session, a foreign Origin: refused before any browser is involved.
        assertEquals(401, status(port, "GET /d/0/ HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\n\r\n"));

        driver = browser();
        driver.get(base + "/");
        driver.findElement(By.id("token")).sendKeys(secret);
        driver.findElement(By.id("login")).click();
        try {
            Await.until("the port list", STEP, () -> !text("port-2").isEmpty());
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; the browser is at " + driver.getCurrentUrl() + " showing:\n"
                    + driver.getPageSource() + "\nvportd:\n" + daemon.log(), e);
        }
        String row1 = text("port-1");
        assertTrue(row1.contains("yes") && row1.contains("web"), "port 1 is a web console: " + row1);
        assertTrue(text("port-2").contains("org.test.web"));
        assertEquals("0", text("device").strip());
        Await.until("the guest's open state on the list", STEP,
                () -> text("port-1").contains("open"));
        screenshot("web-console-ports.png");

        Cookie session = driver.manage().getCookieNamed("vportd_session");
        assertTrue(session != null && session.isHttpOnly(), "an HttpOnly session cookie");
        String cookie = "vportd_session=" + session.getValue();
        assertEquals(403, status(port, upgrade(port, "/ws/d/0/port/1", cookie, "http://evil.example")));
        assertEquals(401, status(port, upgrade(port, "/ws/d/0/port/1", null, base)));
        assertFalse(driver.getCurrentUrl().contains(secret), "the token is in no URL");

        // hvc1's terminal: the replay ring first, then the shell.
        driver.get(base + "/d/0/port/1");
        Await.until("the interactive role", STEP, () -> "writer".equals(role()));
        Await.until("the guest's boot banner from the replay ring", STEP, () -> buffer().contains(BANNER));
        type("echo $((6*7))");
        Await.until("42 in the terminal", STEP, () -> hasLine("42") || hasLine("guest$ 42"));
        screenshot("web-console.png");

        // Resize the window: the terminal refits, the guest's tty follows.
        long cols0 = js("window.vportdTerm.cols");
        driver.manage().window().setSize(new Dimension(760, 520));
        Await.until("the terminal to refit", STEP, () -> js("window.vportdTerm.cols") != cols0);
        long cols = js("window.vportdTerm.cols");
        long rows = js("window.vportdTerm.rows");
        String want = rows + " " + cols;
        Await.until("stty size to say " + want, STEP, () -> {
            type("stty size");
            return awaitLine(want, Duration.ofSeconds(20));
        });

        // A second tab, read-only: it sees the output, and its typing never reaches the guest.
        String writerTab = driver.getWindowHandle();
        driver.switchTo().newWindow(WindowType.TAB);
        driver.get(base + "/d/0/port/1?role=view");
        String viewerTab = driver.getWindowHandle();
        Await.until("the read-only role", STEP, () -> "viewer".equals(role()));
        Await.until("the viewer's replay", STEP, () -> hasLine(want));
        type("echo viewer-typed-$((2+3))");
        driver.switchTo().window(writerTab);
        type("echo writer-typed-$((3+4))");
        Await.until("the writer's output", STEP, () -> hasLine("writer-typed-7"));
        driver.switchTo().window(viewerTab);
        Await.until("the viewer sees the writer's output", STEP, () -> hasLine("writer-typed-7"));
        assertFalse(buffer().contains("viewer-typed"), "the viewer's keys were not echoed by the guest");
        driver.switchTo().window(writerTab);
        assertFalse(buffer().contains("viewer-typed"), "the guest never got the viewer's keys");

        type("exit");
        guest.awaitMark("shell-ended", STEP);
        guest.awaitExit().assertSucceeded();
        String metrics = daemon.log();
        System.out.println("[web] screenshots in integration-tests/target/web-console*.png");
        assertFalse(metrics.contains("web console: a browser sent"), "the browser sent nothing malformed:\n" + metrics);
    }

    /** Polls the buffer for {@code line} up to {@code within} (then the caller types again). */
    private boolean awaitLine(String line, Duration within) {
        try {
            Await.until(line, within, () -> hasLine(line));
            return true;
        } catch (AssertionError e) {
            return false;
        }
    }

    static String upgrade(int port, String path, String cookie, String origin) {
        return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nUpgrade: websocket\r\n"
                + "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
                + (cookie == null ? "" : "Cookie: " + cookie + "\r\n")
                + (origin == null ? "" : "Origin: " + origin + "\r\n") + "\r\n";
    }

    /** The status code vportd answers {@code request} with. */
    static int status(int port, String request) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            out.write(request.getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            InputStream in = s.getInputStream();
            byte[] head = new byte[12];
            int n = 0;
            while (n < 12) {
                int r = in.read(head, n, 12 - n);
                if (r < 0) {
                    throw new IOException("no status line");
                }
                n += r;
            }
            return Integer.parseInt(new String(head, 9, 3, StandardCharsets.ISO_8859_1));
        }
    }
}
