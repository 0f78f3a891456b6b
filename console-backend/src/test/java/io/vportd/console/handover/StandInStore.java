package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vportd.sys.Fd;
import io.vportd.sys.Io;
import io.vportd.sys.ListenFds;
import io.vportd.sys.MemFd;
import io.vportd.sys.UnixSockets;
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

/**
 * A stand-in for systemd's descriptor store in tests: a datagram socket that keeps what
 * {@code FDSTORE=1} sends (one descriptor per name, always {@code FDPOLL=0} from vportd) and
 * drops what {@code FDSTOREREMOVE=1} names, logging every message.
 */
final class StandInStore {
    final Fd socket;
    final Map<String, Fd> held = new LinkedHashMap<>();
    final List<String> log = new ArrayList<>();

    StandInStore(Path path) throws Exception {
        socket = UnixSockets.bindDatagram(path.toString());
        Io.setNonBlocking(socket.fd(), true);
    }

    void pump() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096);
            while (true) {
                int[] fds = new int[UnixSockets.MAX_RECV_FDS];
                Arrays.fill(fds, -1);
                long n = UnixSockets.recvWithFds(socket.fd(), buf, buf.byteSize(), fds);
                if (n <= 0) {
                    return;
                }
                String text = new String(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                log.add(text);
                String name = text.replaceAll("(?s).*FDNAME=([^\n]*).*", "$1");
                if (text.startsWith("FDSTORE=1")) {
                    assertTrue(text.contains("FDPOLL=0"), text);
                    assertFalse(held.containsKey(name), "a name is stored once: " + name);
                    held.put(name, Fd.adopt(fds[0]));
                } else if (text.startsWith("FDSTOREREMOVE=1")) {
                    Fd gone = held.remove(name); // systemd ignores names it does not hold
                    if (gone != null) {
                        gone.closeQuietly();
                    }
                }
            }
        }
    }

    boolean holdsSameFile(int fd) throws Exception {
        for (Fd f : held.values()) {
            if (Io.fileId(f.fd()).equals(Io.fileId(fd)) && Io.sameOpenFile(f.fd(), fd)) {
                return true;
            }
        }
        return false;
    }

    JsonNode checkpoint() throws Exception {
        List<String> states = held.keySet().stream().filter(n -> n.startsWith(Checkpointer.STATE_PREFIX)).toList();
        assertEquals(1, states.size(), "one checkpoint in the store: " + held.keySet());
        Fd memfd = held.get(states.getFirst());
        long size = MemFd.size(memfd.fd());
        try (Arena a = Arena.ofConfined()) {
            return new ObjectMapper().readTree(MemFd.mapShared(memfd.fd(), 0, size, a).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    void close() {
        held.values().forEach(Fd::closeQuietly);
        socket.closeQuietly();
    }

    /** Everything held, handed over as a service manager passes it at the next start (the store is empty after). */
    ListenFds passBack() {
        Map<String, List<Fd>> byName = new LinkedHashMap<>();
        held.forEach((name, fd) -> byName.put(name, List.of(fd)));
        held.clear();
        return ListenFds.of(byName);
    }
}
