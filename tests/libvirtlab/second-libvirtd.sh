#!/usr/bin/env bash
# A second libvirtd on this machine, as a migration target: its own mount namespace with private
# /run/libvirt, /var/lib/libvirt/qemu, /var/log/libvirt/qemu and /etc/libvirt (its own host UUID), its socket
# in /run/xentui-lab2 where the first libvirtd can reach it. Same network namespace: migration data goes
# over 127.0.0.1. Guest images under /var/lib/libvirt/images are shared, as shared storage would be.
#
#   bash tests/libvirtlab/second-libvirtd.sh start   # prints the URI: qemu+unix:///system?socket=/run/xentui-lab2/libvirt-sock
#   bash tests/libvirtlab/second-libvirtd.sh stop
set -euo pipefail
dir=/run/xentui-lab2
# qemu+unix, not qemu: a source libvirtd would take plain qemu:///system for its own driver, in process
uri="qemu+unix:///system?socket=$dir/libvirt-sock"

stop() {
    for name in libvirtd virtlogd; do
        if [ -f "$dir/$name.pid" ]; then
            pid=$(cat "$dir/$name.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    rm -rf "$dir"
}

case "${1:-start}" in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

if [ -S "$dir/libvirt-sock" ] && virsh -c "$uri" version >/dev/null 2>&1; then
    echo "$uri"
    exit 0
fi
stop
mkdir -p "$dir/etc"
cp -a /etc/libvirt/. "$dir/etc/"
cat > "$dir/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$dir"
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
CONF
cat >> "$dir/etc/qemu.conf" <<'CONF'
# the second daemon shares image files with the first: let neither remember owners in xattrs
remember_owner = 0
CONF
unshare --mount --propagation private bash -c "
    set -e
    mount --bind '$dir/etc' /etc/libvirt
    mount -t tmpfs tmpfs /run/libvirt
    mount -t tmpfs tmpfs /var/lib/libvirt/qemu
    mount -t tmpfs tmpfs /var/log/libvirt/qemu
    mkdir -p /var/lib/libvirt/qemu/save
    virtlogd -d -p '$dir/virtlogd.pid'
    libvirtd -d -p '$dir/libvirtd.pid' -f /etc/libvirt/libvirtd.conf
"
for _ in $(seq 1 100); do
    virsh -c "$uri" version >/dev/null 2>&1 && break
    sleep 0.1
done
virsh -c "$uri" version >/dev/null
echo "$uri"
