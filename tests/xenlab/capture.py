#!/usr/bin/env python3
"""Capture real output from the Xen lab into tests/fixtures/xenlab-*.txt.

    python3 tests/xenlab/lab.py boot && python3 tests/xenlab/lab.py guests
    python3 tests/xenlab/capture.py [--only NAME ...]

Each file starts with a ``# source:`` line saying where and with what command it was captured (and, for the
commands that may fail, their exit status); the command's output follows unchanged. The migrate and save/restore
captures change guest2's domain id, so they run last. Stdlib only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab as labmod

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def describe(lab: labmod.Lab) -> str:
    info = lab.ssh(["xl", "info"]).stdout
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    xen = f"{fields['xen_major'].strip()}.{fields['xen_minor'].strip()}{fields['xen_extra'].strip()}"
    pkg = lab.ssh("dpkg-query -W -f '${Version}' xen-utils-4.17").stdout.strip()
    kernel = lab.ssh(["uname", "-r"]).stdout.strip()
    return (f"xentui Xen lab (tests/xenlab), Xen {xen} (Debian {pkg}) under QEMU TCG (q35, -cpu {labmod.CPU}, 2 CPUs, "
            f"{labmod.MEMORY_MB} MiB), Debian 12 dom0 (kernel {kernel}, dom0_mem={labmod.DOM0_MEM}), "
            f"guests guest1 and guest2 (PV, Debian cloud kernel + busybox), captured {dt.date.today().isoformat()}")


def write(name: str, header: list[str], body: str) -> None:
    path = FIXTURES / name
    path.write_text("".join(f"{h}\n" for h in header) + body)
    print(f"wrote {path} ({len(body.splitlines())} lines)")


def run(lab: labmod.Lab, cmd: str) -> tuple[int, str]:
    """Run a shell command line in dom0; stdout and stderr interleaved as a terminal would show them."""
    r = lab.ssh(f"{cmd} 2>&1", check=False, timeout=300)
    return r.returncode, r.stdout


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="capture only these (names without xenlab- and .txt)")
    args = ap.parse_args(argv[1:])
    lab = labmod.Lab()
    if not lab.attach():
        print("the lab is not running: python3 tests/xenlab/lab.py boot", file=sys.stderr)
        return 1
    lab.wait_guests()
    src = describe(lab)

    def want(n: str) -> bool:
        return not args.only or n in args.only

    # some traffic on the guests' vifs so the Net rows are not all zero
    lab.ssh("ping -c 3 -i 0.3 10.99.0.11 >/dev/null; ping -c 2 -i 0.3 10.99.0.12 >/dev/null", check=False)

    simple = [
        ("xentop-batch", "xentop -b -i 2 -d 1 -f -n -x -v"),
        ("xl-list", "xl list"),
        ("xl-list-l.json", "xl list -l"),
        ("xl-info", "xl info"),
        ("xl-vcpu-list", "xl vcpu-list"),
    ]
    for name, cmd in simple:
        if want(name):
            rc, out = run(lab, cmd)
            if rc != 0:
                raise SystemExit(f"{cmd} failed ({rc}): {out}")
            write(f"xenlab-{name}.txt", [f"# source: {src}, with: {cmd}"], out)

    if want("xl-sched-credit"):
        sched = lab.ssh("xl info | grep xen_scheduler").stdout.strip()
        rc2, out2 = run(lab, "xl sched-credit2")
        rc1, out1 = run(lab, "xl sched-credit")
        write("xenlab-xl-sched-credit.txt", [
            f"# source: {src}, with: xl sched-credit2 (exit {rc2}); the host runs `{sched}`.",
            f"# `xl sched-credit` on this credit2 host printed {len(out1.splitlines())} lines and exited {rc1}"
            + (f": {out1.strip()!r}" if out1.strip() else " (nothing: no credit pool)."),
        ], out2)

    if want("dom0-notes"):
        caps = lab.ssh(["cat", "/proc/xen/capabilities"]).stdout
        _, bridge = run(lab, "ls -l /sys/class/net/vif*/brport/bridge")
        _, links = run(lab, "ip -o link show master xenbr0")
        write("xenlab-dom0-notes.txt", [f"# source: {src}"],
              "## cat /proc/xen/capabilities\n" + caps
              + "\n## ls -l /sys/class/net/vif*/brport/bridge   (bridge membership from sysfs)\n" + bridge
              + "\n## ip -o link show master xenbr0\n" + links)

    if want("xl-migrate-localhost"):
        rc, out = run(lab, "xl migrate guest2 localhost")
        _, after = run(lab, "xl list")
        verdict = "succeeded" if rc == 0 else "FAILED"
        write("xenlab-xl-migrate-localhost.txt", [
            f"# source: {src}, with: xl migrate guest2 localhost (stdout+stderr; dom0 can `ssh localhost` as root "
            "without a prompt)",
            f"# exit status {rc}: the migration {verdict}."
            + (" Cause: Debian's Xen 4.17 hypervisor is built without CONFIG_SHADOW_PAGING, and live migration of "
               "a PV guest needs log-dirty mode, which for PV guests is done with shadow paging (EOPNOTSUPP = 95). "
               "guest2 keeps running on the source." if "enable logdirty" in out else ""),
        ], out + "\n## xl list afterwards\n" + after)

    if want("xl-migrate-localhost-pvh"):
        t0 = time.monotonic()
        lab.create_guests(["guest3"])
        booted = time.monotonic() - t0
        rc, out = run(lab, "xl migrate guest3 localhost")
        migrated = time.monotonic() - t0 - booted
        _, after = run(lab, "xl list")
        ping = lab.ssh(["ping", "-c", "1", "-W", "10", "10.99.0.13"], check=False).returncode
        lab.ssh(["xl", "destroy", "guest3"], check=False)
        write("xenlab-xl-migrate-localhost-pvh.txt", [
            f"# source: {src}, with: xl migrate guest3 localhost (stdout+stderr); guest3 is a PVH guest "
            "(tests/xenlab/dom0/guest3.cfg), live-migratable because Xen has HAP (QEMU exposes SVM + NPT)",
            f"# exit status {rc}: the migration {'succeeded' if rc == 0 else 'FAILED'} in {migrated:.0f} s "
            f"(guest3 took {booted:.0f} s to boot); afterwards guest3 "
            f"{'answered' if ping == 0 else 'did NOT answer'} a ping on xenbr0.",
        ], out + "\n## xl list afterwards\n" + after)

    if want("xl-save-restore"):
        rc1, out1 = run(lab, "xl save guest2 /tmp/g2.save")
        rc2, out2 = run(lab, "xl restore /tmp/g2.save")
        _, after = run(lab, "xl list")
        lab.ssh("rm -f /tmp/g2.save", check=False)
        write("xenlab-xl-save-restore.txt", [
            f"# source: {src}, with: xl save guest2 /tmp/g2.save (exit {rc1}), then xl restore /tmp/g2.save "
            f"(exit {rc2}); stdout+stderr of each",
        ], "## xl save guest2 /tmp/g2.save\n" + out1 + "\n## xl restore /tmp/g2.save\n" + out2
           + "\n## xl list afterwards\n" + after)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
