package io.vportd.console.endpoint;

/** Makes the endpoint an {@link EndpointSpec} describes; nothing starts until {@link Endpoint#start}. */
public final class Endpoints {

    private Endpoints() {
    }

    /**
     * @param spec  where the host side lives
     * @param label how logs name the port, e.g. {@code port 1 (clip)}
     */
    public static Endpoint create(EndpointSpec spec, String label) {
        return switch (spec) {
            case EndpointSpec.UnixSocket s -> new UnixServerEndpoint(s.path(), label);
            case EndpointSpec.FileOut f -> new FileEndpoint(f.path(), label);
            case EndpointSpec.Stdio s -> new StdioEndpoint(label);
            case EndpointSpec.Null n -> new NullEndpoint();
            case EndpointSpec.UnixClient u -> new UnixClientEndpoint(u.path(), label);
            case EndpointSpec.Tcp t -> new TcpServerEndpoint(t.host(), t.port(), label);
            case EndpointSpec.Pty t -> new PtyEndpoint(t.link(), label);
        };
    }
}
