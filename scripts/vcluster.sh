#!/usr/bin/env bash
# A virtual cluster on this machine: node k is a ganeti-noded on 127.0.0.k
# with its own tree under $GANETI_VCLUSTER/nodek (default: .vcluster in the
# repository); node1 is the master.
#
#   scripts/vcluster.sh up [N]   build, then create and start an N-node cluster (default 3)
#   scripts/vcluster.sh env      print the environment that points the CLIs at it
#   scripts/vcluster.sh down     stop every daemon and instance, remove the cluster's files
#
# Every node's /srv/ganeti/shared-file-storage is the same directory
# ($GANETI_VCLUSTER/shared), as a `sharedfile` cluster needs.
# GANETI_VCLUSTER_HV: enabled hypervisors, the first the default (fake).
# GANETI_VCLUSTER_HVPARAMS: hypervisor parameters for init (-H), e.g.
#   kvm:kvm_flag=disabled,kernel_path=/path/vmlinuz
# GANETI_VCLUSTER_VG: give every node a volume group of that name (on a
#   sparse 20 GiB loop device of its own, which only that node's lvm sees
#   through its etc/lvm/lvm.conf) and enable the `plain` template; needs
#   root. Volumes can be created, listed, grown and removed; where the
#   kernel has no device-mapper they cannot be activated.
# GANETI_VCLUSTER_TEMPLATES: the enabled disk templates (default
#   file,diskless,sharedfile; plain is added with a volume group).
# GANETI_VCLUSTER_NICPARAMS: the NIC parameters for init (default link=br0).
# GANETI_VCLUSTER_IPOLICY_BOUNDS: the instance policy's bounds for init
#   (--ipolicy-bounds-specs); the default lets the tests' small instances
#   in (disks from 1 MiB, memory from 1 MiB, no NIC or disk needed), where
#   Ganeti's own default asks for at least 1 GiB of disk and 128 MiB of
#   memory and one NIC. Empty: Ganeti's default.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
base="${GANETI_VCLUSTER:-$repo/.vcluster}"
bin="${GANETI_BIN:-$repo/target/debug}"
# Node k listens on $net.k (several clusters can run side by side).
net="${GANETI_VCLUSTER_NET:-127.0.0}"

envvars() {
    echo "export GANETI_ROOTDIR=$base/node1 GANETI_HOSTNAME=node1 PATH=$bin:\$PATH"
}

# Node k's volume group on a loop device of its own: its lvm.conf accepts
# that device only, so each node sees its own group, as separate machines.
lvm_up() {
    local root="$1" vg="$2" img dev
    mkdir -p "$root/etc/lvm" "$base/lvm"
    img="$base/lvm/$(basename "$root").img"
    truncate -s 20544M "$img"
    dev=$(losetup -f --show "$img")
    echo "$dev" > "$root/etc/lvm/loop-device"
    cat > "$root/etc/lvm/lvm.conf" <<EOF
devices {
    filter = [ "a|^$dev\$|", "r|.*|" ]
    use_devicesfile = 0
}
backup {
    backup = 0
    archive = 0
}
EOF
    LVM_SYSTEM_DIR="$root/etc/lvm" LVM_SUPPRESS_FD_WARNINGS=1 \
        vgcreate --config 'global {activation=0}' "$vg" "$dev" >/dev/null
}

lvm_down() {
    local root="$1" dev vg
    dev=$(cat "$root/etc/lvm/loop-device" 2>/dev/null) || return 0
    export LVM_SYSTEM_DIR="$root/etc/lvm" LVM_SUPPRESS_FD_WARNINGS=1
    for vg in $(vgs --noheadings -o vg_name 2>/dev/null); do
        vgremove --config 'global {activation=0}' -f "$vg" >/dev/null 2>&1 || true
    done
    pvremove --config 'global {activation=0}' -ff -y "$dev" >/dev/null 2>&1 || true
    unset LVM_SYSTEM_DIR
    losetup -d "$dev" 2>/dev/null || true
}

