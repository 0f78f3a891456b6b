package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.PortSpecParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Hot-add, hot-remove and resize on a running data plane (no guest attached): rules, refusals and events. */
@Timeout(30)
class DataPlaneManagementTest {

    @TempDir
    Path dir;
    private DataPlane dp;
    private final List<PortEvent> events = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws IOException {
        dp = new DataPlane(new QueueMap(8), List.of(PortSpecParser.parse("nr=0,console,name=con,null")),
                ConsoleDevice::endpointFor);
        dp.setEventListener(events::add);
        dp.start();
    }

    @AfterEach
    void stop() {
        dp.close();
    }

    private static PortRequestException.Reason refusal(Runnable r) {
        IllegalStateException e = assertThrows(IllegalStateException.class, r::run);
        return assertInstanceOf(PortRequestException.class, e.getCause(), e.toString()).reason();
    }

    /**
     * The files of a removed port's endpoint (socket file, pty link) are removed by the thread that
     * asked for the removal, after the endpoint closed on the data-plane thread: never by the
     * data-plane thread, which must not wait on a file system.
     */
    @Test
    void aRemovedPortsFilesAreDeletedByTheRemoverNotTheDataPlane() throws Exception {
        Path file = Files.createFile(dir.resolve("left.sock"));
        java.util.concurrent.atomic.AtomicReference<String> closedWith = new java.util.concurrent.atomic.AtomicReference<>();
        DataPlane d = new DataPlane(new QueueMap(8), List.of(), c -> new io.vportd.console.endpoint.NullEndpoint() {
            @Override
            public List<Path> detachFiles() {
                return List.of(file);
            }

            @Override
            public void close() {
                closedWith.set(Thread.currentThread().getName() + (Files.exists(file) ? " file still there" : " file gone"));
            }
        });
        d.start();
        try {
            d.addPort(PortSpecParser.parse("nr=4,name=f,null"));
            RemovalReport r = d.removePort(4);
            assertEquals(List.of(file), r.files());
            assertEquals("vportd-dataplane file still there", closedWith.get());
            assertFalse(Files.exists(file), "removed by the remover once removePort returned");
        } finally {
            d.close();
        }
    }

    @Test
    void aRemovedSocketPortLeavesNoSocketFile() {
        Path sock = dir.resolve("hot.sock");
        dp.addPort(PortSpecParser.parse("nr=5,name=hot,socket=" + sock));
        assertTrue(Files.exists(sock));
        assertEquals(List.of(sock), dp.removePort(5).files());
        assertFalse(Files.exists(sock));
    }

