package io.vportd.console.cli;

/**
 * What a vportd command line asks for: one device described by options ({@link DaemonConfig}), or
 * devices described by a configuration file ({@link DevicesConfig}).
 */
public sealed interface Invocation permits DaemonConfig, DevicesConfig {

    /** The level to log at. */
    System.Logger.Level logLevel();
}