down() {
    shopt -s nullglob
    local pids=()
    # Instances first (QEMU processes of the kvm hypervisor), then the
    # storage daemons of drbd disks, then the node and master daemons.
    for f in "$base"/node*/var/run/ganeti/kvm-hypervisor/pid/* "$base"/node*/var/run/ganeti/drbd/*.pid "$base"/node*/var/run/ganeti/*.pid; do
        pid=$(cat "$f" 2>/dev/null || true)
        # A QEMU's command line names its files below $base: a stale pid
        # file never gets an unrelated process killed.
        case "$f" in */kvm-hypervisor/*|*/drbd/*)
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$base/" || continue ;;
        esac
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for root in "$base"/node*; do lvm_down "$root"; done
    # FUSE exports of drbd disks end with their daemons; a mount point left
    # behind by one that was killed is unmounted before the files go.
    { grep -F " $base/" /proc/mounts 2>/dev/null || true; } | awk '{print $2}' | while read -r m; do
        fusermount -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$base"
}

up() {
    local n="${1:-3}"
    if [ -z "${GANETI_BIN:-}" ]; then
        (cd "$repo" && cargo build --workspace --bins --quiet)
    fi
    if [ -e "$base" ]; then
        echo "A virtual cluster exists at $base; run '$0 down' first" >&2
        exit 1
    fi
    mkdir -p "$base/shared"
    local hosts=""
    for k in $(seq "$n"); do hosts+="$net.$k node$k"$'\n'; done
    for k in $(seq "$n"); do
        local root="$base/node$k"
        mkdir -p "$root/etc" "$root/srv/ganeti/os"
        printf '%s' "$hosts" > "$root/etc/hosts"
        ln -s "$repo/share/os/tiny" "$root/srv/ganeti/os/tiny"
        ln -s "$base/shared" "$root/srv/ganeti/shared-file-storage"
        if [ -n "${GANETI_VCLUSTER_VG:-}" ]; then
            lvm_up "$root" "$GANETI_VCLUSTER_VG"
        fi
    done
    local templates="${GANETI_VCLUSTER_TEMPLATES:-file,diskless,sharedfile}" vgargs=()
    if [ -n "${GANETI_VCLUSTER_VG:-}" ]; then
        templates+=,plain
        vgargs=(--vg-name "$GANETI_VCLUSTER_VG")
    fi
    export GANETI_ROOTDIR="$base/node1" GANETI_HOSTNAME=node1
    export GANETI_FAKE_MEMORY="${GANETI_FAKE_MEMORY:-8192}"
    local hvargs=() bounds
    bounds="${GANETI_VCLUSTER_IPOLICY_BOUNDS-min:disk-size=1,cpu-count=1,disk-count=0,memory-size=1,nic-count=0,spindle-use=0/max:disk-size=1048576,cpu-count=8,disk-count=16,memory-size=32768,nic-count=8,spindle-use=12}"
    if [ -n "$bounds" ]; then
        vgargs+=(--ipolicy-bounds-specs="$bounds")
    fi
    if [ -n "${GANETI_VCLUSTER_HVPARAMS:-}" ]; then
        hvargs=(-H "$GANETI_VCLUSTER_HVPARAMS")
    fi
    "$bin/gnt-cluster" init --enabled-hypervisors="${GANETI_VCLUSTER_HV:-fake}" \
        "${hvargs[@]}" "${vgargs[@]}" \
        --enabled-disk-templates="$templates" \
        --nic-parameters="${GANETI_VCLUSTER_NICPARAMS:-link=br0}" vcluster
    for k in $(seq 2 "$n"); do
        "$bin/gnt-node" add "node$k"
    done
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    env) envvars ;;
    *) echo "usage: $0 up [N] | env | down" >&2; exit 2 ;;
esac
