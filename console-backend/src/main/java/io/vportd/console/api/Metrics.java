package io.vportd.console.api;

import io.vportd.console.control.ControlStats;
import io.vportd.console.device.DeviceCounters;
import io.vportd.console.device.PortCounters;
import io.vportd.console.device.PortStatus;
import io.vportd.console.device.QueueMap;
import io.vportd.console.device.QueueStatus;
import io.vportd.vhost.VhostStats;
import io.vportd.vring.ChainError;
import io.vportd.vring.QueueStats;
import java.util.List;
import java.util.Locale;
import java.util.function.ToLongFunction;

/**
 * Renders vportd's counters in the Prometheus text exposition format (version 0.0.4): per port
 * (bytes, chains, held waits, drops), per virtqueue (chains, bytes, interrupts, bad chains by
 * reason) and device-wide (control protocol, emergency writes, removals).
 */
public final class Metrics {

    /** The Content-Type of the format. */
    public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    private Metrics() {
    }

    public static String render(List<PortStatus> ports, List<QueueStatus> queues, DeviceCounters device,
            ControlStats control) {
        StringBuilder b = new StringBuilder(4096);
        portBytes(b, ports, "vportd_port_bytes_total", "Bytes moved by a port, by direction.");
        portCounter(b, ports, "vportd_port_chains_to_host_total", "Guest buffers completed toward the host.",
                c -> c.get(PortCounters.CHAINS_TO_HOST));
        portCounter(b, ports, "vportd_port_chains_to_guest_total", "Host data buffers handed to the guest.",
                c -> c.get(PortCounters.CHAINS_TO_GUEST));
        portCounter(b, ports, "vportd_port_held_waits_total",
                "Times a port held a guest buffer because the host was not ready (back-pressure).",
                c -> c.get(PortCounters.HELD_WAITS));
        portCounter(b, ports, "vportd_port_console_dropped_bytes_total",
                "Console output dropped because the host was too slow and the backlog was full.",
                c -> c.get(PortCounters.CONSOLE_DROPPED_BYTES));
        portCounter(b, ports, "vportd_port_discarded_bytes_total", "Guest output thrown away by a null endpoint.",
                c -> c.get(PortCounters.DISCARDED_BYTES));
        portCounter(b, ports, "vportd_port_host_write_errors_total", "Failed writes to the host endpoint.",
                c -> c.get(PortCounters.HOST_WRITE_ERRORS));
        header(b, "vportd_port_guest_open", "gauge", "1 while the guest has the port open.");
        for (PortStatus p : ports) {
            b.append("vportd_port_guest_open").append(portLabels(p)).append(' ').append(p.guestOpen() ? 1 : 0).append('\n');
        }
        header(b, "vportd_port_host_connected", "gauge", "1 while the host endpoint is connected.");
        for (PortStatus p : ports) {
            b.append("vportd_port_host_connected").append(portLabels(p)).append(' ').append(p.hostConnected() ? 1 : 0)
                    .append('\n');
        }
        header(b, "vportd_port_holding_guest_data", "gauge", "1 while a guest buffer waits for the host.");
        for (PortStatus p : ports) {
            b.append("vportd_port_holding_guest_data").append(portLabels(p)).append(' ')
                    .append(p.holdingGuestData() ? 1 : 0).append('\n');
        }

        queueCounter(b, queues, "vportd_queue_chains_total", "Descriptor chains popped from a virtqueue.", QueueStats::chains);
        queueCounter(b, queues, "vportd_queue_chain_bytes_total", "Bytes of the chains popped.", QueueStats::chainBytes);
        queueCounter(b, queues, "vportd_queue_used_bytes_total", "Bytes reported in used entries.", QueueStats::usedBytes);
        queueCounter(b, queues, "vportd_queue_interrupts_total", "Guest notifications sent.", QueueStats::interrupts);
        queueCounter(b, queues, "vportd_queue_interrupts_suppressed_total",
                "Guest notifications the guest asked not to get.", QueueStats::interruptsSuppressed);
        header(b, "vportd_queue_bad_chains_total", "counter",
                "Malformed (hostile) descriptor chains, completed empty, by reason.");
        for (QueueStatus q : queues) {
            for (ChainError e : ChainError.values()) {
                long v = q.stats().badChains(e);
                if (v != 0) {
                    b.append("vportd_queue_bad_chains_total").append(queueLabels(q, ",reason=\""
                            + e.name().toLowerCase(Locale.ROOT) + "\"")).append(' ').append(v).append('\n');
                }
            }
            b.append("vportd_queue_bad_chains_total").append(queueLabels(q, ",reason=\"all\"")).append(' ')
                    .append(q.stats().badChains()).append('\n');
        }

        device(b, "vportd_control_messages_in_total", "Control messages from the guest accepted.", control.messagesIn());
        device(b, "vportd_control_messages_out_total", "Control messages sent to the guest.", control.messagesOut());
        device(b, "vportd_control_rejected_total", "Control messages from the guest rejected (malformed, hostile).",
                control.rejected());
        device(b, "vportd_control_truncated_total", "Guest control buffers too small for the next message, given back empty (the message waits).",
                device.controlTruncated());
        device(b, "vportd_emergency_writes_total", "Characters written through emerg_wr.", device.emergencyWrites());
        device(b, "vportd_emergency_writes_dropped_total", "emerg_wr characters with no console port to go to.",
                device.emergencyWritesDropped());
        device(b, "vportd_removed_undelivered_bytes_total",
                "Guest output a port removal could not hand to the host (reported to the remover).",
                device.removedUndeliveredBytes());
        device(b, "vportd_guest_memory_faults_total",
                "Faults in guest memory (a frontend truncated a memory file); each ended its vhost-user session.",
                device.guestMemoryFaults());
        device(b, "vportd_kick_failures_total", "Kick descriptors that failed to drain; each ended its session.",
                device.kickFailures());
        device(b, "vportd_calls_saturated_total",
                "Guest interrupts not written because the call eventfd counter was at its maximum.", device.callsSaturated());
        header(b, "vportd_ports", "gauge", "Ports the device has.");
        b.append("vportd_ports ").append(ports.size()).append('\n');
        return b.toString();
    }

