package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.sys.Epoll;
import io.vportd.sys.EventFd;
import io.vportd.sys.Fd;
import io.vportd.vhost.QueueSetup;
import io.vportd.vring.Chain;
import io.vportd.vring.SplitQueue;
import io.vportd.vring.testing.GuestRam;
import io.vportd.vring.testing.RingDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * When generic-port transmit completions reach the guest (issue 14): counted in ring slots, handed
 * back when the guest's burst is over once a batch worth an interrupt has gathered, at once when
 * half the ring waits, otherwise after the linger. The linger's clock is held still, so every
 * publication here comes from a rule, none from time passing.
 */
class TransmitPublishTest {

    static final int RING = 256;

    private final QueueMap map = new QueueMap(2);
    private final int tx = map.transmitQueue(1);
    private Fd epoll;
    private Fd kick;
    private Fd call;
    private GuestRam ram;
    private RingDriver ring;
    private QueueTable queues;
    private SplitQueue q;
    private Chain chain;
    private long now = 1_000;

    @BeforeEach
    void setUp() throws Exception {
        epoll = Epoll.create();
        kick = EventFd.create(0, EventFd.EFD_NONBLOCK);
        call = EventFd.create(0, EventFd.EFD_NONBLOCK);
        ram = new GuestRam(64L << 20, 1);
        ring = new RingDriver(ram, RING, true);
        queues = new QueueTable(map, epoll.fd(), new PortRuntime[2], new DirtySet(3), null, new DeviceCounters());
        queues.clock = () -> now;
        queues.setMemory(ram.memory());
        queues.start(tx, new QueueSetup(tx, RING, ring.descSegment(), ring.availSegment(), ring.usedSegment(), 0,
                kick.fd(), call.fd(), true, ram.memory()));
        q = queues.get(tx);
        chain = q.newChain();
    }

    @AfterEach
    void tearDown() {
        chain.close();
        queues.stopAll();
        ring.close();
        ram.close();
        kick.closeQuietly();
        call.closeQuietly();
        epoll.closeQuietly();
    }

    /** The guest offers {@code chains} chains of {@code descriptors} descriptors each; the device takes them all. */
    private void takeChains(int chains, int descriptors) {
        byte[][] pieces = new byte[descriptors][];
        for (int i = 0; i < descriptors; i++) {
            pieces[i] = new byte[] {(byte) i};
        }
        for (int c = 0; c < chains; c++) {
            ring.addOutChain(pieces);
            assertEquals(SplitQueue.POPPED, q.pop(chain));
            assertEquals(descriptors, chain.ringSlots());
            q.pushUsed(chain.head(), 0);
            queues.completedTransmit(tx, chain.ringSlots());
        }
    }

    @Test
    void longChainsComeBackWhenTheRingRunsDryAlthoughFewerThan32Chains() {
        takeChains(4, 32); // 128 slots: half the ring
        queues.publishDue();
        assertEquals(4, ring.usedIdx(), "half the ring's slots wait: published at once");
        takeChains(1, 32);
        queues.publishDue();
        assertEquals(4, ring.usedIdx(), "32 slots while the burst goes on: they wait");
        queues.transmitIdle(tx);
        queues.publishDue();
        assertEquals(5, ring.usedIdx(), "the burst is over and 32 slots wait: published");
        assertFalse(queues.lingering());
    }

    @Test
    void fewShortChainsStillGatherAcrossBurstsThenGoAtTheBatch() {
        takeChains(8, 1);
        queues.transmitIdle(tx);
        queues.publishDue();
        assertEquals(0, ring.usedIdx(), "8 one-slot chains are no batch: the guest is not interrupted for them");
        assertTrue(queues.lingering());
        takeChains(24, 1);
        queues.publishDue();
        assertEquals(0, ring.usedIdx(), "32 slots, but the burst goes on");
        queues.transmitIdle(tx);
        queues.publishDue();
        assertEquals(32, ring.usedIdx(), "burst over with 32 slots waiting");
    }

    @Test
    void aLoneChainWaitsForTheLinger() {
        takeChains(1, 1);
        queues.transmitIdle(tx);
        queues.publishDue();
        assertEquals(0, ring.usedIdx());
        now += 999_999;
        queues.publishDue();
        assertEquals(0, ring.usedIdx());
        now += 1;
        queues.publishDue();
        assertEquals(1, ring.usedIdx(), "published 1 ms after it began to wait");
    }

    @Test
    void theRuleInATable() {
        // waiting slots, burst over, ring size -> published now
        Object[][] cases = {
            {127, false, 256, false}, {128, false, 256, true}, {31, true, 256, false}, {32, true, 256, true},
            {8, true, 32, true}, {7, true, 32, false}, {16, false, 32, true}, {1, true, 1, true}, {1, false, 2, true},
            {1, true, 4, true}, {0, true, 256, false},
        };
        for (Object[] c : cases) {
            assertEquals(c[3], QueueTable.transmitDue((int) c[0], (boolean) c[1], (int) c[2]),
                    () -> c[0] + " slots, burst over " + c[1] + ", ring " + c[2]);
        }
    }
}
