#!/usr/bin/env bash
# Makes Debian's Ganeti 3.0 Python command-line tools runnable from this
# repository, to serve as the compatibility oracle (tests/tests/compat_python.rs).
#
#   scripts/python-ganeti.sh    install what they need, unpack them, print the directory
#
# Idempotent. Installs with apt Debian's python3 and the python3-* modules that
# ganeti-3.0 depends on, downloads the arch-all package `ganeti-3.0` (it holds
# both the Python library `ganeti` and the gnt-* scripts, under
# usr/share/ganeti/3.0; the `ganeti` package adds only init scripts and
# symlinks) and unpacks it with dpkg-deb -x into the cache directory
# ($GANETI_PY_CACHE, default target/ganeti-py). Nothing of Ganeti itself is
# installed system-wide: no daemons, no init scripts.
#
# The printed directory D holds D/gnt-instance, D/gnt-node, ... and the package D/ganeti;
# run a tool as
#   PYTHONPATH=D GANETI_ROOTDIR=<node root> GANETI_HOSTNAME=node1 /usr/bin/python3 D/gnt-instance list
# (use Debian's /usr/bin/python3: the modules are Debian's python3-* packages).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${GANETI_PY_CACHE:-$repo/target/ganeti-py}"
version=3.0
modules=(python3 python3-simplejson python3-pyparsing python3-openssl
    python3-pyinotify python3-pycurl python3-paramiko python3-bitarray
    python3-psutil python3-yaml)

have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
updated=0
apt_update_once() {
    if [ "$updated" -eq 0 ]; then
        $SUDO apt-get update -q >&2
        updated=1
    fi
}

need=()
for pkg in "${modules[@]}"; do have "$pkg" || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

dir="$cache/usr/share/ganeti/$version"
if [ ! -f "$cache/.complete" ] || [ ! -x "$dir/gnt-instance" ]; then
    rm -rf "$cache"
    mkdir -p "$cache/debs"
    if ! (cd "$cache/debs" && apt-get download "ganeti-$version" >&2 2>/dev/null); then
        apt_update_once
        (cd "$cache/debs" && apt-get download "ganeti-$version" >&2)
    fi
    for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$cache"; done
    [ -x "$dir/gnt-instance" ] || { echo "ganeti-$version unpacked without $dir/gnt-instance" >&2; exit 1; }
    /usr/bin/python3 -c "import sys; sys.path.insert(0, '$dir'); import ganeti.cli" >&2
    touch "$cache/.complete"
fi
echo "$dir"
