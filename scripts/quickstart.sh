#!/usr/bin/env bash
# Quickstart: installs what is needed, builds, brings up a 3-node virtual
# cluster on this machine whose default hypervisor is kvm (QEMU, TCG), boots
# a real guest (scripts/build-test-guest.sh), reads its serial console,
# live-migrates it while it runs, and adds a fake-hypervisor instance.
# Tear it down afterwards with: scripts/vcluster.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
echo "== building"
cargo build --workspace --bins --quiet
echo "== the test guest (Debian's cloud kernel + a busybox initramfs)"
./scripts/build-test-guest.sh target/test-guest
guest="$PWD/target/test-guest"
scripts/vcluster.sh down >/dev/null 2>&1 || true
echo "== bringing up a 3-node virtual cluster (node k = ganeti-noded on 127.0.0.k)"
GANETI_VCLUSTER_HV=kvm,fake \
GANETI_VCLUSTER_HVPARAMS="kvm:kvm_flag=disabled,kernel_path=$guest/vmlinuz,initrd_path=$guest/initrd.img,serial_console=true,kernel_args=panic=-1 quiet,vnc_bind_address=,machine_version=pc" \
    scripts/vcluster.sh up 3
eval "$(scripts/vcluster.sh env)"

# Three counter lines from the guest's serial console (waits for the guest
# to boot: about 3 s under TCG, longer on a busy machine).
serial() {
    local sock
    sock="$(gnt-instance console --show-cmd "$1" | sed -n 's/.*UNIX-CONNECT:\([^ ]*\).*/\1/p' | tr -d "'")"
    timeout 120 socat -u "UNIX-CONNECT:$sock" STDOUT 2>/dev/null | grep -a -m 3 '^counter' | tr -d '\r' || true
}

set -x
gnt-cluster info | head -8
gnt-node list
gnt-instance add -t sharedfile --disk 0:size=64M --no-nics -B maxmem=128,minmem=128 \
    -o tiny -n node1 --no-name-check --no-ip-check guest1
gnt-instance add -H fake -t file --disk 0:size=256M -o tiny -n node2 \
    --no-name-check --no-ip-check web1
gnt-instance list -o name,hypervisor,pnode,status,oper_ram,disk_template
gnt-instance console --show-cmd guest1
serial guest1
gnt-instance migrate -f --target-node node2 guest1
serial guest1
gnt-instance failover -f --target-node node3 guest1
gnt-instance list -o name,hypervisor,pnode,status
gnt-job list
gnt-cluster verify
set +x
echo
echo "guest1 is a QEMU process: 'gnt-instance console guest1' attaches its serial"
echo "console (Ctrl-] leaves). Point the gnt-* tools at the cluster with:"
echo "  eval \"\$(scripts/vcluster.sh env)\""
echo "and stop it (daemons and QEMU processes) with: scripts/vcluster.sh down"
