package io.vportd.console.control;

import io.vportd.console.endpoint.EndpointSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.ToLongFunction;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ControlMessageTest {

    @Test
    void headerIsLittleEndian() {
        byte[] b = new byte[8];
        assertEquals(8, ControlMessage.encodeHeader(b, 0, 0x01020304, 0x0506, 0x0708));
        assertArrayEquals(new byte[] {4, 3, 2, 1, 6, 5, 8, 7}, b);
        ControlMessage m = ControlMessage.decode(b, 0, 8);
        assertEquals(new ControlMessage(0x01020304, 0x0506, 0x0708), m);
    }

    @Test
    void decodeReadsAtAnOffsetAndKeepsThePayload() {
        byte[] b = new byte[20];
        int len = ControlMessage.encodeName(b, 3, 0xFFFF_FFFE, "ab".getBytes());
        assertEquals(10, len);
        ControlMessage m = ControlMessage.decode(b, 3, len);
        assertEquals(0xFFFF_FFFEL, m.unsignedId());
        assertEquals(ControlMessage.PORT_NAME, m.event());
        assertEquals(1, m.value());
        assertEquals("ab", m.nameText());
        assertEquals("PORT_NAME(id=4294967294, value=1, name=ab)", m.toString());
    }

    @Test
    void resizeOrderDecidesTheFieldOrder() {
        byte[] b = new byte[12];
        ControlMessage.encodeResize(b, 0, 1, 0x0102, 0x0304, ResizeOrder.COLS_ROWS);
        assertArrayEquals(new byte[] {1, 0, 0, 0, 5, 0, 0, 0, 2, 1, 4, 3}, b);
        ControlMessage.encodeResize(b, 0, 1, 0x0102, 0x0304, ResizeOrder.ROWS_COLS);
        assertArrayEquals(new byte[] {1, 0, 0, 0, 5, 0, 0, 0, 4, 3, 2, 1}, b);
        ControlMessage m = ControlMessage.decode(b, 0, 12);
        assertEquals(0x0102, m.resizeCols(ResizeOrder.ROWS_COLS));
        assertEquals(0x0304, m.resizeRows(ResizeOrder.ROWS_COLS));
        assertEquals(-1, new ControlMessage(1, 5, 0).resizeCols(ResizeOrder.COLS_ROWS));
        assertEquals(ResizeOrder.COLS_ROWS, ResizeOrder.fromSpecName("cols-rows"));
        assertNull(ResizeOrder.fromSpecName("COLS-ROWS"));
    }

    @Test
    void encodeRefusesTooSmallBuffers() {
        ControlMessage m = new ControlMessage(1, 7, 1, new byte[5]);
        assertEquals(-1, m.encode(new byte[12], 0));
        assertEquals(-1, m.encode(new byte[13], 1));
        assertEquals(-1, m.encode(null, 0));
        assertEquals(-1, m.encode(new byte[13], -1));
        assertEquals(13, m.encode(new byte[13], 0));
    }

    @Test
    void decodeNeverThrowsOnBadBounds() {
        assertNull(ControlMessage.decode(null, 0, 8));
        assertNull(ControlMessage.decode(new byte[8], 1, 8));
        assertNull(ControlMessage.decode(new byte[8], -1, 8));
        assertNull(ControlMessage.decode(new byte[8], 0, 7));
        assertNull(ControlMessage.decode(new byte[8], Integer.MAX_VALUE, 8));
        assertNull(ControlMessage.decode(new byte[8], 4, Integer.MAX_VALUE));
    }

    @Test
    void guestDirectionRules() {
        assertNull(ControlMessage.checkFromGuest(ControlMessage.NO_ID, ControlMessage.DEVICE_READY, 1, 4));
        assertNull(ControlMessage.checkFromGuest(3, ControlMessage.PORT_READY, 0, 4));
        assertNull(ControlMessage.checkFromGuest(3, ControlMessage.PORT_OPEN, 1, 4));
        assertEquals(ControlMessage.Rejection.ID_OUT_OF_RANGE,
                ControlMessage.checkFromGuest(4, ControlMessage.PORT_OPEN, 1, 4));
        assertEquals(ControlMessage.Rejection.ID_OUT_OF_RANGE,
                ControlMessage.checkFromGuest(-1, ControlMessage.PORT_READY, 1, 4));
        assertEquals("EVENT_9", ControlMessage.eventName(9));
    }

    // ------------------------------------------------------------------ malformed-message table

    static final int MAX = 4;

    static byte[] hdr(int id, int event, int value) {
        byte[] b = new byte[8];
        ControlMessage.encodeHeader(b, 0, id, event, value);
        return b;
    }

    static Arguments row(String what, byte[] buf, int off, int len, ToLongFunction<ControlStats> counter) {
        return Arguments.of(what, buf, off, len, counter);
    }

    static Stream<Arguments> malformed() {
        ToLongFunction<ControlStats> malformed = ControlStats::malformed;
        return Stream.of(
                row("empty", new byte[0], 0, 0, malformed),
                row("one byte", new byte[1], 0, 1, malformed),
                row("seven bytes", new byte[7], 0, 7, malformed),
                row("null buffer", null, 0, 8, malformed),
                row("negative offset", new byte[16], -1, 8, malformed),
                row("length past end", new byte[8], 1, 8, malformed),
                row("offset past end", new byte[8], 9, 8, malformed),
                row("negative length", new byte[8], 0, -8, malformed),
                row("huge length", new byte[8], 0, Integer.MAX_VALUE, malformed),
                row("offset + length overflows", new byte[8], 4, Integer.MAX_VALUE - 2, malformed),
                row("event 8", hdr(0, 8, 1), 0, 8, ControlStats::unknownEvent),
                row("event 0xFFFF", hdr(0, 0xFFFF, 1), 0, 8, ControlStats::unknownEvent),
                row("guest sends PORT_ADD", hdr(0, 1, 1), 0, 8, ControlStats::wrongDirection),
                row("guest sends PORT_REMOVE", hdr(0, 2, 1), 0, 8, ControlStats::wrongDirection),
                row("guest sends CONSOLE_PORT", hdr(0, 4, 1), 0, 8, ControlStats::wrongDirection),
                row("guest sends RESIZE", hdr(0, 5, 0), 0, 8, ControlStats::wrongDirection),
                row("guest sends PORT_NAME", hdr(0, 7, 1), 0, 8, ControlStats::wrongDirection),
                row("PORT_READY id = max", hdr(MAX, 3, 1), 0, 8, ControlStats::idOutOfRange),
                row("PORT_READY id = 0xFFFFFFFF", hdr(-1, 3, 1), 0, 8, ControlStats::idOutOfRange),
                row("PORT_OPEN id = 0x80000000", hdr(0x8000_0000, 6, 1), 0, 8, ControlStats::idOutOfRange),
                row("DEVICE_READY value 2", hdr(-1, 0, 2), 0, 8, ControlStats::badValue),
                row("PORT_READY value 0xFFFF", hdr(0, 3, 0xFFFF), 0, 8, ControlStats::badValue),
                row("PORT_OPEN value 2", hdr(0, 6, 2), 0, 8, ControlStats::badValue),
                row("PORT_READY unknown port", hdr(2, 3, 1), 0, 8, ControlStats::unknownPort),
                row("PORT_OPEN unknown port", hdr(3, 6, 1), 0, 8, ControlStats::unknownPort));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void malformedGuestMessagesAreCountedAndChangeNothing(String what, byte[] buf, int off, int len,
                                                           ToLongFunction<ControlStats> counter) {
        Recorder rec = new Recorder();
        ControlMachine m = new ControlMachine(MAX, rec);
        m.addPort(PortConfig.generic(0, new EndpointSpec.Null()));
        m.addPort(PortConfig.generic(1, new EndpointSpec.Null()));
        byte[] ready = hdr(-1, ControlMessage.DEVICE_READY, 1);
        m.onGuestMessage(ready, 0, 8);
        byte[] out = new byte[ControlMessage.MAX_MESSAGE_SIZE];
        while (m.pollOutgoing(out) > 0) {
            // drain the PORT_ADDs
        }
        rec.take();
        long before = counter.applyAsLong(m.stats());
        long rejectedBefore = m.stats().rejected();

        m.onGuestMessage(buf, off, len);

        assertEquals(before + 1, counter.applyAsLong(m.stats()), what);
        assertEquals(rejectedBefore + 1, m.stats().rejected(), what);
        assertFalse(m.hasOutgoing(), what);
        assertTrue(rec.take().isEmpty(), what);
        assertEquals(PortState.ADDED, m.portState(0));
        assertEquals(PortState.ADDED, m.portState(1));
        assertFalse(m.isGuestOpen(0));
    }

    @Test
    void trailingBytesAfterTheHeaderAreIgnored() {
        Recorder rec = new Recorder();
        ControlMachine m = new ControlMachine(MAX, rec);
        byte[] b = new byte[32];
        ControlMessage.encodeHeader(b, 4, -1, ControlMessage.DEVICE_READY, 1);
        m.onGuestMessage(b, 4, 28);
        assertTrue(m.isDeviceReady());
        assertEquals(0, m.stats().rejected());
    }
}
