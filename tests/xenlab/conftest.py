"""pytest plumbing for the Xen lab (tests/xenlab/lab.py): the ``xenlab`` marker and the ``xenlab`` fixture.

Tests marked ``xenlab`` take the session fixture ``xenlab``; it skips them (with the command that fixes it) when
QEMU is missing or the lab is not built, otherwise boots the lab (or reuses a running one), syncs this checkout
into dom0 and waits until guest1 and guest2 run. It stops the lab at the end only if it booted it and no other
pytest session is using it (each session records its pid in CACHE/xen/users/).
Set XENTUI_LAB_KEEP=1 to leave a lab it booted running (for the next session to reuse).

The session fixture ``xenlab_pair`` adds a second lab, instance ``b`` (same build, its own QEMU, port and files in
CACHE/xen/instances/b/, no guests at boot), joined to the first (instance ``a``, the ``xenlab`` fixture's) by their
private link: dom0 a is 10.98.0.1 and dom0 b 10.98.0.2 there, and root in each reaches the other with ssh. It
boots b (or reuses a running one), waits until each dom0 reaches the other over the link, and stops b at the end
on the same terms as the ``xenlab`` fixture.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import lab as labmod


@dataclass
class XenLab:
    """What a test gets: ssh into dom0 and where things are."""

    lab: labmod.Lab

    @property
    def port(self) -> int:
        return self.lab.port

    @property
    def key_path(self) -> Path:
        return self.lab.key_path

    @property
    def serial_log(self) -> Path:
        return self.lab.serial_log

    def ssh(self, args: Sequence[str] | str, timeout: float | None = 120, check: bool = True,
            input: str | bytes | None = None, text: bool = True) -> subprocess.CompletedProcess:
        """Run ARGS in dom0 as root (a list: exactly those words; a str: a shell command line)."""
        return self.lab.ssh(args, timeout=timeout, check=check, input=input, text=text)

    def ssh_command(self, args: Sequence[str] | str = (), tty: bool = False) -> list[str]:
        """The ssh command line itself, e.g. to drive `xl console` through a pty."""
        return self.lab.ssh_command(args, tty=tty)


def _report(msg: str) -> None:
    # visible with -s; also kept in the captured setup output of the first test
    print(f"[xenlab] {msg}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def xenlab() -> Iterator[XenLab]:
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("Xen lab: qemu-system-x86_64 is missing; build the lab with tests/xenlab/build.sh "
                    "(it installs qemu-system-x86)")
    lab = labmod.Lab()
    if not lab.built():
        pytest.skip(f"Xen lab not built (missing in {lab.dir}: {', '.join(lab.missing())}); "
                    "build it with: tests/xenlab/build.sh")
    t0 = time.monotonic()
    booted = lab.boot()
    booted_pid = lab.pid
    lab.add_user()
    t1 = time.monotonic()
    try:
        lab.sync()
        t2 = time.monotonic()
        lab.wait_guests()
        t3 = time.monotonic()
        _report(f"{'booted' if booted else 'reused'} lab: boot/attach {t1 - t0:.1f} s, sync {t2 - t1:.1f} s, "
                f"guests {t3 - t2:.1f} s (ssh port {lab.port})")
        yield XenLab(lab)
    finally:
        lab.remove_user()
        others = lab.other_users()
        if not booted or os.environ.get("XENTUI_LAB_KEEP"):
            pass
        elif others:
            _report(f"leaving the lab running: other pytest sessions use it (pids {others})")
        else:
            lab.stop(only_pid=booted_pid)


@dataclass
class XenLabPair:
    """Two labs joined by their private link: ``a`` (the xenlab fixture's) and ``b``."""

    a: XenLab
    b: XenLab
    booted_b: int | None = None  # the pid of b's QEMU when this session booted it

    def stop_b(self) -> None:
        """Power b off (a host that dies), if no other pytest session uses it; pytest.skip otherwise."""
        lab = self.b.lab
        if others := lab.other_users():
            pytest.skip(f"lab b is in use by other pytest sessions (pids {others}): not stopping it")
        lab.stop()

    def boot_b_again(self, port: int) -> float:
        """Boot b again with the ssh port it had (what a client of the old one connects to); the seconds it
        took to answer ssh. From then on this session owns it (it stops it at the end)."""
        t0 = time.monotonic()
        lab = self.b.lab
        if lab.boot(port=port):
            self.booted_b = lab.pid
        lab.add_user()
        return time.monotonic() - t0


@pytest.fixture(scope="session")
def xenlab_pair(xenlab: XenLab) -> Iterator[XenLabPair]:
    a = xenlab.lab
    if not a.has_link():
        pytest.skip(f"Xen lab pair: the running lab a (qemu pid {a.pid}) was booted without the private link "
                    f"and the shared storage (by an older lab.py); stop it (`{a.command('stop')}`) and run again")
    b = labmod.Lab(instance="b")
    t0 = time.monotonic()
    pair = XenLabPair(xenlab, XenLab(b))
    if b.boot():
        pair.booted_b = b.pid
    b.add_user()
    t1 = time.monotonic()
    try:
        peer_of_a = a.wait_link()
        peer_of_b = b.wait_link()
        _report(f"{'booted' if pair.booted_b else 'reused'} lab b: boot/attach {t1 - t0:.1f} s, link "
                f"{time.monotonic() - t1:.1f} s (ssh port {b.port}); a reaches {peer_of_a}, b reaches {peer_of_b}")
        yield pair
    finally:
        b.remove_user()
        others = b.other_users()
        if pair.booted_b is None or os.environ.get("XENTUI_LAB_KEEP"):
            pass
        elif others:
            _report(f"leaving lab b running: other pytest sessions use it (pids {others})")
        else:
            b.stop(only_pid=pair.booted_b)
