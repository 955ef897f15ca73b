"""pytest plumbing for the Xen lab (tests/xenlab/lab.py): the ``xenlab`` marker and the ``xenlab`` fixture.

Tests marked ``xenlab`` take the session fixture ``xenlab``; it skips them (with the command that fixes it) when
QEMU is missing or the lab is not built, otherwise boots the lab (or reuses a running one), syncs this checkout
into dom0 and waits until guest1 and guest2 run. It stops the lab at the end only if it booted it and no other
pytest session is using it (each session records its pid in CACHE/xen/users/).
Set XENTUI_LAB_KEEP=1 to leave a lab it booted running (for the next session to reuse).
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
