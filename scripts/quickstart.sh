#!/usr/bin/env bash
# Quickstart: installs what is needed, builds, brings up a 3-node virtual
# cluster on this machine, creates and starts two instances and lists them.
# Tear it down afterwards with: scripts/vcluster.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
echo "== building"
cargo build --workspace --bins --quiet
scripts/vcluster.sh down >/dev/null 2>&1 || true
echo "== bringing up a 3-node virtual cluster (node k = ganeti-noded on 127.0.0.k)"
scripts/vcluster.sh up 3
eval "$(scripts/vcluster.sh env)"
set -x
gnt-cluster info | head -8
gnt-node list
gnt-instance add -t file --disk 0:size=256M -o tiny -n node2 --no-name-check --no-ip-check web1
gnt-instance add -t diskless -o tiny -n node3 -B maxmem=256 --no-name-check --no-ip-check db1
gnt-instance list -o name,pnode,status,oper_ram,disk.sizes,nic.macs
gnt-instance shutdown db1
gnt-instance list
gnt-job list
gnt-cluster verify
set +x
echo
echo "The cluster keeps running. Point the gnt-* tools at it with:"
echo "  eval \"\$(scripts/vcluster.sh env)\""
echo "and stop it with: scripts/vcluster.sh down"
