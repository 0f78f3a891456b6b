package io.vportd.console.ctl;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code vportd ctl}: the command-line client of the management socket. Prints tables by
 * default and the daemon's JSON responses with {@code --json}. Exit codes: 0 ok, 1 the daemon
 * refused the request (its error is printed), 2 usage error, 3 cannot reach the daemon.
 */
@Command(name = "vportd ctl", mixinStandardHelpOptions = true, version = "vportd ctl",
        description = "Manage the ports of a running vportd through its --api-socket.",
        subcommands = {CtlCommand.AddPort.class, CtlCommand.RemovePort.class, CtlCommand.ListPorts.class,
                CtlCommand.Resize.class, CtlCommand.MetricsCmd.class, CtlCommand.Events.class, CtlCommand.Log.class,
                CtlCommand.Batch.class, CtlCommand.ListDevices.class, CtlCommand.AddDevice.class,
                CtlCommand.RemoveDevice.class},
        footer = {"", "Examples:",
                "  vportd ctl --api-socket /run/vm1/api.sock add-port nr=5,name=org.example.log,socket=/run/vm1/log.sock",
                "  vportd ctl --api-socket /run/vm1/api.sock list-ports",
                "  vportd ctl --api-socket /run/vm1/api.sock remove-port 5",
                "  vportd ctl --api-socket /run/vm1/api.sock events --count 3",
                "  vportd ctl --api-socket /run/vm1/api.sock log 0 --tail 20 --follow",
                "  vportd ctl --api-socket /run/vm1/api.sock batch requests.jsonl",
                "A daemon of several devices (vportd --config FILE): name the device of a port command with --device,",
                "  vportd ctl --api-socket /run/vportd/api.sock --device vm2 list-ports",
                "  vportd ctl --api-socket /run/vportd/api.sock list-devices",
                "  vportd ctl --api-socket /run/vportd/api.sock add-device --id vm3 --socket /run/vportd/vm3.sock \\",
                "      --max-ports 8 --port nr=0,console,pty --port nr=1,name=org.qemu.guest_agent.0,socket=/run/vm3/qga.sock",
                "  vportd ctl --api-socket /run/vportd/api.sock remove-device vm3"})
public final class CtlCommand implements Callable<Integer> {

    static final int OK = 0;
    static final int REFUSED = 1;
    static final int USAGE = 2;
    static final int UNREACHABLE = 3;

    private static final ObjectMapper PRETTY = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    private static final ObjectMapper COMPACT = JsonMapper.builder().build();

    @Option(names = "--api-socket", required = true, paramLabel = "PATH", description = "the daemon's management socket")
    Path apiSocket;

    @Option(names = "--json", description = "print the daemon's JSON response instead of a table")
    boolean json;

    @Option(names = "--device", paramLabel = "ID",
            description = "the device a port command (add-port, remove-port, list-ports, resize, metrics, log) is for: "
                    + "needed when the daemon serves several (vportd --config); see list-devices")
    String device;

    private PrintWriter out;
    private PrintWriter err;

    @Override
    public Integer call() {
        err.println("vportd ctl: name a command (add-port, remove-port, list-ports, resize, metrics, events, log, batch, "
                + "list-devices, add-device, remove-device); see --help");
        return USAGE;
    }

    /** Runs {@code vportd ctl ARGS...}; returns the exit code. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CtlCommand top = new CtlCommand();
        top.out = out;
        top.err = err;
        CommandLine cl = new CommandLine(top);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExpandAtFiles(false);
        cl.setExitCodeExceptionMapper(e -> USAGE);
        cl.setParameterExceptionHandler((ex, a) -> {
            err.println("vportd ctl: " + ex.getMessage());
            err.println("Try 'vportd ctl --help' for more information.");
            return USAGE;
        });
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    // ------------------------------------------------------------------ shared plumbing

    int send(ObjectNode request, java.util.function.Consumer<JsonNode> table) {
        try (ApiClient c = ApiClient.connect(apiSocket)) {
            JsonNode response = c.call(c.numbered(request));
            return print(response, table);
        } catch (IOException e) {
            err.println("vportd ctl: " + e.getMessage());
            return UNREACHABLE;
        }
    }

    int print(JsonNode response, java.util.function.Consumer<JsonNode> table) {
        if (response.has("error")) {
            if (json) {
                out.println(write(response));
            } else {
                err.println("vportd ctl: " + response.path("error").path("code").asText() + ": "
                        + response.path("error").path("message").asText());
            }
            return REFUSED;
        }
        if (json) {
            out.println(write(response));
        } else {
            table.accept(response);
        }
        return OK;
    }

    private static String write(JsonNode n) {
        try {
            return PRETTY.writeValueAsString(n);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static ObjectNode op(String op) {
        ObjectNode r = COMPACT.createObjectNode();
        r.put("op", op);
        return r;
    }

    /** A request for one device's ports: names the --device when one was given. */
    ObjectNode portOp(String op) {
        ObjectNode r = op(op);
        if (device != null) {
            r.put("device", device);
        }
        return r;
    }

