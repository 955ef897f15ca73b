#!/usr/bin/env bash
# Build the xentui Xen lab: a real Xen 4.17 hypervisor + a Debian bookworm dom0 (as one initramfs) + the lab
# guest, booted under QEMU TCG by tests/xenlab/lab.py.
#
#   tests/xenlab/build.sh [CACHE_DIR]
#
# Output in ${CACHE_DIR:-${XENTUI_LAB_CACHE:-$HOME/.cache/xentui-lab}}/xen/:
#   xen                  the hypervisor (xen-hypervisor-4.17-amd64's boot/xen-4.17-amd64.gz, gunzipped: multiboot ELF)
#   vmlinuz-dom0         the dom0 kernel (linux-image-6.1.0-*-amd64)
#   dom0.cpio.gz         dom0's whole root: base.cpio.gz (debootstrap) + overlay.cpio.gz (init, modules, venv, ...)
#   id_ed25519{,.pub}    the key that logs in as root to dom0
#   stamp                hash of every input; nothing is rebuilt while it matches
# Intermediate: base/ (the debootstrapped root), base.cpio.gz, overlay/, wheelhouse/, ../debs/ (downloaded .debs).
# Needs root (debootstrap, chroot). Installs the host packages it needs with apt-get.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${1:-${XENTUI_LAB_CACHE:-$HOME/.cache/xentui-lab}}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
OUT="$CACHE/xen"
DEBS="$CACHE/debs"
SUITE=bookworm
MIRROR="${XENTUI_LAB_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${XENTUI_LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# dom0 userland. xen-utils-4.17 and friends come from bookworm-security in a second step so that they match
# the hypervisor's version (debootstrap only reads the one suite). qemu-system-xen is the device model of HVM guests
# (/usr/libexec/xen-qemu-system-i386, with seabios; hvmloader comes with xen-utils-4.17): tests/xenlab/test_hvm_lab.py.
BASE_PKGS="python3,python3-venv,kmod,iproute2,iputils-ping,procps,openssh-server,openssh-client,bridge-utils,tmux,util-linux,less"
XEN_PKGS="xen-utils-4.17 xen-utils-common xenstore-utils libxenmisc4.17 qemu-system-xen"
# libvirt with its Xen (libxl) driver, for the libvirt backend against xen:///system (libvirt-daemon pulls in the
# QEMU driver, which loads but finds no QEMU); python3-libvirt is linked into /root/venv (see the overlay).
LIBVIRT_PKGS="libvirt-daemon libvirt-daemon-driver-xen libvirt-clients python3-libvirt"
# LVM for guests' disks on logical volumes and their snapshots (a volume group on a loop device, see dom0/init).
LVM_PKGS="lvm2"
# Modules dom0 loads (their dependencies are added): Xen backends, the bridge, loop, the NIC QEMU gives it, and
# 9p over virtio for the storage two lab instances share (a directory of this machine, see lab.py).
DOM0_MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback xen-netback bridge loop tun virtio_net virtio_pci virtio_blk 9p 9pnet_virtio dm_mod dm_snapshot"
# Python packages for dom0's /root/venv: xentui's runtime dependencies (read from pyproject.toml) + these.
EXTRA_WHEELS="setuptools>=68 wheel pytest pytest-asyncio"

T0=$(date +%s.%N)
now() { date +%s.%N; }
phase() { awk -v now="$(now)" -v t0="$2" -v n="$1" 'BEGIN { printf "[xenlab] %-34s %6.1f s\n", n, now - t0 }'; }
log() { echo "[xenlab] $*"; }

