package io.vportd.console;

import io.vportd.console.cli.DaemonConfig;
import io.vportd.console.cli.UsageException;
import io.vportd.console.cli.VportdCommand;
import io.vportd.console.device.ConsoleDevice;
import io.vportd.vhost.VhostUserServer;
import java.lang.System.Logger.Level;
import java.util.concurrent.CountDownLatch;

/** The vportd daemon: parse the command line, build the device, serve vhost-user until stopped. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
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
        } catch (Exception e) {
            System.err.println("vportd: cannot set up the ports: " + e.getMessage());
            System.exit(1);
            return;
        }
        try {
            server = new VhostUserServer(config.socketPath(), device);
            server.start();
        } catch (Exception e) {
            device.close();
            System.err.println("vportd: cannot serve vhost-user on " + config.socketPath() + ": " + e.getMessage());
            System.exit(1);
            return;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.log(Level.INFO, "shutting down");
            try {
                server.close();
            } catch (Exception e) {
                log.log(Level.WARNING, "closing the vhost-user server: {0}", e.getMessage());
            }
            device.close();
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
