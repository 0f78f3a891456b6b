package io.vportd.console.control;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QueueMapTest {

    @ParameterizedTest(name = "port {0} of {1}: rx {2}, tx {3}")
    @CsvSource({
            "0, 1, 0, 1",
            "0, 31, 0, 1",
            "1, 31, 4, 5",
            "2, 31, 6, 7",
            "30, 31, 62, 63",
            "510, 511, 1022, 1023",
            "31, 31, -1, -1",
            "-1, 31, -1, -1",
            "1, 1, -1, -1",
            "0, 0, -1, -1"})
    void portToQueues(int port, int maxPorts, int rx, int tx) {
        assertEquals(rx, QueueMap.rxQueue(port, maxPorts));
        assertEquals(tx, QueueMap.txQueue(port, maxPorts));
    }

    @Test
    void everyQueueMapsBackExactlyOnce() {
        for (int maxPorts : new int[] {1, 2, 31, 511, 0x8000}) {
            int count = QueueMap.queueCount(maxPorts);
            assertEquals(2 * (maxPorts + 1), count);
            Set<Integer> seen = new HashSet<>();
            for (int port = 0; port < maxPorts; port++) {
                int rx = QueueMap.rxQueue(port, maxPorts);
                int tx = QueueMap.txQueue(port, maxPorts);
                assertTrue(rx >= 0 && rx < count && tx >= 0 && tx < count);
                assertTrue(QueueMap.isRx(rx));
                assertFalse(QueueMap.isRx(tx));
                assertEquals(port, QueueMap.portOf(rx, maxPorts));
                assertEquals(port, QueueMap.portOf(tx, maxPorts));
                assertTrue(seen.add(rx) && seen.add(tx));
            }
            assertTrue(seen.add(QueueMap.CONTROL_RX) && seen.add(QueueMap.CONTROL_TX));
            assertEquals(count, seen.size());
            assertEquals(-1, QueueMap.portOf(QueueMap.CONTROL_RX, maxPorts));
            assertEquals(-1, QueueMap.portOf(QueueMap.CONTROL_TX, maxPorts));
            assertEquals(-1, QueueMap.portOf(count, maxPorts));
            assertEquals(-1, QueueMap.portOf(-1, maxPorts));
        }
        assertTrue(QueueMap.isRx(QueueMap.CONTROL_RX));
        assertFalse(QueueMap.isRx(-2));
        assertEquals(-1, QueueMap.queueCount(0));
        assertEquals(-1, QueueMap.queueCount(0x8001));
    }
}