# ---------------------------------------------------------------------------------------------------------
t=$(now)
missing=()
for tool in qemu-system-x86_64:qemu-system-x86 debootstrap:debootstrap cpio:cpio ssh:openssh-client \
    ssh-keygen:openssh-client depmod:kmod gzip:gzip; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if ((${#missing[@]})); then
    log "installing host packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi
phase "host packages" "$t"

# ---------------------------------------------------------------------------------------------------------
t=$(now)
"$REPO/tests/guestimage/build.sh" "$CACHE" | sed 's/^/  /'
phase "guest image" "$t"

# ---------------------------------------------------------------------------------------------------------
t=$(now)
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}'; }
if [ -z "$(candidate xen-hypervisor-4.17-amd64)" ] || [ "$(candidate xen-hypervisor-4.17-amd64)" = "(none)" ]; then
    apt-get update -qq
fi
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
KVERSION=$(candidate "$KPKG")
XVERSION=$(candidate xen-hypervisor-4.17-amd64)
# Runtime dependencies of xentui, from pyproject.toml (so a new dependency rebuilds the wheelhouse).
PYDEPS=$(python3 - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
EOF
)
hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }
BASE_STAMP=$(echo "v1 $SUITE $MIRROR $SECURITY_MIRROR $BASE_PKGS $XEN_PKGS $LIBVIRT_PKGS $LVM_PKGS $XVERSION" | sha256sum | cut -d' ' -f1)
WHEEL_STAMP=$(echo "v1 $PYDEPS $EXTRA_WHEELS $(python3 -V)" | sha256sum | cut -d' ' -f1)
STAMP=$( {
    echo "$BASE_STAMP $WHEEL_STAMP $KPKG=$KVERSION xen=$XVERSION $DOM0_MODULES"
    cat "$CACHE/guest/stamp"
    hash_files "$HERE/build.sh" "$HERE"/dom0/* "$REPO/pyproject.toml"
} | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP" ] && [ -f "$OUT/dom0.cpio.gz" ]; then
    log "up to date: $OUT (xen $XVERSION, dom0 $KPKG $KVERSION)"
    phase "total" "$T0"
    exit 0
fi
phase "resolve versions" "$t"

# ---------------------------------------------------------------------------------------------------------
t=$(now)
mkdir -p "$DEBS" "$OUT"
fetch() { # fetch PKG VERSION -> path of the .deb in $DEBS
    local pkg=$1 ver=$2 f
    f=$(ls "$DEBS/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$f" ]; then
        (cd "$DEBS" && apt-get download -q "$pkg=$ver" >/dev/null 2>&1) \
            || (apt-get update -qq && cd "$DEBS" && apt-get download -q "$pkg" >/dev/null 2>&1)
        f=$(ls -t "$DEBS/${pkg}_"*.deb | head -1)
    fi
    echo "$f"
}
XDEB=$(fetch xen-hypervisor-4.17-amd64 "$XVERSION")
KDEB=$(fetch "$KPKG" "$KVERSION")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xentui-xenlab.XXXXXX")
cleanup() {
    for m in dev/pts dev proc; do mountpoint -q "$OUT/base/$m" 2>/dev/null && umount -l "$OUT/base/$m"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
dpkg-deb -x "$XDEB" "$WORK/xen"
gunzip -c "$WORK/xen/boot/xen-4.17-amd64.gz" > "$OUT/xen.new" && mv "$OUT/xen.new" "$OUT/xen"
dpkg-deb -x "$KDEB" "$WORK/k"
KVER=$(ls "$WORK/k/lib/modules" | head -1)
cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT/vmlinuz-dom0"
phase "hypervisor + dom0 kernel" "$t"

# ---------------------------------------------------------------------------------------------------------
# The dom0 root: debootstrap minbase, then the Xen tools from bookworm-security. Kept in $OUT/base and packed
# into base.cpio.gz; redone only when the package lists or the Xen version change.
if [ ! -f "$OUT/base.stamp" ] || [ "$(cat "$OUT/base.stamp")" != "$BASE_STAMP" ] || [ ! -f "$OUT/base.cpio.gz" ]; then
    t=$(now)
    rm -rf "$OUT/base" "$OUT/base.cpio.gz" "$OUT/base.stamp"
    mkdir -p "$CACHE/debootstrap-cache"
    debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-cache" --include="$BASE_PKGS" \
        "$SUITE" "$OUT/base" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -30 "$WORK/debootstrap.log"; exit 1; }
    phase "debootstrap" "$t"

    t=$(now)
    B="$OUT/base"
    cat > "$B/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
    printf '#!/bin/sh\nexit 101\n' > "$B/usr/sbin/policy-rc.d"; chmod 0755 "$B/usr/sbin/policy-rc.d"
    mount -t proc proc "$B/proc"
    mount --bind /dev "$B/dev"
    mount --bind /dev/pts "$B/dev/pts"
    chroot "$B" apt-get update -qq > "$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; exit 1; }
    chroot "$B" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $XEN_PKGS \
        >> "$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log"; exit 1; }
    chroot "$B" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $LVM_PKGS \
        >> "$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log"; exit 1; }
    phase "xen tools in dom0 root" "$t"

    t=$(now)
    chroot "$B" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $LIBVIRT_PKGS \
        >> "$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log"; exit 1; }
    # The users libvirt-daemon-system would create: without libvirt-qemu the QEMU driver fails to initialise
    # ("Failed to parse user 'libvirt-qemu'") and libvirtd with it.
    chroot "$B" sh -c 'getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
        getent group kvm >/dev/null || groupadd --system kvm
        getent group libvirt >/dev/null || groupadd --system libvirt
        getent passwd libvirt-qemu >/dev/null || useradd --system --gid libvirt-qemu --groups kvm \
            --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin libvirt-qemu'
    chroot "$B" dpkg-query -W -f '${Package} ${Version}\n' > "$OUT/dom0-packages.txt"
    umount "$B/dev/pts" "$B/dev" "$B/proc"
    rm -f "$B/usr/sbin/policy-rc.d"
    # Slim it: the package cache, lists, docs, man pages, locales (dom0 runs on LANG=C.UTF-8).
    rm -rf "$B"/var/cache/apt/*.bin "$B"/var/cache/apt/archives/*.deb "$B"/var/lib/apt/lists/* \
        "$B"/usr/share/doc/* "$B"/usr/share/man/* "$B"/usr/share/info/* "$B"/usr/share/locale/*
    log "dom0 root: $(du -sh "$B" | cut -f1), xen tools $(awk '$1 == "xen-utils-4.17" {print $2}' "$OUT/dom0-packages.txt"), libvirt $(awk '$1 == "libvirt-daemon" {print $2}' "$OUT/dom0-packages.txt")"
    phase "libvirt in dom0 root" "$t"

    t=$(now)
    (cd "$B" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -1 > "$OUT/base.cpio.gz"
    echo "$BASE_STAMP" > "$OUT/base.stamp"
    log "base.cpio.gz: $(du -h "$OUT/base.cpio.gz" | cut -f1)"
    phase "pack base.cpio.gz" "$t"
fi

# ---------------------------------------------------------------------------------------------------------
t=$(now)
WH="$OUT/wheelhouse"
if [ ! -f "$WH/stamp" ] || [ "$(cat "$WH/stamp")" != "$WHEEL_STAMP" ]; then
    rm -rf "$WH"; mkdir -p "$WH"
    # shellcheck disable=SC2086
    python3 -m pip download -q --disable-pip-version-check --only-binary=:all: -d "$WH" $PYDEPS $EXTRA_WHEELS
    echo "$WHEEL_STAMP" > "$WH/stamp"
fi
log "wheelhouse: $(ls "$WH"/*.whl | wc -l) wheels"
phase "wheelhouse" "$t"

# ---------------------------------------------------------------------------------------------------------
# The overlay: everything that changes more often than the base, packed as a second cpio that the kernel
# unpacks over the first (concatenated initramfs archives).
t=$(now)
O="$OUT/overlay"
rm -rf "$O"; mkdir -p "$O"
# kernel modules: the closure of DOM0_MODULES, then depmod. They go to usr/lib/modules: the root is
# merged-usr (/lib -> usr/lib) and a lib/ directory in the overlay would replace that symlink when unpacked.
depmod -b "$WORK/k" "$KVER"
KMOD="$WORK/k/lib/modules/$KVER"
M="$WORK/m"
for m in $DOM0_MODULES; do
    if grep -qE "/${m//[-_]/[_-]}\.ko\$" "$KMOD/modules.builtin"; then continue; fi
    modprobe -d "$WORK/k" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r ko; do
    rel=${ko#"$KMOD/"}
    mkdir -p "$M/lib/modules/$KVER/$(dirname "$rel")"
    cp "$ko" "$M/lib/modules/$KVER/$rel"
done
cp "$KMOD"/modules.{order,builtin,builtin.modinfo} "$M/lib/modules/$KVER/"
depmod -b "$M" "$KVER"
mkdir -p "$O/usr/lib"
cp -r "$M/lib/modules" "$O/usr/lib/modules"
log "dom0 modules: $(find "$O/usr/lib/modules" -name '*.ko' | wc -l) (kernel $KVER)"

# /init, lab scripts and guest configs
install -m 0755 "$HERE/dom0/init" "$O/init"
mkdir -p "$O/etc/xen" "$O/usr/local/sbin" "$O/var/lib/xentui-lab/guest" "$O/root/.ssh"
for f in "$HERE"/dom0/*.cfg "$HERE"/dom0/*.xml; do install -m 0644 "$f" "$O/etc/xen/"; done
for f in "$HERE"/dom0/xentui-*; do install -m 0755 "$f" "$O/usr/local/sbin/"; done
# libvirt's cpu_map gets a model the lab's TCG CPU matches (see dom0/x86_xenlab.xml: without it the libxl driver
# does not start); index.xml is the base's with one more include.
CPU_MAP=usr/share/libvirt/cpu_map
mkdir -p "$O/$CPU_MAP"
install -m 0644 "$HERE/dom0/x86_xenlab.xml" "$O/$CPU_MAP/"
sed "s|^\( *\)<include filename='x86_qemu64.xml'/>|&\n\1<include filename='x86_xenlab.xml'/>|" \
    "$OUT/base/$CPU_MAP/index.xml" > "$O/$CPU_MAP/index.xml"
grep -q "x86_xenlab.xml" "$O/$CPU_MAP/index.xml" || { log "cannot add x86_xenlab.xml to libvirt's cpu_map"; exit 1; }
cp "$CACHE/guest/vmlinuz" "$CACHE/guest/initrd.gz" "$O/var/lib/xentui-lab/guest/"
# LVM without udev (dom0 has none): lvm makes the /dev/VG/LV and /dev/mapper nodes itself, waits for no udev
# event, and starts no dmeventd to monitor snapshots. lvm reads lvmlocal.conf after lvm.conf.
mkdir -p "$O/etc/lvm"
install -m 0644 "$HERE/dom0/lvmlocal.conf" "$O/etc/lvm/lvmlocal.conf"

# ssh: the lab key (host -> dom0 root) and dom0's own key (dom0 -> localhost, and to the other lab's dom0 on the
# private link 10.98.0.0/24, for xl migrate: every instance boots this same root, so the same key gets in)
[ -f "$OUT/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C xentui-lab -f "$OUT/id_ed25519"
[ -f "$OUT/dom0_id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C root@xenlab-dom0 -f "$OUT/dom0_id_ed25519"
cp "$OUT/dom0_id_ed25519" "$O/root/.ssh/id_ed25519"
cp "$OUT/dom0_id_ed25519.pub" "$O/root/.ssh/id_ed25519.pub"
cat "$OUT/id_ed25519.pub" "$OUT/dom0_id_ed25519.pub" > "$O/root/.ssh/authorized_keys"
cat > "$O/root/.ssh/config" <<'EOF'
Host localhost 127.0.0.1 xenlab-dom0 10.98.0.*
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
EOF
chmod 0700 "$O/root" "$O/root/.ssh"; chmod 0600 "$O/root/.ssh/"*

# The wheelhouse and /root/venv with xentui's dependencies and xentui itself, built in the base root with dom0's
# own python, then moved into the overlay. xentui is installed editable in setuptools' "compat" mode (a .pth
# that puts /root/xentui on sys.path), so `lab.py sync` only has to replace the files in /root/xentui; pip runs
# again only when pyproject.toml changes. Compat, not the default strict mode: strict mode's import hook comes
# after the path finder, and from cwd /root the checkout /root/xentui (no __init__.py) would then be imported as
# an empty namespace package. The themes/ -> xentui.themes mapping is a symlink xentui/themes -> ../themes.
cp -r "$WH" "$O/root/wheelhouse"
B="$OUT/base"
rm -rf "$B/root/venv" "$B/root/wheelhouse" "$B/root/xentui"
cp -r "$WH" "$B/root/wheelhouse"
mkdir -p "$B/root/xentui"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && xargs -0 sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' sh) \
    | tar -C "$REPO" --null -T - -cf - | tar -C "$B/root/xentui" -xf -
ln -sfn ../themes "$B/root/xentui/xentui/themes"
CHROOT_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PIP_CONFIG_FILE=/dev/null)
PIP=(/root/venv/bin/pip install -q --disable-pip-version-check --no-index --find-links /root/wheelhouse)
chroot "$B" "${CHROOT_ENV[@]}" python3 -m venv /root/venv
# shellcheck disable=SC2086
chroot "$B" "${CHROOT_ENV[@]}" "${PIP[@]}" $PYDEPS $EXTRA_WHEELS
chroot "$B" "${CHROOT_ENV[@]}" "${PIP[@]}" --no-build-isolation --config-settings editable_mode=compat -e /root/xentui
# libvirt-python: Debian's python3-libvirt (built for this python and this libvirt), its modules and egg-info
# linked into the venv (not --system-site-packages: only these, nothing else of dom0's python).
SITE=$(chroot "$B" "${CHROOT_ENV[@]}" /root/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
for f in "$B"/usr/lib/python3/dist-packages/libvirt*; do
    ln -s "/usr/lib/python3/dist-packages/${f##*/}" "$B$SITE/${f##*/}"
done
chroot "$B" "${CHROOT_ENV[@]}" /root/venv/bin/python -c 'import libvirt' \
    || { log "libvirt-python does not import in /root/venv"; exit 1; }
sha256sum "$B/root/xentui/pyproject.toml" | cut -d' ' -f1 > "$B/root/venv/.xentui-pyproject"
mv "$B/root/venv" "$O/root/venv"
mv "$B/root/xentui" "$O/root/xentui"
rm -rf "$B/root/wheelhouse"
phase "overlay (modules, keys, venv)" "$t"

t=$(now)
(cd "$O" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) | gzip -1 > "$OUT/overlay.cpio.gz"
cat "$OUT/base.cpio.gz" "$OUT/overlay.cpio.gz" > "$OUT/dom0.cpio.gz.new"
mv "$OUT/dom0.cpio.gz.new" "$OUT/dom0.cpio.gz"
echo "$KVER" > "$OUT/dom0-kernel-version"
echo "$XVERSION" > "$OUT/xen-version"
echo "$STAMP" > "$OUT/stamp"
log "overlay.cpio.gz $(du -h "$OUT/overlay.cpio.gz" | cut -f1), dom0.cpio.gz $(du -h "$OUT/dom0.cpio.gz" | cut -f1)"
phase "pack dom0.cpio.gz" "$t"
phase "total" "$T0"