    /** The vhost-user server's counters of frontend misbehaviour (appended to {@link #render}'s output). */
    public static String vhost(VhostStats s) {
        StringBuilder b = new StringBuilder(1024);
        device(b, "vportd_vhost_rejected_messages_total", "vhost-user messages refused (each ended its session).",
                s.rejectedMessages());
        device(b, "vportd_vhost_unknown_requests_total", "vhost-user requests vportd does not know (skipped).",
                s.unknownRequests());
        device(b, "vportd_vhost_unoffered_feature_acks_total", "SET_FEATURES acknowledging bits never offered.",
                s.unofferedFeatureAcks());
        device(b, "vportd_vhost_refused_fds_total", "Kick/call/err descriptors refused because they are not eventfds.",
                s.refusedFds());
        device(b, "vportd_vhost_unsealed_memory_refused_total",
                "Memory regions refused: file not sealed against shrinking (see --allow-unsealed-memory).",
                s.unsealedMemoryRefused());
        device(b, "vportd_vhost_unsealed_memory_allowed_total",
                "Unsealed memory regions accepted under --allow-unsealed-memory.", s.unsealedMemoryAllowed());
        device(b, "vportd_vhost_idle_handshakes_total", "Frontends dropped for sending nothing in time.",
                s.idleHandshakes());
        device(b, "vportd_vhost_sessions_ended_by_device_total",
                "Sessions the device ended (guest memory fault, broken kick descriptor).", s.sessionsEndedByDevice());
        return b.toString();
    }

    private static void header(StringBuilder b, String name, String type, String help) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void portBytes(StringBuilder b, List<PortStatus> ports, String name, String help) {
        header(b, name, "counter", help);
        for (PortStatus p : ports) {
            String labels = portLabels(p);
            String base = labels.substring(0, labels.length() - 1);
            b.append(name).append(base).append(",direction=\"to_host\"} ")
                    .append(p.counters().get(PortCounters.BYTES_TO_HOST)).append('\n');
            b.append(name).append(base).append(",direction=\"to_guest\"} ")
                    .append(p.counters().get(PortCounters.BYTES_TO_GUEST)).append('\n');
        }
    }

    private static void portCounter(StringBuilder b, List<PortStatus> ports, String name, String help,
            ToLongFunction<PortCounters> value) {
        header(b, name, "counter", help);
        for (PortStatus p : ports) {
            b.append(name).append(portLabels(p)).append(' ').append(value.applyAsLong(p.counters())).append('\n');
        }
    }

    private static void queueCounter(StringBuilder b, List<QueueStatus> queues, String name, String help,
            ToLongFunction<QueueStats> value) {
        header(b, name, "counter", help);
        for (QueueStatus q : queues) {
            b.append(name).append(queueLabels(q, "")).append(' ').append(value.applyAsLong(q.stats())).append('\n');
        }
    }

    private static void device(StringBuilder b, String name, String help, long value) {
        header(b, name, "counter", help);
        b.append(name).append(' ').append(value).append('\n');
    }

    static String portLabels(PortStatus p) {
        return "{port=\"" + p.id() + "\",name=\"" + escape(p.name() == null ? "" : p.name()) + "\"}";
    }

    private static String queueLabels(QueueStatus q, String extra) {
        String port = q.port() == QueueMap.CONTROL ? "control" : Integer.toString(q.port());
        return "{queue=\"" + q.index() + "\",port=\"" + port + "\",direction=\"" + q.direction() + "\"" + extra + "}";
    }

    /** Label values escape backslash, double quote and newline. */
    static String escape(String v) {
        StringBuilder b = new StringBuilder(v.length());
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            switch (c) {
                case '\\' -> b.append("\\\\");
                case '"' -> b.append("\\\"");
                case '\n' -> b.append("\\n");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
