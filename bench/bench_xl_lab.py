"""The xl backend beside xentop on a real Xen host (the lab), at a few domains and at tens of small PV guests.

Run (as root, with the Xen lab built: tests/xenlab/build.sh):

    XENTUI_LAB_MEMORY_MB=6144 python3 bench/bench_xl_lab.py [--guests 30] [--keep]

It boots the lab (or reuses a running one), measures in dom0 with bench/xl_lab_dom0.py, creates ``--guests``
PV guests of 80 MiB (the lab guest's Debian cloud kernel needs that much to unpack; as many as the free memory
allows, each with a vif on xenbr0 and a 16 MiB file disk), waits until they are up, measures again, destroys
them (unless ``--keep``) and prints both runs, the cost per domain, and xentui's against xentop's.
The lab runs under QEMU TCG: every figure is many times what it would be on hardware; the ratios are the point.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.xenlab.lab import Lab  # noqa: E402

GUEST_MIB = 80

CREATE = r"""
set -e
mkdir -p /var/lib/xentui-bench
for i in $(seq -w 1 "$1"); do
  name=bench-$i
  xl domid "$name" >/dev/null 2>&1 && continue
  img=/var/lib/xentui-bench/$name.img
  [ -e "$img" ] || truncate -s 16M "$img"
  cat > "/var/lib/xentui-bench/$name.cfg" <<CFG
name = "$name"
type = "pv"
kernel = "/var/lib/xentui-lab/guest/vmlinuz"
ramdisk = "/var/lib/xentui-lab/guest/initrd.gz"
extra = "console=hvc0 xentui_hostname=$name"
memory = $2
vcpus = 1
vif = [ 'bridge=xenbr0' ]
disk = [ 'format=raw, vdev=xvda, access=rw, target=$img' ]
on_crash = "destroy"
CFG
  xl create "/var/lib/xentui-bench/$name.cfg" > "/var/lib/xentui-bench/$name.log" 2>&1 \
    || { echo "creating $name failed: $(tail -2 "/var/lib/xentui-bench/$name.log" | tr '\n' ' ')" >&2; exit 1; }
done
"""

READY = r"""
n=0
for name in $(xl list | awk '/^bench-/ {print $1}'); do
  grep -q XENTUI-GUEST-READY "/var/log/xen/console/guest-$name.log" 2>/dev/null && n=$((n + 1))
done
echo $n
"""

DESTROY = "for name in $(xl list | awk '/^bench-/ {print $1}'); do xl destroy $name; done; rm -rf /var/lib/xentui-bench"


def measure(lab: Lab, refreshes: int, tui_seconds: float) -> dict:
    out = lab.ssh(["sh", "-c", f"cd /root/xentui && /root/venv/bin/python bench/xl_lab_dom0.py "
                   f"--refreshes {refreshes} --tui-seconds {tui_seconds}"], timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])


def free_mib(lab: Lab) -> int:
    for line in lab.ssh(["xl", "info"]).stdout.splitlines():
        if line.startswith("free_memory"):
            return int(line.split(":")[1])
    raise RuntimeError("xl info gave no free_memory")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=30)
    parser.add_argument("--refreshes", type=int, default=20)
    parser.add_argument("--tui-seconds", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="leave the guests running")
    args = parser.parse_args()
    lab = Lab()
    if not lab.built():
        print("the Xen lab is not built: tests/xenlab/build.sh", file=sys.stderr)
        return 2
    lab.boot()
    lab.wait_guests()
    lab.sync()
    lab.ssh(["sh", "-c", DESTROY], check=False, timeout=600)
    time.sleep(10)
    base = measure(lab, args.refreshes, args.tui_seconds)
    guests = min(args.guests, (free_mib(lab) - 64) // (GUEST_MIB + 8))
    if guests < args.guests:
        print(f"(only {guests} guests of {GUEST_MIB} MiB fit: boot the lab with more, e.g. "
              f"XENTUI_LAB_MEMORY_MB={3072 + (args.guests + 2) * (GUEST_MIB + 8)})")
    started = time.monotonic()
    lab.ssh(["sh", "-c", CREATE, "create", str(guests), str(GUEST_MIB)], timeout=1800)
    while int(lab.ssh(["sh", "-c", READY]).stdout.strip() or 0) < guests:
        if time.monotonic() - started > 1800:
            raise RuntimeError("the bench guests did not come up in 30 minutes")
        time.sleep(10)
    print(f"{guests} guests created and up in {time.monotonic() - started:.0f} s")
    time.sleep(20)  # let the boots' tail (and dom0's blkback and netback) settle
    try:
        scaled = measure(lab, args.refreshes, args.tui_seconds)
    finally:
        if not args.keep:
            lab.ssh(["sh", "-c", DESTROY], check=False, timeout=600)
    added = scaled["domains"] - base["domains"]

    def row(label: str, key: str) -> None:
        a, b = base[key], scaled[key]
        print(f"{label:38s} {a:9.1f} {b:9.1f} {(b - a) / added:9.2f}")

    print(f"Xen lab (Xen 4.17, dom0 under QEMU TCG), CPU ms (user+system) per refresh / iteration, at "
          f"{base['domains']} and {scaled['domains']} domains, and per added domain")
    print(f"{'':38s} {base['domains']:6d} dom {scaled['domains']:6d} dom {'per dom':>9s}")
    row("xentop -b, per iteration", "xentop_ms")
    row("xentui sample + rates (libxenstat)", "sample_ms")
    row("xentui TUI at -d 1, per refresh", "tui_ms")
    row("xentop stream: xentui's work", "stream_ms")
    row("xentop stream: its xentop child", "stream_xentop_ms")
    for label, key in (("sample / xentop", "sample_ms"), ("TUI / xentop", "tui_ms")):
        print(f"{label:38s} {base[key] / base['xentop_ms']:9.2f} {scaled[key] / scaled['xentop_ms']:9.2f}")
    print(f"xl list -l runs over {base['refreshes']} + {scaled['refreshes']} refreshes (no domain came or went): "
          f"{base['xl_list_long_runs']} + {scaled['xl_list_long_runs']}")
    print(json.dumps({"base": base, "scaled": scaled}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
