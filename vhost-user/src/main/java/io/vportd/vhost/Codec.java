package io.vportd.vhost;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * vhost-user message layouts: the 12-byte header, the payload structs, their encoding and their
 * validation. Pure functions over byte arrays (native byte order), no I/O, so the table tests
 * and the fuzz test drive them directly.
 */
public final class Codec {

    private Codec() {
    }

    public static final int HEADER_SIZE = 12;
    public static final int VERSION = 1;
    public static final int VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 1 << 2;
    public static final int FLAG_NEED_REPLY = 1 << 3;
    /** Largest payload accepted from a frontend (also for unknown requests, which are skipped). */
    public static final int MAX_PAYLOAD = 4096;

    public static final int MEM_TABLE_HEADER = 8;
    public static final int MEM_REGION_SIZE = 32;
    public static final int MAX_MEM_TABLE_REGIONS = 8;
    public static final int MEM_TABLE_MAX_PAYLOAD = MEM_TABLE_HEADER + MAX_MEM_TABLE_REGIONS * MEM_REGION_SIZE;
    public static final int SINGLE_REGION_SIZE = 8 + MEM_REGION_SIZE;
    public static final int VRING_ADDR_SIZE = 40;
    public static final int CONFIG_HEADER = 12;
    public static final int MAX_CONFIG_SIZE = 256;

    /** KICK/CALL/ERR payload: bits 0-7 queue index, bit 8 "no fd". */
    public static final long VRING_INDEX_MASK = 0xff;
    public static final long VRING_NOFD = 1L << 8;

    public static final int F_PROTOCOL_FEATURES = 30;
    public static final int F_RING_EVENT_IDX = 29;

    public static final int PROTOCOL_F_MQ = 0;
    public static final int PROTOCOL_F_REPLY_ACK = 3;
    public static final int PROTOCOL_F_BACKEND_REQ = 5;
    public static final int PROTOCOL_F_CONFIG = 9;
    public static final int PROTOCOL_F_RESET_DEVICE = 13;
    public static final int PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15;

    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    // ---- payload types ---------------------------------------------------------------------

    public record Header(int request, int flags, int size) {
        public boolean needReply() {
            return (flags & FLAG_NEED_REPLY) != 0;
        }
    }

    public record VringState(int index, int num) {
    }

    public record VringAddr(int index, int flags, long descUser, long usedUser, long availUser, long logGuest) {
    }

    public record MemRegion(long guestAddr, long size, long userAddr, long mmapOffset) {
    }

    public record Config(int offset, int size, int flags, byte[] data) {
    }

    // ---- header ----------------------------------------------------------------------------

    public static Header decodeHeader(byte[] b) {
        ByteBuffer bb = ByteBuffer.wrap(b, 0, HEADER_SIZE).order(ORDER);
        return new Header(bb.getInt(), bb.getInt(), bb.getInt());
    }

    /** Checks version, flags and payload size bound of a header coming from the frontend. */
    public static void validateHeader(Header h) throws VhostProtocolException {
        String what = Request.describe(h.request());
        if ((h.flags() & VERSION_MASK) != VERSION) {
            throw new VhostProtocolException(what + ": header version " + (h.flags() & VERSION_MASK) + ", expected " + VERSION);
        }
        if ((h.flags() & FLAG_REPLY) != 0) {
            throw new VhostProtocolException(what + ": frontend message has the reply flag set");
        }
        if ((h.flags() & ~(VERSION_MASK | FLAG_NEED_REPLY)) != 0) {
            throw new VhostProtocolException(what + ": unknown header flags 0x" + Integer.toHexString(h.flags()));
        }
        if (Integer.compareUnsigned(h.size(), MAX_PAYLOAD) > 0) {
            throw new VhostProtocolException(what + ": payload size " + Integer.toUnsignedString(h.size())
                    + " exceeds the limit of " + MAX_PAYLOAD);
        }
    }

    /**
     * Checks payload size and descriptor count of a known request. Unknown requests (null) only
     * have to carry no descriptors.
     */
    public static void validateShape(Request r, int rawRequest, byte[] payload, int fdCount) throws VhostProtocolException {
        if (r == null) {
            if (fdCount != 0) {
                throw new VhostProtocolException(Request.describe(rawRequest) + ": carries " + fdCount + " file descriptors");
            }
            return;
        }
        int len = payload.length;
        if (len < r.minPayload || len > r.maxPayload) {
            String expected = r.minPayload == r.maxPayload ? Integer.toString(r.minPayload)
                    : r.minPayload + ".." + r.maxPayload;
            throw new VhostProtocolException(r + ": payload size " + len + ", expected " + expected);
        }
        int minFds = r.minFds;
        int maxFds = r.maxFds;
        switch (r) {
            case SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR -> {
                long v = u64(payload);
                boolean noFd = (v & VRING_NOFD) != 0;
                if ((v & ~(VRING_INDEX_MASK | VRING_NOFD)) != 0) {
                    throw new VhostProtocolException(r + ": reserved bits set in 0x" + Long.toHexString(v));
                }
                minFds = noFd ? 0 : 1;
                maxFds = minFds;
            }
            case SET_MEM_TABLE -> {
                int n = ByteBuffer.wrap(payload).order(ORDER).getInt(0);
                if (n < 1 || n > MAX_MEM_TABLE_REGIONS) {
                    throw new VhostProtocolException(r + ": " + Integer.toUnsignedString(n)
                            + " regions, expected 1.." + MAX_MEM_TABLE_REGIONS);
                }
                if (len < MEM_TABLE_HEADER + n * MEM_REGION_SIZE) {
                    throw new VhostProtocolException(r + ": payload size " + len + " too short for " + n + " regions");
                }
                minFds = n;
                maxFds = n;
            }
            case GET_CONFIG, SET_CONFIG -> {
                int size = ByteBuffer.wrap(payload).order(ORDER).getInt(4);
                if (size != len - CONFIG_HEADER) {
                    throw new VhostProtocolException(r + ": config size field " + Integer.toUnsignedString(size)
                            + " does not match the " + (len - CONFIG_HEADER) + " payload bytes");
                }
            }
            default -> {
            }
        }
        if (fdCount < minFds || fdCount > maxFds) {
            String expected = minFds == maxFds ? Integer.toString(minFds) : minFds + ".." + maxFds;
            throw new VhostProtocolException(r + ": carries " + fdCount + " file descriptors, expected " + expected);
        }
    }

