#!/usr/bin/env bash
# Build the xentui lab guest: a Debian bookworm cloud kernel + a busybox initramfs that boots both as a
# Xen PV domU (console hvc0) and as a QEMU/libvirt guest (console ttyS0).
#
#   tests/guestimage/build.sh [CACHE_DIR]
#
# Output: ${CACHE_DIR:-${XENTUI_LAB_CACHE:-$HOME/.cache/xentui-lab}}/guest/{vmlinuz,initrd.gz,kernel-version,stamp}
# Nothing is rebuilt when the stamp (hash of this script, the /init and the package versions) is unchanged.
# Needs: apt-get (Debian bookworm package lists), dpkg-deb, cpio, gzip, kmod (depmod/modprobe). Root only to
# install missing tools.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${1:-${XENTUI_LAB_CACHE:-$HOME/.cache/xentui-lab}}"
OUT="$CACHE/guest"
DEBS="$CACHE/debs"
T0=$(date +%s.%N)

phase() { # phase NAME START: print how long a phase took
    awk -v now="$(date +%s.%N)" -v t0="$2" -v n="$1" 'BEGIN { printf "[guestimage] %-28s %6.1f s\n", n, now - t0 }'
}
log() { echo "[guestimage] $*"; }

need_tools() {
    local missing=()
    command -v dpkg-deb >/dev/null || missing+=(dpkg)
    command -v cpio >/dev/null || missing+=(cpio)
    command -v depmod >/dev/null || missing+=(kmod)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
}

candidate() { # candidate PKG: the version apt would download
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'
}

need_tools
t=$(date +%s.%N)
if [ -z "$(candidate busybox-static)" ] || [ "$(candidate busybox-static)" = "(none)" ]; then
    log "no package lists: apt-get update"
    apt-get update -qq
fi
KPKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$KPKG" ] || { echo "cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
KVER_PKG=$(candidate "$KPKG")
BB_VER=$(candidate busybox-static)
STAMP=$( {
    sha256sum "$HERE/build.sh" "$HERE/init" | cut -d' ' -f1
    echo "$KPKG=$KVER_PKG busybox-static=$BB_VER"
} | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.gz" ]; then
    log "up to date ($OUT, $KPKG $KVER_PKG, busybox $BB_VER)"
    exit 0
fi
phase "resolve versions" "$t"

# ---- download the two packages (kept in $DEBS, shared with tests/xenlab) ----
t=$(date +%s.%N)
mkdir -p "$DEBS" "$OUT"
fetch() { # fetch PKG VERSION: path of the .deb in $DEBS, downloaded if missing
    local pkg=$1 ver=$2 f
    f=$(ls "$DEBS/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$f" ]; then
        (cd "$DEBS" && apt-get download -q "$pkg=$ver" >/dev/null 2>&1) \
            || (apt-get update -qq && cd "$DEBS" && apt-get download -q "$pkg" >/dev/null 2>&1)
        f=$(ls -t "$DEBS/${pkg}_"*.deb | head -1)
    fi
    echo "$f"
}
KDEB=$(fetch "$KPKG" "$KVER_PKG")
BBDEB=$(fetch busybox-static "$BB_VER")
phase "download packages" "$t"

# ---- unpack, pick modules ----
t=$(date +%s.%N)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xentui-guestimage.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$KDEB" "$WORK/k"
dpkg-deb -x "$BBDEB" "$WORK/bb"
KVER=$(ls "$WORK/k/lib/modules" | head -1)
depmod -b "$WORK/k" "$KVER"
KMOD="$WORK/k/lib/modules/$KVER"

# The drivers a guest needs. Virtio ones load in dependency order (modprobe --show-depends lists the
# dependencies first): loading virtio_balloon before virtio/virtio_ring fails, and a balloon that did not
# load makes a libvirt setMemory change nothing inside the guest.
# button + evdev: the ACPI power button, so a libvirt/QEMU shutdown (ACPI) reaches busybox acpid in /init.
WANT="virtio_pci virtio_net virtio_blk virtio_balloon virtio_console virtio_rng xen_netfront xen_blkfront button evdev"
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,mnt,var/log} "$R/lib/modules/$KVER"
: > "$R/etc/modules.order"
for m in $WANT; do
    if grep -qE "/${m//_/[_-]}\.ko\$" "$KMOD/modules.builtin"; then
        log "$m is built in"
        continue
    fi
    modprobe -d "$WORK/k" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
    rel=${ko#"$KMOD/"}
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$rel")"
    cp "$ko" "$R/lib/modules/$KVER/$rel"
    echo "$rel" >> "$R/etc/modules.order"
done
cp "$KMOD"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$R" "$KVER"
log "modules (load order): $(xargs -n1 basename < "$R/etc/modules.order" | tr '\n' ' ')"

# ---- busybox + /init ----
cp "$WORK/bb/bin/busybox" "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list-full); do
    [ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done
install -m 0755 "$HERE/init" "$R/init"
# A graceful power-off request through Xen (xl shutdown) makes the kernel run
# /sbin/poweroff. Busybox's applet would signal PID 1, which is our /init shell and ignores it:
# power off at once instead, as a distribution's init would after stopping its services.
rm -f "$R/sbin/poweroff"
printf '#!/bin/busybox sh\nsync\nexec /bin/busybox poweroff -f\n' > "$R/sbin/poweroff"
chmod 0755 "$R/sbin/poweroff"
cat > "$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
    deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
EOF
chmod 0755 "$R/etc/udhcpc.script"
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
phase "unpack + modules + busybox" "$t"

# ---- pack ----
t=$(date +%s.%N)
(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) | gzip -9 > "$OUT/initrd.gz.new"
cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT/vmlinuz.new"
mv "$OUT/initrd.gz.new" "$OUT/initrd.gz"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kernel-version"
echo "$STAMP" > "$OUT/stamp"
phase "pack initrd" "$t"
log "built $OUT: vmlinuz ($(du -h "$OUT/vmlinuz" | cut -f1)), initrd.gz ($(du -h "$OUT/initrd.gz" | cut -f1)), kernel $KVER"
phase "total" "$T0"
