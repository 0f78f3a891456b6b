# Shared helpers for the real-systemd rig (integration-tests/rig/systemd). Sourced, never run.
# shellcheck shell=bash

SD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$SD_DIR/../lib.sh"

# Bump when the recipe changes so that an old tree is rebuilt, not trusted.
SD_TREE_VERSION=1
SD_SUITE=bookworm
SD_CACHE="$CACHE_ROOT/systemd-rig"
SD_TREE="$SD_CACHE/$SD_SUITE-v$SD_TREE_VERSION"
# The JDK the tree's services run with: bind-mounted read-only at the same path inside.
SD_JDK="${VPORTD_SD_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}"
# Where a booted tree's host folder is mounted inside (sockets, unit files, results).
SD_SHARE_IN_TREE=/vportd-share

sd_tree_ready() { [[ -f $SD_TREE/.vportd-sd-tree-complete ]]; }