    /** Parses {@code 5} or {@code name=NAME} into the request's nr/name. */
    static void portRef(ObjectNode r, String ref) {
        if (ref.startsWith("name=")) {
            r.put("name", ref.substring(5));
        } else if (ref.startsWith("nr=")) {
            r.put("nr", number(ref.substring(3), "nr"));
        } else {
            r.put("nr", number(ref, "port"));
        }
    }

    static long number(String text, String what) {
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(what + " must be a number (or name=NAME), got '" + text + "'");
        }
    }

    // ------------------------------------------------------------------ subcommands

    @Command(name = "add-port", description = "Add a port to the running guest (the --port syntax).")
    static final class AddPort implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Parameters(paramLabel = "SPEC", description = "e.g. nr=5,name=org.example.log,socket=/run/vm1/log.sock")
        String spec;

        @Override
        public Integer call() {
            ObjectNode r = top.portOp("add-port");
            r.put("spec", spec);
            return top.send(r, resp -> top.portTable(List.of(resp.get("port"))));
        }
    }

    @Command(name = "remove-port", description = "Remove a port from the running guest.")
    static final class RemovePort implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Parameters(paramLabel = "PORT", description = "the port id, or name=NAME")
        String port;
        @Option(names = "--drain-ms", paramLabel = "MS",
                description = "first wait up to MS milliseconds for the host to take guest output the port holds")
        Integer drainMs;

        @Override
        public Integer call() {
            ObjectNode r = top.portOp("remove-port");
            try {
                portRef(r, port);
            } catch (IllegalArgumentException e) {
                top.err.println("vportd ctl: " + e.getMessage());
                return USAGE;
            }
            if (drainMs != null) {
                r.put("drain-ms", drainMs);
            }
            return top.send(r, resp -> {
                JsonNode x = resp.get("removed");
                top.out.printf("removed port %d%s; %d bytes of guest output delivered during removal, %d undelivered%n",
                        x.path("nr").asInt(), x.path("name").isNull() ? "" : " (" + x.path("name").asText() + ")",
                        x.path("delivered-bytes").asLong(), x.path("undelivered-bytes").asLong());
            });
        }
    }

    @Command(name = "list-ports", description = "List the ports with their state and counters.")
    static final class ListPorts implements Callable<Integer> {
        @ParentCommand CtlCommand top;

        @Override
        public Integer call() {
            return top.send(top.portOp("list-ports"), resp -> {
                List<JsonNode> ports = new ArrayList<>();
                resp.get("ports").forEach(ports::add);
                top.portTable(ports);
            });
        }
    }

    @Command(name = "resize", description = "Set the terminal size of a console port.")
    static final class Resize implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Parameters(index = "0", paramLabel = "PORT", description = "the port id, or name=NAME")
        String port;
        @Parameters(index = "1", paramLabel = "COLS")
        int cols;
        @Parameters(index = "2", paramLabel = "ROWS")
        int rows;

        @Override
        public Integer call() {
            ObjectNode r = top.portOp("resize");
            try {
                portRef(r, port);
            } catch (IllegalArgumentException e) {
                top.err.println("vportd ctl: " + e.getMessage());
                return USAGE;
            }
            r.put("cols", cols);
            r.put("rows", rows);
            return top.send(r, resp -> top.out.printf("port %d: %dx%d%n", resp.path("nr").asInt(),
                    resp.path("cols").asInt(), resp.path("rows").asInt()));
        }
    }

    @Command(name = "metrics", description = "Print every counter (Prometheus text format).")
    static final class MetricsCmd implements Callable<Integer> {
        @ParentCommand CtlCommand top;

        @Override
        public Integer call() {
            return top.send(top.portOp("metrics"), resp -> top.out.print(resp.path("metrics").asText()));
        }
    }

    @Command(name = "events", description = "Subscribe and print port events as they happen.")
    static final class Events implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Option(names = "--count", paramLabel = "N", description = "exit after N events (default: run until killed)")
        int count = -1;

        @Override
        public Integer call() {
            try (ApiClient c = ApiClient.connect(top.apiSocket)) {
                JsonNode resp = c.call(c.request("subscribe"));
                if (resp.has("error")) {
                    return top.print(resp, x -> { });
                }
                top.out.flush();
                for (int i = 0; count < 0 || i < count; i++) {
                    JsonNode e = c.nextEvent();
                    if (top.json) {
                        top.out.println(COMPACT.writeValueAsString(e));
                    } else {
                        JsonNode d = e.path("data");
                        top.out.printf("%-18s %sport %-4d %s%s%n", e.path("event").asText(),
                                d.has("device") ? "device " + d.path("device").asText() + " " : "", d.path("nr").asInt(),
                                d.path("name").isNull() ? "-" : d.path("name").asText(),
                                d.has("detail") ? "  (" + d.path("detail").asText() + ")" : "");
                    }
                    top.out.flush();
                }
                return OK;
            } catch (IOException e) {
                top.err.println("vportd ctl: " + e.getMessage());
                return UNREACHABLE;
            }
        }
    }

    @Command(name = "batch", description = {
            "Send many requests over one connection, in one process: one JSON request per line of FILE",
            "('-' or none: standard input), as the management API takes them, e.g.",
            "  {\"op\":\"add-port\",\"spec\":\"nr=5,name=org.example.a,socket=/run/vm1/a.sock\"}",
            "Blank lines and lines starting with # are skipped. Every line is checked before anything is sent",
            "(a bad line is named by its number and nothing is sent). Each response is printed as one JSON line,",
            "in order. The first refused request stops the batch (exit status 1) unless --keep-going."})
    static final class Batch implements Callable<Integer> {
        /** Most requests one batch takes (a daemon has at most a few thousand ports to add). */
        static final int MAX_REQUESTS = 100_000;
        /** Longest request line taken. */
        static final int MAX_LINE = 1 << 20;

        @ParentCommand CtlCommand top;
        @Parameters(index = "0", arity = "0..1", paramLabel = "FILE", defaultValue = "-",
                description = "the requests, one JSON object per line (default: standard input)")
        String file;
        @Option(names = "--keep-going", description = "send every request even after one is refused")
        boolean keepGoing;

        @Override
        public Integer call() {
            List<ObjectNode> requests = new ArrayList<>();
            List<Integer> lineNumbers = new ArrayList<>();
            try (java.io.BufferedReader in = file.equals("-")
                    ? new java.io.BufferedReader(new java.io.InputStreamReader(System.in, java.nio.charset.StandardCharsets.UTF_8))
                    : java.nio.file.Files.newBufferedReader(Path.of(file))) {
                String line;
                int n = 0;
                while ((line = in.readLine()) != null) {
                    n++;
                    String why = line.length() > MAX_LINE ? "longer than " + MAX_LINE + " characters" : null;
                    String t = line.strip();
                    if (why == null && (t.isEmpty() || t.startsWith("#"))) {
                        continue;
                    }
                    ObjectNode r = null;
                    if (why == null) {
                        try {
                            JsonNode node = COMPACT.readTree(t);
                            why = checkRequest(node);
                            if (why == null) {
                                r = (ObjectNode) node;
                            }
                        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                            why = "not JSON (" + e.getOriginalMessage() + ")";
                        }
                    }
                    if (why == null && requests.size() == MAX_REQUESTS) {
                        why = "more than " + MAX_REQUESTS + " requests in one batch";
                    }
                    if (why != null) {
                        top.err.println("vportd ctl: batch " + (file.equals("-") ? "standard input" : file) + " line " + n
                                + ": " + why + "; nothing was sent");
                        return USAGE;
                    }
                    requests.add(r);
                    lineNumbers.add(n);
                }
            } catch (IOException e) {
                top.err.println("vportd ctl: batch: cannot read " + file + ": " + e.getMessage());
                return USAGE;
            }
            int refused = 0;
            try (ApiClient c = ApiClient.connect(top.apiSocket)) {
                for (int i = 0; i < requests.size(); i++) {
                    JsonNode response = c.call(c.numbered(requests.get(i)));
                    top.out.println(COMPACT.writeValueAsString(response));
                    if (response.has("error")) {
                        refused++;
                        if (!keepGoing) {
                            top.out.flush();
                            top.err.println("vportd ctl: batch line " + lineNumbers.get(i) + " refused: "
                                    + response.path("error").path("code").asText() + ": "
                                    + response.path("error").path("message").asText() + "; "
                                    + (requests.size() - i - 1) + " request(s) after it not sent");
                            return REFUSED;
                        }
                    }
                }
            } catch (IOException e) {
                top.out.flush();
                top.err.println("vportd ctl: " + e.getMessage());
                return UNREACHABLE;
            }
            if (refused > 0) {
                top.err.println("vportd ctl: batch: " + refused + " of " + requests.size() + " request(s) refused");
                return REFUSED;
            }
            return OK;
        }

        /** Why a parsed line cannot be sent as a request, or null. */
        static String checkRequest(JsonNode node) {
            if (!node.isObject()) {
                return "not a JSON object";
            }
            if (!node.path("op").isTextual()) {
                return "no \"op\" (a request names its operation, e.g. {\"op\":\"list-ports\"})";
            }
            if (node.has("id")) {
                return "\"id\" is given by vportd ctl (responses come back in the order of the lines)";
            }
            String op = node.get("op").asText();
            if (op.equals("subscribe") || node.path("follow").asBoolean(false)) {
                return "'" + op + "' with a stream of events or output does not fit a batch (use 'vportd ctl "
                        + (op.equals("subscribe") ? "events" : "log --follow") + "')";
            }
            return null;
        }
    }

    @Command(name = "log", description = {
            "Print a port's recent guest output (its replay ring, replay=SIZE) and, with --follow, its live output.",
            "Read-only: the port's endpoint keeps its interactive client. A follower that cannot keep up is dropped",
            "(exit status 1). Output is printed as UTF-8 text; --json gives the exact bytes (base64).",
            "In a daemon of several devices, name the device with --device (before the command)."})
    static final class Log implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Parameters(index = "0", paramLabel = "NR|name=NAME")
        String port;
        @Option(names = "--tail", paramLabel = "N", description = "only the last N lines of the replay ring (default: all of it)")
        int tail = -1;
        @Option(names = "--follow", description = "go on printing the port's output as it comes, until interrupted")
        boolean follow;

        @Override
        public Integer call() {
            ObjectNode r = top.portOp("log");
            try {
                portRef(r, port);
            } catch (IllegalArgumentException e) {
                top.err.println("vportd ctl: " + e.getMessage());
                return USAGE;
            }
            if (tail >= 0) {
                r.put("tail", tail);
            }
            if (follow) {
                r.put("follow", true);
            }
            java.nio.charset.CharsetDecoder utf8 = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(java.nio.charset.CodingErrorAction.REPLACE)
                    .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPLACE);
            java.nio.ByteBuffer pending = java.nio.ByteBuffer.allocate(8);
            try (ApiClient c = ApiClient.connect(top.apiSocket)) {
                JsonNode resp = c.call(c.numbered(r));
                if (resp.has("error")) {
                    return top.print(resp, x -> { });
                }
                if (top.json) {
                    top.out.println(COMPACT.writeValueAsString(resp));
                } else {
                    printText(utf8, pending, java.util.Base64.getDecoder().decode(resp.path("data").asText()));
                }
                top.out.flush();
                while (follow) {
                    JsonNode e = c.nextEvent();
                    String type = e.path("event").asText();
                    if (top.json && (type.equals("log") || type.equals("log-end"))) {
                        top.out.println(COMPACT.writeValueAsString(e));
                    } else if (type.equals("log")) {
                        printText(utf8, pending, java.util.Base64.getDecoder().decode(e.path("data").path("data").asText()));
                    }
                    top.out.flush();
                    if (type.equals("log-end")) {
                        String why = e.path("data").path("reason").asText();
                        top.err.println("vportd ctl: the daemon ended the follow: " + why);
                        return why.equals("too-slow") ? REFUSED : OK;
                    }
                }
                return OK;
            } catch (IOException e) {
                top.err.println("vportd ctl: " + e.getMessage());
                return UNREACHABLE;
            }
        }

        /** Decodes a chunk, carrying an incomplete UTF-8 sequence over to the next one. */
        private void printText(java.nio.charset.CharsetDecoder utf8, java.nio.ByteBuffer pending, byte[] bytes) {
            java.nio.ByteBuffer in = java.nio.ByteBuffer.allocate(pending.position() + bytes.length);
            pending.flip();
            in.put(pending).put(bytes).flip();
            pending.clear();
            java.nio.CharBuffer chars = java.nio.CharBuffer.allocate(in.remaining() + 1);
            utf8.decode(in, chars, false);
            if (in.remaining() <= pending.capacity()) {
                pending.put(in);
            }
            chars.flip();
            top.out.print(chars);
        }
    }

    @Command(name = "list-devices", description = "List the devices the daemon serves (one, unless it was started with --config).")
    static final class ListDevices implements Callable<Integer> {
        @ParentCommand CtlCommand top;

        @Override
        public Integer call() {
            return top.send(op("list-devices"), resp -> {
                List<String[]> rows = new ArrayList<>();
                rows.add(new String[] {"DEVICE", "SOCKET", "MAX-PORTS", "PORTS", "FRONTEND"});
                for (JsonNode d : resp.path("devices")) {
                    rows.add(new String[] {d.path("device").asText(), d.path("socket").asText("-"),
                        d.path("max-ports").asText(), d.path("ports").asText(),
                        d.path("frontend-connected").asBoolean() ? "connected" : "-"});
                }
                top.table(rows);
            });
        }
    }

    @Command(name = "add-device", description = {
            "Start serving a further device (a daemon started with --config): its own vhost-user socket, for",
            "one more VM's QEMU to connect to. The same keys as a [[device]] table of the configuration file."})
    static final class AddDevice implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Option(names = "--id", required = true, paramLabel = "ID", description = "the device's id (letters, digits, . _ -)")
        String id;
        @Option(names = "--socket", required = true, paramLabel = "PATH", description = "the vhost-user socket its QEMU connects to")
        String socket;
        @Option(names = "--max-ports", paramLabel = "N", description = "max_nr_ports, 1..511 (default 31)")
        Integer maxPorts;
        @Option(names = "--port", paramLabel = "SPEC", description = "a port, in the --port syntax; repeat for more")
        List<String> ports = new ArrayList<>();
        @Option(names = "--allow-unsealed-memory", description = "accept guest memory not sealed against shrinking")
        boolean allowUnsealedMemory;

        @Override
        public Integer call() {
            ObjectNode r = op("add-device");
            ObjectNode c = r.putObject("config");
            c.put("id", id);
            c.put("socket", socket);
            if (maxPorts != null) {
                c.put("max-ports", maxPorts);
            }
            if (allowUnsealedMemory) {
                c.put("allow-unsealed-memory", true);
            }
            com.fasterxml.jackson.databind.node.ArrayNode list = c.putArray("ports");
            ports.forEach(list::add);
            return top.send(r, resp -> top.out.printf("device %s serving on %s (%d port(s))%n",
                    resp.path("device").path("device").asText(), resp.path("device").path("socket").asText(),
                    resp.path("device").path("ports").asInt()));
        }
    }

    @Command(name = "remove-device", description = {
            "Stop serving a device: its QEMU's vhost-user connection ends and its endpoints close. The guest is",
            "told nothing (no port is removed in it): unplug the device in QEMU first (device_del), as for any",
            "vhost-user device whose backend goes away."})
    static final class RemoveDevice implements Callable<Integer> {
        @ParentCommand CtlCommand top;
        @Parameters(paramLabel = "ID", description = "the device's id")
        String id;

        @Override
        public Integer call() {
            ObjectNode r = op("remove-device");
            r.put("device", id);
            return top.send(r, resp -> top.out.printf("removed device %s%n", resp.path("removed").asText()));
        }
    }

    // ------------------------------------------------------------------ tables

    void portTable(List<JsonNode> ports) {
        String[] head = {"NR", "NAME", "CONSOLE", "ENDPOINT", "GUEST", "HOST", "TO-HOST", "TO-GUEST", "HELD", "DROPPED"};
        List<String[]> rows = new ArrayList<>();
        rows.add(head);
        for (JsonNode p : ports) {
            rows.add(new String[] {
                p.path("nr").asText(),
                p.path("name").isNull() ? "-" : p.path("name").asText(),
                p.path("console").asBoolean() ? "yes" : "no",
                p.path("endpoint").asText(),
                p.path("guest-open").asBoolean() ? "open" : "closed",
                p.path("host-connected").asBoolean() ? "connected" : "-",
                p.path("to-host").path("bytes").asText() + "B/" + p.path("to-host").path("chains").asText(),
                p.path("to-guest").path("bytes").asText() + "B/" + p.path("to-guest").path("chains").asText(),
                p.path("held-waits").asText() + (p.path("holding-guest-data").asBoolean() ? "*" : ""),
                Long.toString(p.path("console-dropped-bytes").asLong() + p.path("host-write-errors").asLong()),
            });
        }
        table(rows);
    }

    /** Prints rows (the first is the heading) as aligned columns. */
    void table(List<String[]> rows) {
        int[] width = new int[rows.get(0).length];
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                width[i] = Math.max(width[i], r[i].length());
            }
        }
        for (String[] r : rows) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                b.append(r[i]);
                if (i + 1 < r.length) {
                    b.append(" ".repeat(width[i] - r[i].length() + 2));
                }
            }
            out.println(b.toString().stripTrailing());
        }
    }
}
