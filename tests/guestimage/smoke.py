#!/usr/bin/env python3
"""Boot the lab guest under plain QEMU (TCG) and check that its console shell answers.

    python3 tests/guestimage/smoke.py [CACHE_DIR]

Exit 0 when the guest printed XENTUI-GUEST-READY, showed its prompt and answered `uname -r` with the kernel
version, and listed virtio_balloon among its modules. Stdlib only.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path


def cache_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("XENTUI_LAB_CACHE") or Path.home() / ".cache" / "xentui-lab")


def main(argv: list[str]) -> int:
    guest = cache_dir(argv[1] if len(argv) > 1 else None) / "guest"
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        print("qemu-system-x86_64 missing (apt-get install qemu-system-x86)", file=sys.stderr)
        return 2
    kver = (guest / "kernel-version").read_text().strip()
    cmd = [
        qemu, "-machine", "q35", "-cpu", "qemu64", "-m", "256", "-smp", "2", "-nographic", "-no-reboot",
        "-kernel", str(guest / "vmlinuz"), "-initrd", str(guest / "initrd.gz"),
        "-append", "console=ttyS0 xentui_hostname=smoke panic=-1",
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
        "-device", "virtio-balloon-pci",
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    full = bytearray()

    def wait_for(token: bytes, timeout: float) -> bool:
        nonlocal out
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    return False
                out += chunk
                full.extend(chunk)
                if token in out:
                    return True
        return False

    ok = False
    try:
        if not wait_for(b"smoke# ", 120):
            print("no prompt", file=sys.stderr)
            return 1
        t_ready = time.monotonic() - t0
        out = b""
        proc.stdin.write(b"uname -r; echo DONE-$((6*7))\n")
        proc.stdin.flush()
        if not wait_for(b"DONE-42", 20):
            print("no answer to uname -r", file=sys.stderr)
            return 1
        ok = kver.encode() in out and b"virtio_balloon" in full and b"XENTUI-GUEST-READY" in full
        print(f"guest prompt after {t_ready:.1f} s; uname -r answered: {ok}")
        return 0 if ok else 1
    finally:
        proc.kill()
        proc.wait()
        log = full.decode(errors="replace")
        (guest / "smoke.log").write_text(log)
        if not ok:
            print(log[-4000:], file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
