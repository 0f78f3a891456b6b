package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class QueueMapTest {

    @Test
    void knownLayout() {
        QueueMap m = new QueueMap(8);
        assertEquals(18, m.queueCount());
        assertEquals(0, m.receiveQueue(0));
        assertEquals(1, m.transmitQueue(0));
        assertEquals(4, m.receiveQueue(1));
        assertEquals(5, m.transmitQueue(1));
        assertEquals(16, m.receiveQueue(7));
        assertEquals(17, m.transmitQueue(7));
        assertEquals(QueueMap.CONTROL, m.portOf(2));
        assertEquals(QueueMap.CONTROL, m.portOf(3));
        assertEquals(QueueMap.INVALID, m.receiveQueue(8));
        assertEquals(QueueMap.INVALID, m.transmitQueue(-1));
        assertEquals(QueueMap.INVALID, m.portOf(18));
        assertEquals(QueueMap.INVALID, m.portOf(-1));
    }

    @Test
    void everyQueueMapsBackToItsPortExhaustively() {
        for (int max = 1; max <= QueueMap.MAX_PORTS; max++) {
            QueueMap m = new QueueMap(max);
            Set<Integer> seen = new HashSet<>();
            for (int p = 0; p < max; p++) {
                int rx = m.receiveQueue(p);
                int tx = m.transmitQueue(p);
                assertEquals(p, m.portOf(rx));
                assertEquals(p, m.portOf(tx));
                assertTrue(QueueMap.isDeviceWrites(rx));
                assertTrue(!QueueMap.isDeviceWrites(tx));
                assertTrue(seen.add(rx) && seen.add(tx));
            }
            assertTrue(seen.add(QueueMap.CONTROL_RX) && seen.add(QueueMap.CONTROL_TX));
            // Every queue index is used exactly once.
            assertEquals(m.queueCount(), seen.size());
            assertTrue(m.queueCount() <= QueueMap.MAX_QUEUES);
        }
    }

    @Test
    void refusesSizesQemuCannotCreate() {
        assertThrows(IllegalArgumentException.class, () -> new QueueMap(0));
        assertThrows(IllegalArgumentException.class, () -> new QueueMap(QueueMap.MAX_PORTS + 1));
        assertEquals(1024, new QueueMap(QueueMap.MAX_PORTS).queueCount());
    }
}
