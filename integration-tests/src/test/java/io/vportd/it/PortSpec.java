package io.vportd.it;

/**
 * One port a test wants on the device: its number ({@code nr}, 0 is where a console usually
 * sits), its name (sent to the guest with PORT_NAME; null for none) and whether it is a console.
 */
public record PortSpec(int nr, String name, boolean console) {

    public PortSpec {
        if (nr < 0) {
            throw new IllegalArgumentException("port number < 0: " + nr);
        }
    }

    public static PortSpec port(int nr, String name) {
        return new PortSpec(nr, name, false);
    }

    public static PortSpec console(int nr, String name) {
        return new PortSpec(nr, name, true);
    }
}
