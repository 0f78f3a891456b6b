# Shared helpers for the rig scripts. Sourced, never run.
# shellcheck shell=bash

RIG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$RIG_DIR/../.." && pwd)"
CACHE_ROOT="${VPORTD_CACHE:-$REPO_ROOT/.cache}"
RIG_CACHE="$CACHE_ROOT/rig"
# Bump these when the recipe changes so that old caches are rebuilt, not trusted.
ROOTFS_VERSION=1
GUEST_VERSION=2
ROOTFS_DIR="$RIG_CACHE/rootfs-v$ROOTFS_VERSION"
GUEST_DIR="$RIG_CACHE/guest-v$GUEST_VERSION"
# qemu-guest-agent from the trixie tree's apt, with its shared libraries, laid out to be
# copied into a guest's initramfs (PackageInstallIT). Installed into a throwaway overlay of the
# rootfs, so the rootfs itself (and its version) stays as it is.
QGA_VERSION=1
QGA_DIR="$RIG_CACHE/qga-v$QGA_VERSION"
GUEST_SUITE=trixie
GUEST_BACKPORTS=trixie-backports
# The modules the guest needs (their dependencies are found through modules.dep).
GUEST_MODULES=(virtio_pci virtio_console)

say()  { printf 'rig: %s\n' "$*" >&2; }
die()  { printf 'rig: ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "$1 must run as root (it uses chroot, mounts and apt-get)"
}

# The Debian mirror this host already uses, read from its apt sources (never hard-coded).
host_debian_mirror() {
  local uri=""
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # deb822: take the first URIs line of a stanza that is not the security archive
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && !sec) { print u; exit } u=""; sec=0; next }
      tolower($1) == "uris:" { u=$2; if (u ~ /security/) sec=1 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i ~ /security/) sec=1 }
      END { if (u != "" && !sec) print u }' "$f" | head -n1)
    [[ -n $uri ]] && break
  done
  if [[ -z $uri ]]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -r $f ]] || continue
      uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i ~ /:\/\//) { if ($i !~ /security/) { print $i; exit } } }' "$f" | head -n1)
      [[ -n $uri ]] && break
    done
  fi
  [[ -n $uri ]] || die "could not find a Debian mirror in the host's apt sources (/etc/apt/sources.list*)"
  printf '%s\n' "${uri%/}"
}

# Removes a folder of ours that may still hold mounts (an mmdebstrap killed outright leaves
# /dev, /proc, /sys mounted in its chroot): unmount everything below it first, and never
# let rm cross into another file system.
safe_rm() {
  local dir=$1 m
  [[ -e $dir ]] || return 0
  dir=$(cd "$dir" && pwd -P)
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir/" '{ gsub(/\\040/, " ", $2); if (index($2 "/", d) == 1) print $2 }' /proc/self/mounts | sort -r)
  rm -rf --one-file-system "$dir"
}

rootfs_ready() { [[ -f $ROOTFS_DIR/.vportd-rootfs-complete ]]; }
guest_ready()  { [[ -f $GUEST_DIR/.vportd-guest-complete ]]; }
qga_ready()    { [[ -f $QGA_DIR/.vportd-qga-complete ]]; }

# Path (inside the rootfs) of the guest kernel image.
guest_kernel_in_rootfs() {
  local k
  k=$(cd "$ROOTFS_DIR" && ls -1 boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)
  [[ -n $k ]] || die "no kernel under $ROOTFS_DIR/boot (rootfs incomplete? run integration-tests/rig/setup)"
  printf '/%s\n' "$k"
}
