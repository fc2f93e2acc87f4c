#!/usr/bin/env bash
# Builds the test guest for the KVM hypervisor's tests:
#
#   OUTDIR/vmlinuz     Debian's cloud kernel (linux-image-cloud-amd64)
#   OUTDIR/initrd.img  a gzip'ed cpio initramfs of busybox-static whose /init
#                      mounts /proc, /sys and /dev, loads the virtio drivers
#                      (PCI, balloon, block, net), starts acpid, prints
#                      "ganeti-rs test guest booted" on the serial console,
#                      then "counter 1", "counter 2", ... every 100 ms forever.
#                      With "counter_disk=DEV" on the kernel command line
#                      (e.g. counter_disk=/dev/vda) it keeps the counter on
#                      that disk: at boot it prints "resumed from N", N the
#                      last counter found there (0 on a blank disk), and
#                      counts on from N; each counter is written to the
#                      disk's first sector (O_DIRECT, then fsync) before it
#                      is printed, so a printed counter is on the disk.
#                      The ACPI power button powers it off (QMP
#                      system_powerdown, ganeti's soft shutdown). The boot
#                      line comes only once acpid listens to the power button,
#                      so a power-down sent after it is never missed.
#
# Boot it with: qemu-system-x86_64 -m 256 -nographic -kernel vmlinuz
#   -initrd initrd.img -append "console=ttyS0 panic=-1 quiet"
#
# Usage: build-test-guest.sh [OUTDIR]   (default: target/test-guest/)
# Idempotent and cached: does nothing when both outputs exist and are newer
# than this script. The packages are fetched with `apt-get download` and
# unpacked with `dpkg-deb -x`, never installed. Needs apt, dpkg, cpio, gzip.
set -euo pipefail

script="$(readlink -f "$0")"
root="$(dirname "$script")/.."
out="${1:-$root/target/test-guest}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

fresh() { [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] &&
    [ "$out/vmlinuz" -nt "$script" ] && [ "$out/initrd.img" -nt "$script" ]; }
fresh && exit 0

# One build at a time per OUTDIR; a second caller waits and then finds the
# outputs built.
exec 9>"$out/.lock"
flock 9
fresh && exit 0

for tool in apt-get apt-cache dpkg-deb cpio gzip; do
    command -v "$tool" >/dev/null ||
        { echo "build-test-guest: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

work="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

# The metapackage depends on the versioned kernel package, which holds the
# kernel and its modules.
meta=linux-image-cloud-amd64
kpkg="$(apt-cache depends "$meta" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1)"
if [ -z "$kpkg" ]; then
    echo "build-test-guest: no versioned kernel package found for $meta" \
        "(is the apt index there? try apt-get update)" >&2
    exit 1
fi
# apt-get download as root warns that the download is unsandboxed: harmless.
if ! apt-get download -q "$kpkg" busybox-static >download.log 2>&1; then
    cat download.log >&2
    echo "build-test-guest: apt-get download $kpkg busybox-static failed" >&2
    exit 1
fi
dpkg-deb -x "$kpkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
kver="${kpkg#linux-image-}"
moddir="kernel/lib/modules/$kver/kernel/drivers"

# The initramfs. Serial (8250), devtmpfs and gzip'ed initrds are built into
# the cloud kernel; the ACPI power button and the input events it is read
# from are modules (button, evdev), loaded by /init.
r=initramfs
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,lib/modules,etc/acpi/PWRF}
cp busybox/bin/busybox "$r/bin/busybox"
# Modules, in load order (dependencies first).
modules="virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev
    virtio/virtio_pci_legacy_dev virtio/virtio_pci virtio/virtio_balloon
    block/virtio_blk ../net/core/failover net/net_failover net/virtio_net
    input/evdev acpi/button"
: >"$r/lib/modules/order"
for m in $modules; do
    cp "$moddir/$m.ko" "$r/lib/modules/"
    basename "$m" >>"$r/lib/modules/order"
done
# busybox acpid runs /etc/acpi/PWRF/00000080 on a power button press.
cat >"$r/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "ganeti-rs test guest: power button, powering off" >/dev/ttyS0
poweroff -f
EOF
cat >"$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/ttyS0 >/dev/ttyS0 2>&1
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m.ko"
done
# acpid in the foreground (of a background job), so we know its pid; the
# guest is ready once acpid holds the power button's event device open.
acpid -f -c /etc/acpi -l /dev/null &
acpid_pid=$!
if [ -d /sys/firmware/acpi ]; then
    n=0
    until ls -l "/proc/$acpid_pid/fd" 2>/dev/null | grep -q /dev/input/event; do
        n=$((n + 1))
        [ "$n" -ge 1000 ] && { echo "test guest: acpid did not open the power button"; break; }
        usleep 10000
    done
fi
# The disk that keeps the counter, if the kernel command line names one.
disk=""
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        counter_disk=*) disk="${arg#counter_disk=}" ;;
    esac
done
i=0
if [ -n "$disk" ]; then
    n=0
    until [ -b "$disk" ]; do
        n=$((n + 1))
        [ "$n" -ge 1000 ] && { echo "test guest: no counter disk $disk"; break; }
        usleep 10000
    done
    # The first sector holds "ganeti-rs counter N" and zeros.
    last=$(dd if="$disk" bs=512 count=1 iflag=direct 2>/dev/null | tr -d '\000' |
        sed -n 's/^ganeti-rs counter \([0-9][0-9]*\)$/\1/p')
    i=${last:-0}
fi
echo "ganeti-rs test guest booted"
[ -n "$disk" ] && echo "resumed from $i"
while :; do
    i=$((i + 1))
    if [ -n "$disk" ]; then
        printf 'ganeti-rs counter %d\n' "$i" |
            dd of="$disk" bs=512 count=1 conv=sync,notrunc,fsync oflag=direct 2>/dev/null ||
            echo "test guest: cannot write counter $i to $disk"
    fi
    echo "counter $i"
    usleep 100000
done
EOF
chmod 755 "$r/init" "$r/etc/acpi/PWRF/00000080"
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 >initrd.img

cp "kernel/boot/vmlinuz-$kver" vmlinuz
mv -f vmlinuz "$out/vmlinuz"
mv -f initrd.img "$out/initrd.img"
echo "build-test-guest: $out/vmlinuz ($kpkg), $out/initrd.img"
