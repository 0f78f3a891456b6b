package io.vportd.console.control;

import io.vportd.console.endpoint.EndpointSpec;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static io.vportd.console.control.ControlMessage.CONSOLE_PORT;
import static io.vportd.console.control.ControlMessage.DEVICE_READY;
import static io.vportd.console.control.ControlMessage.PORT_ADD;
import static io.vportd.console.control.ControlMessage.PORT_NAME;
import static io.vportd.console.control.ControlMessage.PORT_OPEN;
import static io.vportd.console.control.ControlMessage.PORT_READY;
import static io.vportd.console.control.ControlMessage.PORT_REMOVE;
import static io.vportd.console.control.ControlMessage.RESIZE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ControlMachineTest {

    static final int MAX = 8;

    final Recorder rec = new Recorder();
    final ControlMachine m = new ControlMachine(MAX, rec);
    final GuestModel guest = new GuestModel(MAX);
    final byte[] out = new byte[ControlMessage.MAX_MESSAGE_SIZE];

    // ------------------------------------------------------------------ helpers

    static PortConfig generic(int id) {
        return PortConfig.generic(id, new EndpointSpec.Null());
    }

    static PortConfig named(int id, String name) {
        return new PortConfig(id, name, false, 0, 0, null, new EndpointSpec.Null());
    }

    static PortConfig console(int id, String name, int cols, int rows, ResizeOrder order) {
        return new PortConfig(id, name, true, cols, rows, order, new EndpointSpec.Null());
    }

    void send(int id, int event, int value) {
        byte[] b = new byte[8];
        ControlMessage.encodeHeader(b, 0, id, event, value);
        m.onGuestMessage(b, 0, b.length);
    }

    void deviceReady() {
        send(ControlMessage.NO_ID, DEVICE_READY, 1);
    }

    /** Polls everything, checking each message against the guest model. */
    List<ControlMessage> drain() {
        List<ControlMessage> msgs = new ArrayList<>();
        for (int i = 0; m.hasOutgoing(); i++) {
            assertTrue(i < 100_000, "outgoing never drains");
            int expected = m.peekOutgoingLength();
            int len = m.pollOutgoing(out);
            assertEquals(expected, len, "peekOutgoingLength disagrees with pollOutgoing");
            msgs.add(guest.accept(out, len));
        }
        assertEquals(0, m.pollOutgoing(out));
        assertEquals(0, m.peekOutgoingLength());
        return msgs;
    }

    static ControlMessage msg(int id, int event, int value) {
        return new ControlMessage(id, event, value);
    }

    static ControlMessage name(int id, String name) {
        return new ControlMessage(id, PORT_NAME, 1, name.getBytes(StandardCharsets.UTF_8));
    }

    /** A RESIZE as a port with the default field order sends it. */
    static ControlMessage sized(int id, int cols, int rows) {
        return PortConfig.DEFAULT_RESIZE_ORDER == ResizeOrder.COLS_ROWS ? resize(id, cols, rows) : resize(id, rows, cols);
    }

    static ControlMessage resize(int id, int first, int second) {
        return new ControlMessage(id, RESIZE, 0,
                new byte[] {(byte) first, (byte) (first >>> 8), (byte) second, (byte) (second >>> 8)});
    }

    /** DEVICE_READY, then PORT_READY for every port the device adds; returns nothing pending. */
    void bringUp() {
        deviceReady();
        for (ControlMessage a : drain()) {
            assertEquals(PORT_ADD, a.event());
            send(a.id(), PORT_READY, 1);
        }
    }

    // ------------------------------------------------------------------ DEVICE_READY flow

    @Test
    void nothingIsAnnouncedBeforeDeviceReady() {
        m.addPort(generic(2));
        m.hostConnected(2);
        m.resize(2, 80, 25);
        assertFalse(m.hasOutgoing());
        assertEquals(0, m.pollOutgoing(out));
        assertEquals(PortState.CONFIGURED, m.portState(2));
    }

    @Test
    void deviceReadyAddsEveryPortInIdOrder() {
        m.addPort(generic(5));
        m.addPort(generic(1));
        m.addPort(generic(3));
        deviceReady();
        assertEquals(List.of("deviceReady true"), rec.take());
        assertEquals(List.of(msg(1, PORT_ADD, 1), msg(3, PORT_ADD, 1), msg(5, PORT_ADD, 1)), drain());
        assertEquals(PortState.ADDED, m.portState(1));
        assertTrue(m.isDeviceReady());
    }

    @Test
    void portAddedAfterDeviceReadyIsAddedAtOnce() {
        deviceReady();
        assertEquals(List.of(), drain());
        m.addPort(generic(4));
        assertEquals(PortState.CONFIGURED, m.portState(4));
        assertEquals(List.of(msg(4, PORT_ADD, 1)), drain());
        assertEquals(PortState.ADDED, m.portState(4));
    }

    @Test
    void deviceReadyZeroIsReportedAndAnnouncesNothing() {
        m.addPort(generic(0));
        send(ControlMessage.NO_ID, DEVICE_READY, 0);
        assertEquals(List.of("deviceReady false"), rec.take());
        assertFalse(m.hasOutgoing());
        assertFalse(m.isDeviceReady());
        assertEquals(1, m.stats().deviceReadyFailed());
    }

    @Test
    void repeatedDeviceReadyNeverAddsAPortTwice() {
        m.addPort(generic(0));
        deviceReady();
        assertEquals(List.of(msg(0, PORT_ADD, 1)), drain());
        deviceReady();
        send(0, PORT_READY, 1);
        deviceReady();
        assertEquals(List.of(), drain());
        assertEquals(2, m.stats().duplicateDeviceReady());
        assertEquals(List.of("deviceReady true", "portReady 0"), rec.take());
    }

    // ------------------------------------------------------------------ PORT_READY announcements

    @Test
    void consolePortIsAnnouncedInQemuOrder() {
        m.setSizeNegotiated(true);
        m.addPort(console(0, "org.example.console", 120, 40, ResizeOrder.ROWS_COLS));
        m.hostConnected(0);
        deviceReady();
        assertEquals(List.of(msg(0, PORT_ADD, 1)), drain());
        send(0, PORT_READY, 1);
        assertEquals(List.of("deviceReady true", "portReady 0"), rec.take());
        assertEquals(List.of(
                msg(0, CONSOLE_PORT, 1),
                name(0, "org.example.console"),
                resize(0, 40, 120),               // rows first: the default order
                msg(0, PORT_OPEN, 1)), drain());
        assertEquals(PortState.READY, m.portState(0));
    }

    @Test
    void resizeFollowsThePortsFieldOrder() {
        m.setSizeNegotiated(true);
        m.addPort(console(1, null, 132, 43, ResizeOrder.COLS_ROWS));
        bringUp();
        List<ControlMessage> msgs = drain();
        assertEquals(List.of(msg(1, CONSOLE_PORT, 1), resize(1, 132, 43)), msgs);
        assertEquals(132, msgs.get(1).resizeCols(ResizeOrder.COLS_ROWS));
        assertEquals(43, msgs.get(1).resizeRows(ResizeOrder.COLS_ROWS));
        assertEquals(PortConfig.DEFAULT_RESIZE_ORDER, ResizeOrder.COLS_ROWS);
    }

    @Test
    void resizeRequiresFeatureConsoleAndKnownSize() {
        m.addPort(console(0, null, 80, 24, null));       // F_SIZE not negotiated yet
        m.addPort(new PortConfig(1, null, false, 80, 24, null, new EndpointSpec.Null())); // not a console
        m.addPort(console(2, null, 0, 0, null));         // size unknown
        bringUp();
        assertEquals(List.of(msg(0, CONSOLE_PORT, 1), msg(2, CONSOLE_PORT, 1)), drain());
        assertTrue(m.resize(1, 100, 30));
        assertEquals(List.of(), drain());
        m.setSizeNegotiated(true);                        // now port 0's known size goes out
        assertEquals(List.of(sized(0, 80, 24)), drain());
        assertTrue(m.resize(2, 100, 0));                  // half known: still nothing
        assertEquals(List.of(), drain());
        assertTrue(m.resize(2, 100, 50));
        assertEquals(List.of(sized(2, 100, 50)), drain());
        assertTrue(m.resize(2, 100, 50));                 // unchanged: nothing
        assertEquals(List.of(), drain());
        m.setSizeNegotiated(false);
        assertTrue(m.resize(0, 81, 25));
        assertEquals(List.of(), drain());
    }

    @Test
    void resizeRejectsBadValuesAndUnknownPorts() {
        m.addPort(console(0, null, 0, 0, null));
        assertFalse(m.resize(0, -1, 10));
        assertFalse(m.resize(0, 10, 0x10000));
        assertFalse(m.resize(7, 10, 10));
        assertFalse(m.resize(99, 10, 10));
        assertFalse(m.resize(-1, 10, 10));
    }

    @Test
    void portReadyZeroFailsThePort() {
        m.addPort(named(3, "a"));
        m.hostConnected(3);
        deviceReady();
        drain();
        send(3, PORT_READY, 0);
        assertEquals(PortState.FAILED, m.portState(3));
        assertEquals(List.of("deviceReady true", "portFailed 3"), rec.take());
        assertEquals(List.of(), drain());
        assertEquals(1, m.stats().portReadyFailed());
        send(3, PORT_READY, 0);                           // no second callback
        assertEquals(List.of(), rec.take());
        send(3, PORT_READY, 1);                           // a late success is honoured
        assertEquals(List.of("portReady 3"), rec.take());
        assertEquals(List.of(name(3, "a"), msg(3, PORT_OPEN, 1)), drain());
    }

    @Test
    void repeatedPortReadyReannouncesWithoutASecondCallback() {
        m.setSizeNegotiated(true);
        m.addPort(console(0, "c", 80, 24, null));
        m.hostConnected(0);
        bringUp();
        assertEquals(4, drain().size());
        rec.take();
        send(0, PORT_READY, 1);
        assertEquals(List.of(msg(0, CONSOLE_PORT, 1), name(0, "c"), sized(0, 80, 24), msg(0, PORT_OPEN, 1)),
                drain());
        assertEquals(List.of(), rec.take());
        assertEquals(1, m.stats().duplicateReady());
    }

    // ------------------------------------------------------------------ host connect / guest open

    @Test
    void hostConnectBeforeReadyIsSentAtReady() {
        m.addPort(generic(1));
        assertTrue(m.hostConnected(1));
        deviceReady();
        assertEquals(List.of(msg(1, PORT_ADD, 1)), drain());
        assertTrue(m.hostDisconnected(1));                // changes before READY only update the flag
        assertTrue(m.hostConnected(1));
        assertEquals(List.of(), drain());
        send(1, PORT_READY, 1);
        assertEquals(List.of(msg(1, PORT_OPEN, 1)), drain());
    }

    @Test
    void hostDisconnectedAtReadySendsNothing() {
        m.addPort(generic(1));
        bringUp();
        assertEquals(List.of(), drain());
    }

    @Test
    void hostConnectAfterReadySendsOpenOnlyOnChange() {
        m.addPort(generic(2));
        bringUp();
        assertTrue(m.hostConnected(2));
        assertTrue(m.hostConnected(2));
        assertEquals(List.of(msg(2, PORT_OPEN, 1)), drain());
        assertTrue(m.hostConnected(2));
        assertEquals(List.of(), drain());
        assertTrue(m.hostDisconnected(2));
        assertEquals(List.of(msg(2, PORT_OPEN, 0)), drain());
        assertTrue(m.isHostConnected(2) == false);
        assertFalse(m.hostConnected(6));                  // no such port
        assertFalse(m.hostDisconnected(-3));
    }

    @Test
    void guestOpenAndCloseAreReportedOnlyOnChange() {
        m.addPort(generic(1));
        bringUp();
        rec.take();
        send(1, PORT_OPEN, 1);
        send(1, PORT_OPEN, 1);
        assertTrue(m.isGuestOpen(1));
        send(1, PORT_OPEN, 0);
        send(1, PORT_OPEN, 0);
        assertFalse(m.isGuestOpen(1));
        assertEquals(List.of("guestOpened 1", "guestClosed 1"), rec.take());
        assertEquals(List.of(), drain());                 // guest opens are not echoed
    }

    @Test
    void guestOpenForPortNotReadyIsRecordedAndCounted() {
        m.addPort(generic(1));
        deviceReady();
        drain();
        rec.take();
        send(1, PORT_OPEN, 1);
        assertTrue(m.isGuestOpen(1));
        assertEquals(List.of("guestOpened 1"), rec.take());
        assertEquals(1, m.stats().openBeforeReady());
    }

    @Test
    void listenerMayCallBackIntoTheMachine() {
        ControlMachine[] holder = new ControlMachine[1];
        ControlMachine mm = new ControlMachine(4, new ControlListener() {
            @Override public void guestOpened(int id) { holder[0].hostConnected(id); }
            @Override public void guestClosed(int id) { holder[0].hostDisconnected(id); }
            @Override public void portReady(int id) { holder[0].resize(id, 90, 30); }
            @Override public void portFailed(int id, String why) { }
            @Override public void deviceReady(boolean ok) { holder[0].addPort(generic(3)); }
        });
        holder[0] = mm;
        mm.setSizeNegotiated(true);
        byte[] b = new byte[8];
        ControlMessage.encodeHeader(b, 0, -1, DEVICE_READY, 1);
        mm.onGuestMessage(b, 0, 8);
        assertEquals(PortState.CONFIGURED, mm.portState(3));
        assertEquals(8, mm.pollOutgoing(out));
        ControlMessage.encodeHeader(b, 0, 3, PORT_READY, 1);
        mm.onGuestMessage(b, 0, 8);
        ControlMessage.encodeHeader(b, 0, 3, PORT_OPEN, 1);
        mm.onGuestMessage(b, 0, 8);
        assertTrue(mm.isHostConnected(3));
        assertEquals(1, mm.pendingMessageCount());       // PORT_OPEN 1 (port 3 is not a console)
    }

    // ------------------------------------------------------------------ tolerance

    @Test
    void messagesForUnknownPortsAreCountedAndIgnored() {
        m.addPort(generic(0));
        bringUp();
        rec.take();
        send(5, PORT_READY, 1);
        send(6, PORT_OPEN, 1);
        assertEquals(2, m.stats().unknownPort());
        assertEquals(List.of(), rec.take());
        assertEquals(List.of(), drain());
        assertNull(m.portState(5));
    }

    @Test
    void hibernationRestoreWithoutDeviceReady() {
        m.setSizeNegotiated(true);
        m.addPort(console(0, "con", 80, 24, null));
        m.addPort(named(1, "data"));
        m.hostConnected(0);
        bringUp();
        drain();
        send(1, PORT_OPEN, 1);
        rec.take();

        m.deviceReset();                                  // the guest hibernates; the device is reset
        assertEquals(List.of("guestClosed 1"), rec.take());
        assertFalse(m.isDeviceReady());
        assertEquals(PortState.CONFIGURED, m.portState(0));
        m.addPort(generic(4));                            // added while the guest sleeps
        assertFalse(m.hasOutgoing());

        // restored guest: PORT_READY (and PORT_OPEN for open ports) but no DEVICE_READY
        send(0, PORT_READY, 1);
        assertTrue(m.isDeviceReady());
        assertEquals(List.of("deviceReady true", "portReady 0"), rec.take());
        // the device may poll before the guest's other PORT_READYs arrive: port 1 must not be re-added
        List<ControlMessage> msgs = drain();               // the guest model still has ports 0 and 1
        assertEquals(List.of(msg(0, CONSOLE_PORT, 1), msg(4, PORT_ADD, 1), name(0, "con"), sized(0, 80, 24),
                msg(0, PORT_OPEN, 1)), msgs);
        assertEquals(PortState.CONFIGURED, m.portState(1));
        send(1, PORT_READY, 1);
        send(1, PORT_OPEN, 1);
        assertEquals(List.of("portReady 1", "guestOpened 1"), rec.take());
        assertEquals(List.of(name(1, "data")), drain());
        assertEquals(2, m.stats().readyWithoutDeviceReady());
        assertEquals(PortState.READY, m.portState(1));
    }

    @Test
    void resetThenFreshDriverStartsOver() {
        m.addPort(generic(0));
        m.addPort(generic(1));
        m.hostConnected(1);
        bringUp();
        drain();
        m.hostDisconnected(1);                            // pending PORT_OPEN 0 is lost with the reset
        m.deviceReset();
        assertFalse(m.hasOutgoing());
        assertTrue(m.isHostConnected(1) == false);
        m.hostConnected(1);
        guest.reset();                                    // a fresh driver
        deviceReady();
        assertEquals(List.of(msg(0, PORT_ADD, 1), msg(1, PORT_ADD, 1)), drain());
        send(1, PORT_READY, 1);
        assertEquals(List.of(msg(1, PORT_OPEN, 1)), drain());
        assertEquals(1, m.stats().resets());
    }

    // ------------------------------------------------------------------ add / remove

    @Test
    void addPortRejectsBadIdsDuplicatesAndNameClashes() {
        m.addPort(named(1, "x"));
        assertThrows(IllegalArgumentException.class, () -> m.addPort(generic(MAX)));
        assertThrows(IllegalArgumentException.class, () -> m.addPort(generic(1)));
        assertThrows(IllegalArgumentException.class, () -> m.addPort(named(2, "x")));
        assertThrows(IllegalArgumentException.class, () -> new ControlMachine(0, ControlListener.NONE));
        assertThrows(IllegalArgumentException.class, () -> new ControlMachine(0x8001, ControlListener.NONE));
        new ControlMachine(0x8000, ControlListener.NONE);
    }

    @Test
    void removeBeforeAnnouncementSendsNothing() {
        m.addPort(generic(1));
        assertTrue(m.removePort(1));
        assertEquals(List.of("portRemoved 1"), rec.take());
        assertNull(m.portState(1));
        deviceReady();
        m.addPort(generic(2));
        assertTrue(m.removePort(2));                      // PORT_ADD was queued, not sent
        assertEquals(List.of(), drain());
        assertFalse(m.removePort(2));
        assertFalse(m.removePort(MAX + 3));
    }

    @Test
    void removeCancelsPendingMessagesAndReAddWaitsForRemove() {
        m.setSizeNegotiated(true);
        m.addPort(console(1, "old", 80, 24, null));
        m.hostConnected(1);
        bringUp();
        send(1, PORT_OPEN, 1);
        rec.take();
        assertTrue(m.hasOutgoing());                      // CONSOLE, NAME, RESIZE, OPEN pending
        assertTrue(m.removePort(1));
        assertEquals(List.of("guestClosed 1"), rec.take());
        assertEquals(PortState.REMOVING, m.portState(1));
        assertFalse(m.hostConnected(1));
        send(1, PORT_OPEN, 0);                            // late guest message: ignored
        assertEquals(1, m.stats().unknownPort());
        m.addPort(named(1, "new"));                      // re-add behind PORT_REMOVE
        assertThrows(IllegalArgumentException.class, () -> m.addPort(generic(1)));
        assertEquals(List.of(msg(1, PORT_REMOVE, 1), msg(1, PORT_ADD, 1)), drain());
        assertEquals(List.of("portRemoved 1"), rec.take());
        send(1, PORT_READY, 1);
        assertEquals(List.of(name(1, "new")), drain());
    }

    @Test
    void stalePortReadyForAReAddedIdIsIgnored() {
        m.addPort(generic(1));
        deviceReady();
        assertEquals(List.of(msg(1, PORT_ADD, 1)), drain());
        m.removePort(1);                                  // before the guest's PORT_READY arrives
        assertEquals(List.of(msg(1, PORT_REMOVE, 1)), drain());
        m.addPort(generic(1));                            // PORT_ADD queued, not sent
        m.hostConnected(1);
        rec.take();
        send(1, PORT_READY, 1);                           // the guest's answer to the first PORT_ADD
        assertEquals(1, m.stats().staleReady());
        assertEquals(PortState.CONFIGURED, m.portState(1));
        assertEquals(List.of(), rec.take());
        assertEquals(List.of(msg(1, PORT_ADD, 1)), drain());
        send(1, PORT_READY, 1);
        assertEquals(List.of(msg(1, PORT_OPEN, 1)), drain());
    }

    @Test
    void aReAddTakesTheHostStateGivenWhileItsRemovalIsPending() {
        m.addPort(generic(1));
        bringUp();
        assertEquals(new PortView(PortState.READY, false, false), m.view(1));
        m.removePort(1);
        m.addPort(generic(1));                            // re-add behind PORT_REMOVE
        assertTrue(m.hostConnected(1));                   // its endpoint connects at once
        assertEquals(List.of(msg(1, PORT_REMOVE, 1), msg(1, PORT_ADD, 1)), drain());
        assertEquals(new PortView(PortState.ADDED, false, true), m.view(1));
        send(1, PORT_READY, 1);
        assertEquals(List.of(msg(1, PORT_OPEN, 1)), drain());
        assertNull(m.view(2));
    }

    @Test
    void removeOfARemovingPortCancelsTheReAdd() {
        m.addPort(generic(1));
        bringUp();
        m.removePort(1);
        m.addPort(generic(1));
        assertTrue(m.removePort(1));
        assertFalse(m.removePort(1));
        assertEquals(List.of(msg(1, PORT_REMOVE, 1)), drain());
        assertNull(m.portState(1));
    }

    @Test
    void removedPortAcrossResetIsRemovedFromARestoredGuest() {
        m.addPort(generic(0));
        m.addPort(generic(1));
        bringUp();
        m.removePort(1);                                  // PORT_REMOVE queued, then lost by the reset
        m.deviceReset();
        assertEquals(PortState.REMOVING, m.portState(1));
        send(0, PORT_READY, 1);                           // restored guest
        assertEquals(List.of(msg(1, PORT_REMOVE, 1)), drain());
        assertNull(m.portState(1));
    }

    @Test
    void removedPortAcrossResetIsForgottenByAFreshDriver() {
        m.addPort(generic(0));
        m.addPort(generic(1));
        bringUp();
        m.deviceReset();
        m.removePort(1);                                  // tombstone: is the guest fresh or restored?
        m.addPort(named(1, "again"));
        rec.take();
        guest.reset();
        deviceReady();
        assertEquals(List.of("deviceReady true", "portRemoved 1"), rec.take());
        assertEquals(List.of(msg(0, PORT_ADD, 1), msg(1, PORT_ADD, 1)), drain());
        assertEquals("again", m.portConfig(1).name());
    }

    // ------------------------------------------------------------------ bounded output

    @Test
    void floodsCoalesceAndTheQueueStaysBounded() {
        m.setSizeNegotiated(true);
        for (int id = 0; id < MAX; id++) {
            m.addPort(id % 2 == 0 ? console(id, "p" + id, 80, 24, null) : generic(id));
        }
        bringUp();
        int bound = ControlMachine.MAX_PENDING_PER_PORT * MAX;
        for (int i = 0; i < 200_000; i++) {
            int id = i % MAX;
            if ((i & 1) == 0) {
                m.hostConnected(id);
            } else {
                m.hostDisconnected(id);
            }
            m.resize(id, 1 + i % 300, 1 + i % 100);
            assertTrue(m.pendingMessageCount() <= bound);
        }
        m.hostConnected(3);
        m.resize(4, 200, 60);
        List<ControlMessage> msgs = drain();
        assertTrue(msgs.size() <= bound, msgs.size() + " messages");
        // the last value wins per port
        assertTrue(msgs.contains(msg(3, PORT_OPEN, 1)));
        assertTrue(msgs.contains(sized(4, 200, 60)));
        assertEquals(1, msgs.stream().filter(x -> x.id() == 4 && x.event() == RESIZE).count());
    }

    @Test
    void connectDisconnectBeforePollCancelsOut() {
        m.addPort(generic(1));
        bringUp();
        m.hostConnected(1);
        m.hostDisconnected(1);
        assertFalse(m.hasOutgoing());
    }

    @Test
    void pollingIsRoundRobinAcrossPorts() {
        m.setSizeNegotiated(true);
        for (int id = 0; id < 3; id++) {
            m.addPort(console(id, "n" + id, 80, 24, null));
        }
        bringUp();
        // Each port has CONSOLE, NAME, RESIZE pending; port 0 keeps re-queueing RESIZE.
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            m.resize(0, 81 + i, 24);
            int len = m.pollOutgoing(out);
            order.add(guest.accept(out, len).id());
        }
        assertEquals(List.of(0, 1, 2, 0, 1, 2, 0, 1, 2), order);
    }

    @Test
    void pollOutgoingNeedsRoomForTheLongestMessage() {
        assertThrows(IllegalArgumentException.class, () -> m.pollOutgoing(new byte[ControlMessage.MAX_MESSAGE_SIZE - 1]));
        assertThrows(IllegalArgumentException.class, () -> m.pollOutgoing(null));
    }

    @Test
    void longestNameFitsTheBuffer() {
        String longName = "n".repeat(255);
        m.addPort(named(0, longName));
        bringUp();
        assertEquals(8 + 255, m.peekOutgoingLength());
        assertEquals(List.of(name(0, longName)), drain());
    }

    @Test
    void portIdsAndQueries() {
        m.addPort(generic(6));
        m.addPort(generic(2));
        assertArrayEquals(new int[] {2, 6}, m.portIds());
        assertEquals(MAX, m.maxPorts());
        assertNull(m.portConfig(3));
        assertFalse(m.isGuestOpen(3));
        assertFalse(m.isSizeNegotiated());
    }

    // ------------------------------------------------------------------ randomized protocol check

    /**
     * A simulated guest that behaves like Linux (answers PORT_ADD with PORT_READY, opens and
     * closes ports, sometimes resets fresh or restores) against random host activity; the
     * guest model checks every message the device sends.
     */
    @Test
    void randomSessionsNeverBreakTheProtocol() {
        for (long seed = 1; seed <= 60; seed++) {
            trace.clear();
            try {
                randomSession(new Random(seed));
            } catch (AssertionError e) {
                int from = Math.max(0, trace.size() - 80);
                throw new AssertionError("seed " + seed + ": " + e.getMessage() + "\nlast steps:\n"
                        + String.join("\n", trace.subList(from, trace.size())), e);
            }
        }
    }

    private final List<String> trace = new ArrayList<>();

    private void randomSession(Random r) {
        ControlMachine mm = new ControlMachine(MAX, ControlListener.NONE);
        GuestModel g = new GuestModel(MAX);
        mm.setSizeNegotiated(r.nextBoolean());
        boolean driverUp = false;
        List<int[]> inbox = new ArrayList<>();             // guest messages not delivered yet
        for (int step = 0; step < 2_000; step++) {
            int id = r.nextInt(MAX);
            int action = r.nextInt(12);
            trace.add("step " + step + " action " + action + " id " + id + " state " + mm.portState(id));
            switch (action) {
                case 0 -> {
                    try {
                        mm.addPort(r.nextBoolean() ? generic(id) : console(id, "n" + r.nextInt(4), 80, 24, null));
                    } catch (IllegalArgumentException expected) {
                        // id in use or name clash
                    }
                }
                case 1 -> mm.removePort(id);
                case 2 -> mm.hostConnected(id);
                case 3 -> mm.hostDisconnected(id);
                case 4 -> mm.resize(id, r.nextInt(300), r.nextInt(100));
                case 5 -> {
                    if (!driverUp) {
                        g.reset();
                        inbox.add(new int[] {-1, DEVICE_READY, 1});
                        driverUp = true;
                    }
                }
                case 6 -> {
                    if (g.added.get(id)) {
                        inbox.add(new int[] {id, PORT_OPEN, r.nextInt(2)});
                    }
                }
                case 7 -> {
                    if (r.nextInt(20) == 0) {
                        mm.deviceReset();
                        inbox.clear();
                        if (r.nextBoolean() || g.added.isEmpty()) {
                            driverUp = false;                      // fresh driver later
                            g.reset();
                        } else {
                            for (int p = g.added.nextSetBit(0); p >= 0; p = g.added.nextSetBit(p + 1)) {
                                inbox.add(new int[] {p, PORT_READY, 1}); // restored guest
                            }
                        }
                    }
                }
                default -> {
                    // deliver guest messages, then let the device send some
                    // deliver some of the guest's messages, in order; the rest stay in flight
                    int n = r.nextInt(inbox.size() + 1);
                    for (int[] msg : inbox.subList(0, n)) {
                        trace.add("  guest -> " + ControlMessage.eventName(msg[1]) + " " + msg[0] + " " + msg[2]);
                        byte[] b = new byte[8];
                        ControlMessage.encodeHeader(b, 0, msg[0], msg[1], msg[2]);
                        mm.onGuestMessage(b, 0, 8);
                    }
                    inbox.subList(0, n).clear();
                    for (int k = r.nextInt(6); k > 0; k--) {
                        int len = mm.pollOutgoing(out);
                        if (len == 0) {
                            break;
                        }
                        trace.add("  device -> " + ControlMessage.decode(out, 0, len));
                        ControlMessage msg = g.accept(out, len);
                        if (msg.event() == PORT_ADD) {
                            inbox.add(new int[] {msg.id(), PORT_READY, r.nextInt(10) == 0 ? 0 : 1});
                        }
                    }
                }
            }
            assertTrue(mm.pendingMessageCount() <= ControlMachine.MAX_PENDING_PER_PORT * MAX);
        }
        assertEquals(0, mm.stats().malformed() + mm.stats().badValue() + mm.stats().unknownEvent());
    }
}
