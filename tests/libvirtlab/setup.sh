#!/usr/bin/env bash
# Sets up a real libvirtd with the QEMU driver on this machine (Debian 12, root, no systemd) for the
# `libvirtlab` tests, and installs libvirt-python into the repository's venv. Idempotent: run it again
# and it only starts what is not running.
#
#   bash tests/libvirtlab/setup.sh            # packages, users, dirs, virtlogd + libvirtd, libvirt-python
#   XENTUI_VENV=/path/to/venv bash tests/libvirtlab/setup.sh
#
# Guests run under TCG (type='qemu'): /dev/kvm exists on these machines but is not dependable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${XENTUI_VENV:-$repo/.venv}
packages=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 libvirt-dev pkg-config)

log() { printf 'libvirtlab: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root (it installs packages and starts libvirtd)"
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Without the recommends, the user the QEMU driver runs guests as is missing, and the driver refuses to load
# ("Failed to parse user 'libvirt-qemu'").
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent group kvm >/dev/null || groupadd --system kvm
getent passwd libvirt-qemu >/dev/null ||
    useradd --system --gid libvirt-qemu --groups kvm --home-dir /var/lib/libvirt --no-create-home \
        --shell /usr/sbin/nologin libvirt-qemu
getent group libvirt >/dev/null || groupadd --system libvirt

mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu/save /var/lib/libvirt/images

# /dev/kvm as Debian's udev rule would leave it (root:kvm 0660; no udev runs here). Otherwise libvirtd probes QEMU
# with KVM (as root), then finds KVM unusable for the libvirt-qemu user, throws its capability cache away and probes
# again on every call: about 55 s per domain start instead of 0.4 s. Guests still run under TCG (type='qemu').
if [ -e /dev/kvm ]; then
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
fi

running() { pgrep -x "$1" >/dev/null 2>&1; }

if ! running virtlogd; then
    log "starting virtlogd"
    virtlogd -d
fi
if ! running libvirtd; then
    log "starting libvirtd"
    libvirtd -d
fi
for _ in $(seq 1 100); do
    if virsh -c qemu:///system version >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
    log "libvirtd does not answer on qemu:///system; see /var/log/libvirt/libvirtd.log"
    virsh -c qemu:///system version || true
    exit 1
fi

if [ -x "$venv/bin/python" ]; then
    if ! "$venv/bin/python" -c 'import libvirt' 2>/dev/null; then
        log "pip-installing libvirt-python into $venv (built against libvirt-dev)"
        "$venv/bin/pip" install -q 'libvirt-python>=9.0'
    fi
else
    log "no venv at $venv: libvirt-python not installed (set XENTUI_VENV)"
fi
log "ready: $(virsh -c qemu:///system version --daemon 2>/dev/null | tr '\n' ' ')"
