#!/usr/bin/env bash
# Installs the Debian packages that building, the quickstart and the tests need.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# Build: a C compiler for the bundled SQLite (the machine has gcc).
# Tests: coreutils' timeout, the Python modules Debian's Ganeti 3.0 tools
# need (the compatibility test runs them against our master), and Debian's
# Ganeti 3.0 htools (the differential tests of our htools run them).
base=(coreutils python3 python3-simplejson python3-pyparsing python3-openssl
      python3-pyinotify python3-pycurl python3-paramiko python3-bitarray
      python3-psutil python3-yaml)
# Debian's full `ganeti` package (the differential oracle,
# ../shared/tools/ganeti-oracle-vc.sh, installs it) Conflicts with
# ganeti-htools but ships the same htools: either one will do, and asking
# for ganeti-htools while `ganeti` is there would remove the oracle.
have ganeti || base+=(ganeti-htools)
base+=(qemu-system-x86 cpio gzip)  # the test guest: scripts/build-test-guest.sh
base+=(socat iproute2)     # the kvm hypervisor: serial consoles, tap devices
base+=(lvm2)               # plain (LVM) disks; their tests make a volume group on loop devices
base+=(curl)               # RAPI: the README's examples and the token tests call it
base+=(qemu-utils fio)     # drbd disks: qemu-io in their tests, fio in their benchmark (qemu-storage-daemon is in qemu-system-x86)
for pkg in "$@" "${base[@]}"; do
    have "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! command -v cargo-nextest >/dev/null; then
    cargo install --locked cargo-nextest
fi
# Licences, bans and sources of the dependencies (deny.toml).
if ! command -v cargo-deny >/dev/null; then
    cargo install --locked cargo-deny
fi
