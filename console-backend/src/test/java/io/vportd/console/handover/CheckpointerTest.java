package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.console.cli.PortSpecParser;
import io.vportd.console.control.ControlListener;
import io.vportd.console.control.ControlMachine;
import io.vportd.console.device.DeviceSnapshot;
import io.vportd.console.endpoint.Handed;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.MemFd;
import io.vportd.sys.SdNotify;
import io.vportd.sys.UnixSockets;
import io.vportd.vhost.Session;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The crash-recovery checkpoint against a stand-in for systemd's descriptor store (a datagram
 * socket that keeps what {@code FDSTORE=1} sends and drops what {@code FDSTOREREMOVE=1} names):
 * every descriptor the checkpoint names is stored once under a name of its own, the checkpoint
 * itself is a memfd naming them, an unchanged descriptor keeps its name (no second copy), one
 * nobody names any more leaves the store, and the previous checkpoint is dropped only after the
 * new one is stored.
 */
@Timeout(30)
class CheckpointerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private final List<Fd> owned = new ArrayList<>();

    @AfterEach
    void close() {
        owned.forEach(Fd::closeQuietly);
    }

    private Fd own(Fd f) {
        owned.add(f);
        return f;
    }

    private Fd pairEnd() throws Exception {
        Fd[] p = UnixSockets.pair();
        own(p[1]);
        return own(p[0]);
    }

    private static int dup(Fd f) throws Exception {
        return Io.dup(f.fd()).release();
    }

    private static DeviceSnapshot device(Fd listener, Fd client) throws Exception {
        ControlMachine m = new ControlMachine(4, ControlListener.NONE);
        m.addPort(PortSpecParser.parse("nr=1,name=agent,socket=/tmp/agent.sock"));
        Handed h = new Handed().fd("listener", dup(listener));
        if (client != null) {
            h.fd("peer", dup(client));
        }
        DeviceSnapshot.Port p = new DeviceSnapshot.Port(m.portConfig(1), true, 0, 0, 0, new byte[0], 0, h, new long[0],
                new byte[0]);
        return new DeviceSnapshot(4, m.snapshot(), false, List.of(p), List.of(), System.nanoTime());
    }

    @Test
    void theStoreHoldsExactlyWhatTheNewestCheckpointNames() throws Exception {
        StandInStore store = new StandInStore(dir.resolve("notify"));
        Checkpointer cp = new Checkpointer(SdNotify.forAddress(dir.resolve("notify").toString()),
                new Checkpointer.Daemon("/run/vm/vportd.sock", null, null, false), 0).start();
        try {
            Fd vhostListener = pairEnd();
            Fd[] conn = UnixSockets.pair();
            own(conn[0]);
            own(conn[1]);
            Fd kick = own(EventFd.create(0, 0));
            Fd call = own(EventFd.create(0, 0));
            Fd portListener = pairEnd();
            Fd[] client = UnixSockets.pair();
            own(client[0]);
            own(client[1]);
            List<Session.Replay> replay = List.of(new Session.Replay(12, new byte[8], new int[] {kick.fd()}),
                    new Session.Replay(13, new byte[8], new int[] {call.fd()}));

            cp.sessionChanged(vhostListener.fd(), conn[0].fd(), replay);
            cp.deviceChanged(device(portListener, client[0]));
            assertTrue(cp.awaitIdle(10_000));
            store.pump();
            for (Fd f : List.of(vhostListener, conn[0], kick, call, portListener, client[0])) {
                assertTrue(store.holdsSameFile(f.fd()), "stored: " + f);
            }
            assertEquals(7, store.held.size(), "six descriptors and the checkpoint: " + store.held.keySet());
            JsonNode first = store.checkpoint();
            assertEquals(Checkpointer.FORMAT, first.path("format").asText());
            assertEquals(6, first.path("names").size());
            assertEquals("/run/vm/vportd.sock", first.path("record").path("socketPath").asText());
            int messages = store.log.size();

            // The same descriptors again (the device re-announces them): no new copy, same names.
            cp.deviceChanged(device(portListener, client[0]));
            assertTrue(cp.awaitIdle(10_000));
            store.pump();
            List<String> since = store.log.subList(messages, store.log.size());
            assertEquals(2, since.size(), "only the new checkpoint stored and the old one removed: " + since);
            JsonNode second = store.checkpoint();
            assertEquals(first.path("names"), second.path("names"), "unchanged descriptors keep their names");
            assertNotEquals(first.path("seq"), second.path("seq"));

            // The host client hung up (the device no longer names it): it leaves the store, so its
            // peer sees the end of the connection once vportd closes its own copy too.
            String clientName = second.path("names").get(5).asText();
            cp.deviceChanged(device(portListener, null));
            assertTrue(cp.awaitIdle(10_000));
            store.pump();
            assertFalse(store.held.containsKey(clientName), "the hung-up client left the store");
            assertFalse(store.holdsSameFile(client[0].fd()));
            assertEquals(6, store.held.size(), store.held.keySet()::toString);
            assertTrue(cp.storedNames().stream().noneMatch(clientName::equals));
            assertEquals(3, cp.checkpointsWritten());
        } finally {
            cp.close();
            store.close();
        }
    }

    @Test
    void descriptorsPassedBackAtRecoveryKeepTheirNamesAndStaleOnesLeave() throws Exception {
        StandInStore store = new StandInStore(dir.resolve("notify"));
        Fd kept = own(EventFd.create(0, 0));
        Fd stale = own(EventFd.create(0, 0));
        Fd listener = pairEnd();
        Map<String, Fd> passed = new LinkedHashMap<>();
        passed.put("vportd.f1.1", Io.dup(kept.fd()));
        passed.put("vportd.f1.2", Io.dup(stale.fd()));
        passed.put("vportd.f1.3", Io.dup(listener.fd()));
        passed.put("vportd.state.7", MemFd.create("old"));
        Checkpointer cp = new Checkpointer(SdNotify.forAddress(dir.resolve("notify").toString()),
                new Checkpointer.Daemon("/run/vm/vportd.sock", null, null, false), 2);
        try {
            cp.adoptStore(passed);
            cp.start();
            cp.sessionChanged(listener.fd(), -1, List.of(new Session.Replay(12, new byte[8], new int[] {kept.fd()})));
            cp.deviceChanged(new DeviceSnapshot(4, new ControlMachine(4, ControlListener.NONE).snapshot(), false, List.of(),
                    List.of(), 0));
            assertTrue(cp.awaitIdle(10_000));
            store.pump();
            List<String> stored = store.log.stream().filter(t -> t.startsWith("FDSTORE=1")).toList();
            assertEquals(1, stored.size(), "only the checkpoint is new: the passed-back descriptors keep their names " + stored);
            assertTrue(store.log.contains("FDSTOREREMOVE=1\nFDNAME=vportd.f1.2"), "the stale one leaves: " + store.log);
            assertTrue(store.log.contains("FDSTOREREMOVE=1\nFDNAME=vportd.state.7"), "the old checkpoint leaves: " + store.log);
            assertFalse(store.log.contains("FDSTOREREMOVE=1\nFDNAME=vportd.f1.1"));
            JsonNode c = store.checkpoint();
            assertEquals(List.of("vportd.f1.3", "vportd.f1.1"), List.of(c.path("names").get(0).asText(),
                    c.path("names").get(1).asText()), "the listener and the kick keep the names they came back with");
            assertEquals(2, c.path("recoveries").asLong(), "the recovery count goes into every checkpoint");
        } finally {
            cp.close();
            store.close();
        }
    }
}
