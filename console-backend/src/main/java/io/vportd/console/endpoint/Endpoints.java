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
            case EndpointSpec.Web w -> new WebEndpoint(label);
        };
    }

    /**
     * The endpoint {@code spec} describes, rebuilt around descriptors a previous process handed over
     * ({@link Endpoint#handover}): nothing is bound, opened or linked again, and a host client that
     * was connected stays connected. Do not call {@link Endpoint#open} on it.
     *
     * @throws java.io.IOException the hand-over lacks a descriptor the endpoint needs
     */
    public static Endpoint adopt(EndpointSpec spec, String label, Handed handed) throws java.io.IOException {
        return switch (spec) {
            case EndpointSpec.UnixSocket s -> UnixServerEndpoint.adopted(s.path(), label, handed);
            case EndpointSpec.Tcp t -> TcpServerEndpoint.adopted(t.host(), t.port(), label, handed);
            case EndpointSpec.UnixClient u -> UnixClientEndpoint.adopted(u.path(), label, handed);
            case EndpointSpec.Pty t -> PtyEndpoint.adopted(t.link(), label, handed);
            case EndpointSpec.FileOut f -> FileEndpoint.adopted(f.path(), label, handed);
            case EndpointSpec.Null n -> new NullEndpoint();
            case EndpointSpec.Web w -> new WebEndpoint(label); // a new pipe; browsers reconnect
            case EndpointSpec.Stdio s -> throw new java.io.IOException(label + ": a stdio endpoint cannot be handed over");
        };
    }

    static io.vportd.sys.Fd required(Handed handed, String role, String label) throws java.io.IOException {
        io.vportd.sys.Fd fd = handed.take(role);
        if (fd == null) {
            throw new java.io.IOException(label + ": the hand-over carries no " + role + " descriptor");
        }
        return fd;
    }
}
