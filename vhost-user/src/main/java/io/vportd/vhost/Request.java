package io.vportd.vhost;

/**
 * The frontend requests vportd understands, with the payload size and descriptor count each
 * may carry (numbers from QEMU's docs/interop/vhost-user.rst). Rules that depend on the
 * payload (fd of KICK/CALL/ERR, region count of SET_MEM_TABLE) are checked by {@link Codec}.
 */
public enum Request {
    GET_FEATURES(1, 0, 0, 0, 0, true),
    SET_FEATURES(2, 8, 8, 0, 0, false),
    SET_OWNER(3, 0, 0, 0, 0, false),
    RESET_OWNER(4, 0, 0, 0, 0, false),
    SET_MEM_TABLE(5, Codec.MEM_TABLE_HEADER + Codec.MEM_REGION_SIZE, Codec.MEM_TABLE_MAX_PAYLOAD, 1, Codec.MAX_MEM_TABLE_REGIONS, false),
    SET_VRING_NUM(8, 8, 8, 0, 0, false),
    SET_VRING_ADDR(9, Codec.VRING_ADDR_SIZE, Codec.VRING_ADDR_SIZE, 0, 0, false),
    SET_VRING_BASE(10, 8, 8, 0, 0, false),
    GET_VRING_BASE(11, 8, 8, 0, 0, true),
    SET_VRING_KICK(12, 8, 8, 0, 1, false),
    SET_VRING_CALL(13, 8, 8, 0, 1, false),
    SET_VRING_ERR(14, 8, 8, 0, 1, false),
    GET_PROTOCOL_FEATURES(15, 0, 0, 0, 0, true),
    SET_PROTOCOL_FEATURES(16, 8, 8, 0, 0, false),
    GET_QUEUE_NUM(17, 0, 0, 0, 0, true),
    SET_VRING_ENABLE(18, 8, 8, 0, 0, false),
    SET_BACKEND_REQ_FD(21, 0, 0, 1, 1, false),
    GET_CONFIG(24, Codec.CONFIG_HEADER, Codec.CONFIG_HEADER + Codec.MAX_CONFIG_SIZE, 0, 0, true),
    SET_CONFIG(25, Codec.CONFIG_HEADER, Codec.CONFIG_HEADER + Codec.MAX_CONFIG_SIZE, 0, 0, false),
    RESET_DEVICE(34, 0, 0, 0, 0, false),
    GET_MAX_MEM_SLOTS(36, 0, 0, 0, 0, true),
    ADD_MEM_REG(37, Codec.SINGLE_REGION_SIZE, Codec.SINGLE_REGION_SIZE, 1, 1, false),
    REM_MEM_REG(38, Codec.SINGLE_REGION_SIZE, Codec.SINGLE_REGION_SIZE, 0, 1, false);

    /** Wire number. */
    public final int code;
    final int minPayload;
    final int maxPayload;
    final int minFds;
    final int maxFds;
    /** True when the request has a reply body of its own (no extra REPLY_ACK answer). */
    public final boolean hasReply;

    private static final Request[] BY_CODE = new Request[64];

    static {
        for (Request r : values()) {
            BY_CODE[r.code] = r;
        }
    }

    Request(int code, int minPayload, int maxPayload, int minFds, int maxFds, boolean hasReply) {
        this.code = code;
        this.minPayload = minPayload;
        this.maxPayload = maxPayload;
        this.minFds = minFds;
        this.maxFds = maxFds;
        this.hasReply = hasReply;
    }

    /** The request with wire number {@code code}, or null when vportd does not know it. */
    public static Request of(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : null;
    }

    /** Name for log lines, also for unknown numbers. */
    public static String describe(int code) {
        Request r = of(code);
        return r != null ? r.name() + "(" + code + ")" : "unknown request " + Integer.toUnsignedString(code);
    }
}
