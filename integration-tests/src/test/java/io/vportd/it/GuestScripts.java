package io.vportd.it;

/** Shell (busybox sh) pieces shared by scenario scripts. */
public final class GuestScripts {

    private GuestScripts() {
    }

    /**
     * Helpers every scenario may use:
     * <ul>
     * <li>{@code mark KEY [VALUE...]} prints a {@code VPORTD-MARK} line for the test;</li>
     * <li>{@code fail MESSAGE} prints a mark {@code fail} and exits 1;</li>
     * <li>{@code port NAME} prints {@code /dev/virtio-ports/NAME};</li>
     * <li>{@code need_ports NAME...} waits (about 10 s at most) until each
     *     {@code /dev/virtio-ports/NAME} link exists, else fails;</li>
     * <li>{@code recv_token DEV N} opens DEV once and reads N bytes, again and again while the
     *     host side is away (a read then ends at once with EOF), and prints them; fails after
     *     about 60 s. The port stays open between tries: host bytes that reach a port the guest
     *     has closed are thrown away by the guest, so reopening would race with the host.</li>
     * </ul>
     */
    public static final String PRELUDE = """
            mark() { echo "VPORTD-MARK $*"; }
            fail() { mark fail "$*"; exit 1; }
            port() { echo "/dev/virtio-ports/$1"; }
            need_ports() {
              _i=0
              while :; do
                _missing=""
                for _n in "$@"; do [ -L "/dev/virtio-ports/$_n" ] || _missing="$_missing $_n"; done
                [ -z "$_missing" ] && return 0
                [ $_i -ge 100 ] && fail "no /dev/virtio-ports link for:$_missing"
                _i=$((_i + 1)); sleep 0.1
              done
            }
            recv_token() {
              [ -c "$1" ] || fail "no port device $1"
              exec 9< "$1" || fail "cannot open $1"
              _i=0
              while [ $_i -lt 1200 ]; do
                _d=$(head -c "$2" <&9 2>/dev/null)
                if [ -n "$_d" ]; then exec 9<&-; printf '%s' "$_d"; return 0; fi
                _i=$((_i + 1)); sleep 0.05
              done
              exec 9<&-
              fail "no token from the host on $1"
            }
            """;

    /**
     * Starts streaming {@code bytes} both ways in the background: random data (its sha256 marked
     * "out-sha") to port stream.out, and exactly {@code bytes} from port stream.in into /tmp/in;
     * $sw and $sr are the writer and reader, marks "streaming" once both run.
     */
    public static String streamsBothWays(int bytes) {
        return """
                need_ports stream.out stream.in
                head -c %1$d /dev/urandom > /tmp/out || fail "no random data"
                mark out-sha "$(sha256sum /tmp/out | cut -d' ' -f1)"
                cat /tmp/out > "$(port stream.out)" &
                sw=$!
                head -c %1$d < "$(port stream.in)" > /tmp/in &
                sr=$!
                mark streaming
                """.formatted(bytes);
    }

    /** The prelude followed by {@code body}. */
    public static String script(String body) {
        return PRELUDE + body;
    }
}
