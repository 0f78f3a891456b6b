package io.vportd.it;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 helpers; hex output is lower case, the way {@code sha256sum} prints it. */
public final class Digests {

    private Digests() {
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK always has SHA-256", e);
        }
    }

    public static String sha256Hex(byte[] data) {
        return hex(sha256().digest(data));
    }

    public static String sha256Hex(ByteBuffer data) {
        MessageDigest md = sha256();
        md.update(data.duplicate());
        return hex(md.digest());
    }

    public static String hex(byte[] digest) {
        return HexFormat.of().formatHex(digest);
    }

    /** The hex digest from a {@code sha256sum} line ("<hex>  <name>"), or the text itself when it is bare hex. */
    public static String fromSha256sumLine(String line) {
        String t = line.strip();
        int space = t.indexOf(' ');
        String hex = space < 0 ? t : t.substring(0, space);
        if (!hex.matches("[0-9a-f]{64}")) {
            throw new AssertionError("not a sha256sum output: '" + line + "'");
        }
        return hex;
    }
}