    // ---- payload decoding (shape already validated) ----------------------------------------

    public static long u64(byte[] p) {
        return ByteBuffer.wrap(p).order(ORDER).getLong(0);
    }

    public static VringState vringState(byte[] p) {
        ByteBuffer bb = ByteBuffer.wrap(p).order(ORDER);
        return new VringState(bb.getInt(0), bb.getInt(4));
    }

    public static VringAddr vringAddr(byte[] p) {
        ByteBuffer bb = ByteBuffer.wrap(p).order(ORDER);
        return new VringAddr(bb.getInt(0), bb.getInt(4), bb.getLong(8), bb.getLong(16), bb.getLong(24), bb.getLong(32));
    }

    public static List<MemRegion> memTable(byte[] p) {
        ByteBuffer bb = ByteBuffer.wrap(p).order(ORDER);
        int n = bb.getInt(0);
        List<MemRegion> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int o = MEM_TABLE_HEADER + i * MEM_REGION_SIZE;
            out.add(new MemRegion(bb.getLong(o), bb.getLong(o + 8), bb.getLong(o + 16), bb.getLong(o + 24)));
        }
        return out;
    }

    public static MemRegion singleRegion(byte[] p) {
        ByteBuffer bb = ByteBuffer.wrap(p).order(ORDER);
        return new MemRegion(bb.getLong(8), bb.getLong(16), bb.getLong(24), bb.getLong(32));
    }

    public static Config config(byte[] p) {
        ByteBuffer bb = ByteBuffer.wrap(p).order(ORDER);
        byte[] data = new byte[p.length - CONFIG_HEADER];
        bb.get(CONFIG_HEADER, data);
        return new Config(bb.getInt(0), bb.getInt(4), bb.getInt(8), data);
    }

    // ---- encoding --------------------------------------------------------------------------

    /** A whole message: header + payload. */
    public static byte[] message(int request, int flags, byte[] payload) {
        ByteBuffer bb = ByteBuffer.allocate(HEADER_SIZE + payload.length).order(ORDER);
        bb.putInt(request).putInt(flags).putInt(payload.length).put(payload);
        return bb.array();
    }

    /** A reply header + payload to {@code request}. */
    public static byte[] reply(int request, byte[] payload) {
        return message(request, VERSION | FLAG_REPLY, payload);
    }

    public static byte[] u64(long v) {
        return ByteBuffer.allocate(8).order(ORDER).putLong(v).array();
    }

    public static byte[] vringState(int index, int num) {
        return ByteBuffer.allocate(8).order(ORDER).putInt(index).putInt(num).array();
    }

    public static byte[] vringAddr(VringAddr a) {
        return ByteBuffer.allocate(VRING_ADDR_SIZE).order(ORDER).putInt(a.index()).putInt(a.flags())
                .putLong(a.descUser()).putLong(a.usedUser()).putLong(a.availUser()).putLong(a.logGuest()).array();
    }

    public static byte[] memTable(List<MemRegion> regions) {
        ByteBuffer bb = ByteBuffer.allocate(MEM_TABLE_HEADER + regions.size() * MEM_REGION_SIZE).order(ORDER);
        bb.putInt(regions.size()).putInt(0);
        for (MemRegion r : regions) {
            bb.putLong(r.guestAddr()).putLong(r.size()).putLong(r.userAddr()).putLong(r.mmapOffset());
        }
        return bb.array();
    }

    public static byte[] singleRegion(MemRegion r) {
        return ByteBuffer.allocate(SINGLE_REGION_SIZE).order(ORDER).putLong(0)
                .putLong(r.guestAddr()).putLong(r.size()).putLong(r.userAddr()).putLong(r.mmapOffset()).array();
    }

    public static byte[] config(int offset, int flags, byte[] data) {
        return ByteBuffer.allocate(CONFIG_HEADER + data.length).order(ORDER)
                .putInt(offset).putInt(data.length).putInt(flags).put(data).array();
    }
}
