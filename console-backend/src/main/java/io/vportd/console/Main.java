package io.vportd.console;

import io.vportd.console.api.DataPlanePorts;
import io.vportd.console.api.ManagementServer;
import io.vportd.console.api.MetricsHttpServer;
import io.vportd.console.cli.DaemonConfig;
import io.vportd.console.cli.UsageException;
import io.vportd.console.cli.VportdCommand;
import io.vportd.console.ctl.CtlCommand;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.telemetry.MetricRegistry;
import io.vportd.telemetry.MetricSet;
import io.vportd.vhost.VhostUserServer;
import java.lang.System.Logger.Level;
import java.util.concurrent.CountDownLatch;

/** The vportd daemon: parse the command line, build the device, serve vhost-user until stopped. */
public final class Main {

    /** Exit status when the data-plane thread ends on its own (a supervisor should restart vportd). */
    static final int DATA_PLANE_DIED = 70;

    private Main() {
    }

    /** Puts the daemon's own counters (vhost-user sessions, the logger) beside the device's, so metrics exports them. */
    static void registerCounters(MetricRegistry registry, MetricSet vhost, MetricSet log) {
        registry.register(vhost);
        registry.register(log);
    }

    public static void main(String[] args) {
        if (args.length > 0 && args[0].equals("ctl")) {
            java.io.PrintWriter out = new java.io.PrintWriter(System.out, true, java.nio.charset.StandardCharsets.UTF_8);
            java.io.PrintWriter err = new java.io.PrintWriter(System.err, true, java.nio.charset.StandardCharsets.UTF_8);
            System.exit(CtlCommand.run(java.util.Arrays.copyOfRange(args, 1, args.length), out, err));
            return;
        }
        DaemonConfig config;
        try {
            config = VportdCommand.parse(args);
        } catch (UsageException e) {
            if (e.isInformational()) {
                System.out.print(e.getMessage());
                System.out.println();
            } else {
                System.err.println("vportd: " + e.getMessage());
            }
            System.exit(e.exitCode());
            return;
        }
        Logging.configure(config.logLevel());
        System.Logger log = System.getLogger("vportd");
        ConsoleDevice device;
        VhostUserServer server;
        try {
            device = new ConsoleDevice(config.maxPorts(), config.ports());
            device.dataPlane().setPollMicros(config.pollMicros());
        } catch (Exception e) {
            System.err.println("vportd: cannot set up the ports: " + e.getMessage());
            System.exit(1);
            return;
        }
        try {
            server = new VhostUserServer(config.socketPath(), device,
                    new VhostUserServer.Options(config.allowUnsealedMemory(), VhostUserServer.DEFAULT_HANDSHAKE_TIMEOUT));
            server.start();
        } catch (Exception e) {
            device.close();
            System.err.println("vportd: cannot serve vhost-user on " + config.socketPath() + ": " + e.getMessage());
            System.exit(1);
            return;
        }
        // Issue 11.3c: a process whose data plane died must not look alive to its supervisor.
        device.dataPlane().onUnexpectedStop(() -> Thread.ofPlatform().name("vportd-exit").start(() -> {
            log.log(Level.ERROR, "the data plane stopped unexpectedly; exiting");
            System.exit(DATA_PLANE_DIED);
        }));
        ManagementServer api = null;
        MetricsHttpServer metrics = null;
        try {
            DataPlanePorts ports = new DataPlanePorts(device.dataPlane());
            registerCounters(device.dataPlane().metrics(), server.stats().metrics(), Logging.metrics());
            if (config.apiSocket() != null) {
                api = ManagementServer.start(config.apiSocket(), ports);
                device.dataPlane().metrics().register(api.metrics());
                device.dataPlane().setEventListener(api);
            }
            if (config.metricsListen() != null) {
                metrics = MetricsHttpServer.start(config.metricsListen(), ports::metrics);
            }
        } catch (Exception e) {
            if (api != null) {
                api.close();
            }
            try {
                server.close();
            } catch (Exception closing) {
                e.addSuppressed(closing);
            }
            device.close();
            System.err.println("vportd: cannot start the management API or metrics: " + e.getMessage());
            System.exit(1);
            return;
        }
        ManagementServer apiServer = api;
        MetricsHttpServer metricsServer = metrics;
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.log(Level.INFO, "shutting down");
            if (metricsServer != null) {
                metricsServer.close();
            }
            if (apiServer != null) {
                device.dataPlane().setEventListener(null);
                apiServer.close();
            }
            try {
                server.close();
            } catch (Exception e) {
                log.log(Level.WARNING, "closing the vhost-user server: {0}", e.getMessage());
            }
            device.close();
            io.vportd.console.endpoint.BlockingFdBridge.awaitOutputPumps(2000);
            Logging.flush();
            stopped.countDown();
        }, "vportd-shutdown"));
        log.log(Level.INFO, "vportd serving {0} port(s) on {1}; max ports {2}, {3} queues",
                config.ports().size(), config.socketPath(), config.maxPorts(), device.queueCount());
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