    /**
     * Endpoint set-up that blocks (a stalled file system, a slow name lookup) happens on the
     * thread that adds the port: the data plane keeps answering meanwhile (issue 11.9).
     */
    @Test
    void aBlockingEndpointOpenDoesNotStallTheDataPlane() throws Exception {
        java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<String> openedOn = new java.util.concurrent.atomic.AtomicReference<>();
        DataPlane slow = new DataPlane(new QueueMap(8), List.of(), c -> new io.vportd.console.endpoint.NullEndpoint() {
            @Override
            public void open() {
                openedOn.set(Thread.currentThread().getName());
                entered.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        slow.start();
        try {
            java.util.concurrent.CompletableFuture<PortStatus> added = java.util.concurrent.CompletableFuture.supplyAsync(
                    () -> slow.addPort(PortSpecParser.parse("nr=2,name=slow,null")));
            assertTrue(entered.await(10, java.util.concurrent.TimeUnit.SECONDS), "the endpoint started opening");
            long t0 = System.nanoTime();
            assertEquals(List.of(), slow.ports(), "the data plane answers while the endpoint opens");
            assertTrue(System.nanoTime() - t0 < 5_000_000_000L);
            assertFalse(openedOn.get().equals("vportd-dataplane"), "opened on " + openedOn.get());
            release.countDown();
            assertEquals(2, added.get(10, java.util.concurrent.TimeUnit.SECONDS).id());
        } finally {
            release.countDown();
            slow.close();
        }
    }

    @Test
    void anEndpointsOwnCountersAreExportedWhileItsPortExists() throws Exception {
        Path log = dir.resolve("guest.log");
        dp.addPort(PortSpecParser.parse("nr=3,name=log,file=" + log));
        String text = new io.vportd.console.api.DataPlanePorts(dp).metrics();
        assertTrue(text.contains("vportd_port_pump_errors_total{port=\"3\",name=\"log\",direction=\"to-host\"} 0"), text);
        dp.removePort(3);
        text = new io.vportd.console.api.DataPlanePorts(dp).metrics();
        assertFalse(text.contains("vportd_port_pump_errors_total{port=\"3\""), "gone with its port");
    }

    @Test
    void addListRemoveReAddWithEvents() {
        PortStatus s = dp.addPort(PortSpecParser.parse("nr=3,name=three,null"));
        assertEquals(3, s.id());
        assertTrue(s.hostConnected(), "the null endpoint is connected at once");
        assertEquals(List.of(0, 3), dp.ports().stream().map(PortStatus::id).toList());
        assertEquals(List.of("port-added 3 three", "host-connected 3 three"), describe(events));
        events.clear();

        RemovalReport r = dp.removePort(3);
        assertEquals(new RemovalReport(3, "three", 0, 0, 0, false, List.of()), r);
        assertEquals(List.of(0), dp.ports().stream().map(PortStatus::id).toList());
        // No guest ever heard of the port: it is gone at once.
        assertEquals(List.of("port-removed 3 three"), describe(events));

        dp.addPort(PortSpecParser.parse("nr=3,name=three,null"));
        assertEquals(List.of(0, 3), dp.ports().stream().map(PortStatus::id).toList(), "the id is free again");
    }

    @Test
    void refusals() throws IOException {
        dp.addPort(PortSpecParser.parse("nr=3,name=three,null"));
        assertEquals(PortRequestException.Reason.ID_TAKEN, refusal(() -> dp.addPort(PortSpecParser.parse("nr=3,null"))));
        assertEquals(PortRequestException.Reason.NAME_TAKEN,
                refusal(() -> dp.addPort(PortSpecParser.parse("nr=4,name=three,null"))));
        assertEquals(PortRequestException.Reason.ID_OUT_OF_RANGE,
                refusal(() -> dp.addPort(PortSpecParser.parse("nr=8,null"))));
        assertEquals(PortRequestException.Reason.NO_SUCH_PORT, refusal(() -> dp.removePort(5)));
        assertEquals(PortRequestException.Reason.NO_SUCH_PORT, refusal(() -> dp.removePort(-1)));
        assertEquals(PortRequestException.Reason.NOT_CONSOLE, refusal(() -> dp.resize(3, 80, 24)));
        assertEquals(PortRequestException.Reason.INVALID, refusal(() -> dp.resize(0, 0, 24)));
        assertEquals(PortRequestException.Reason.NO_SUCH_PORT, refusal(() -> dp.resize(6, 80, 24)));
        dp.resize(0, 100, 30);

        // An endpoint that cannot start: a socket path that is a regular file.
        Path file = Files.writeString(dir.resolve("not-a-socket"), "x");
        assertEquals(PortRequestException.Reason.ENDPOINT_FAILED,
                refusal(() -> dp.addPort(PortSpecParser.parse("nr=5,name=five,socket=" + file))));
        assertFalse(dp.ports().stream().anyMatch(p -> p.id() == 5), "a failed add leaves nothing behind");
        dp.addPort(PortSpecParser.parse("nr=5,name=five,socket=" + dir.resolve("five.sock")));
        assertTrue(Files.exists(dir.resolve("five.sock")));
        dp.removePort(5);
        assertFalse(Files.exists(dir.resolve("five.sock")), "removal closes the endpoint and its socket file");
    }

    @Test
    void listenerFailureDoesNotBreakTheDataPlane() {
        dp.setEventListener(e -> {
            throw new IllegalStateException("listener bug");
        });
        dp.addPort(PortSpecParser.parse("nr=2,null"));
        assertEquals(2, dp.ports().size());
    }

    private static List<String> describe(List<PortEvent> events) {
        return events.stream().map(e -> e.type() + " " + e.id() + " " + e.name()).toList();
    }

}
