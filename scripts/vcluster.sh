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
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
base="${GANETI_VCLUSTER:-$repo/.vcluster}"
bin="${GANETI_BIN:-$repo/target/debug}"
# Node k listens on $net.k (several clusters can run side by side).
net="${GANETI_VCLUSTER_NET:-127.0.0}"

envvars() {
    echo "export GANETI_ROOTDIR=$base/node1 GANETI_HOSTNAME=node1 PATH=$bin:\$PATH"
}

down() {
    shopt -s nullglob
    local pids=()
    # Instances first (QEMU processes of the kvm hypervisor), then daemons.
    for f in "$base"/node*/var/run/ganeti/kvm-hypervisor/pid/* "$base"/node*/var/run/ganeti/*.pid; do
        pid=$(cat "$f" 2>/dev/null || true)
        # A QEMU's command line names its sockets below $base: a stale pid
        # file never gets an unrelated process killed.
        case "$f" in */kvm-hypervisor/*)
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
    done
    export GANETI_ROOTDIR="$base/node1" GANETI_HOSTNAME=node1
    export GANETI_FAKE_MEMORY="${GANETI_FAKE_MEMORY:-8192}"
    local hvargs=()
    if [ -n "${GANETI_VCLUSTER_HVPARAMS:-}" ]; then
        hvargs=(-H "$GANETI_VCLUSTER_HVPARAMS")
    fi
    "$bin/gnt-cluster" init --enabled-hypervisors="${GANETI_VCLUSTER_HV:-fake}" \
        "${hvargs[@]}" \
        --enabled-disk-templates=file,diskless,sharedfile \
        --nic-parameters=link=br0 vcluster
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
