"""A real libvirtd and real QEMU guests (TCG) for the libvirt backend's tests.

``tests/libvirtlab/setup.sh`` (root) installs and starts libvirtd; ``tests/guestimage/build.sh`` builds the
guest (a Debian cloud kernel and a busybox initramfs). Without either, every test here is skipped, saying
which script to run. Guests are transient, named uniquely, and destroyed at the end; their serial output
is also written to a log file (virtlogd), which the tests read to know the guest booted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

LAB_URI = os.environ.get("XENTUI_LIBVIRT_URI", "qemu:///system")
GUEST_DIR = Path(os.environ.get("XENTUI_LAB_CACHE", Path.home() / ".cache" / "xentui-lab")) / "guest"
IMAGES = Path("/var/lib/libvirt/images/xentui-lab")  # readable by the libvirt-qemu user, unlike /root
SERIAL_LOGS = Path("/var/log/libvirt/qemu")
BOOT_TIMEOUT_S = 120.0
READY = "XENTUI-GUEST-READY"
SETUP = "tests/libvirtlab/setup.sh"



def _unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    try:
        import libvirt
    except ImportError:
        return f"libvirt-python is not installed: run {SETUP} (as root)"
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        conn = libvirt.open(LAB_URI)
    except libvirt.libvirtError as error:
        return f"no libvirtd answers at {LAB_URI} ({error.get_error_message()}): run {SETUP} (as root)"
    try:
        if conn.getType() != "QEMU":
            return f"{LAB_URI} is a {conn.getType()} driver, not QEMU"
    finally:
        conn.close()
    for name in ("vmlinuz", "initrd.gz"):
        if not (GUEST_DIR / name).is_file():
            return f"no lab guest image at {GUEST_DIR / name}: run tests/guestimage/build.sh"
    return None


@dataclass
class LabGuest:
    """A running transient guest: its name, UUID and serial log."""

    name: str
    uuid: str
    log: Path
    uri: str = LAB_URI

    def log_text(self) -> str:
        try:
            return self.log.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str, *, after: int = 0, timeout: float = 60.0) -> str:
        """Block until ``needle`` is in the serial log past offset ``after``; the log's text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if needle in text[after:]:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in {self.name}'s serial log after {timeout:.0f}s:\n"
                                     f"{text[-2000:]}")
            time.sleep(0.2)


def guest_xml(name: str, session: Path, *, memory_mib: int = 256, vcpus: tuple[int, int] = (1, 2),
              disk: bool = True) -> str:
    """A TCG guest: direct kernel boot, ACPI (for shutdown), a balloon with stats, a disk, two NICs
    (user-mode: libvirt has no counters for it; ethernet: a tap with counters), console on a pty + log."""
    current, maximum = vcpus
    disk_xml = f"""<disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{session}/{escape(name)}.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>""" if disk else ""
    return f"""<domain type='qemu'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <currentMemory unit='MiB'>{memory_mib}</currentMemory>
  <vcpu current='{current}'>{maximum}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{session}/{escape(name)}-vmlinuz</kernel>
    <initrd>{session}/{escape(name)}-initrd.gz</initrd>
    <cmdline>console=ttyS0 xentui_hostname=labguest</cmdline>
  </os>
  <features><acpi/><apic/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    {disk_xml}
    <interface type='user'><model type='virtio'/></interface>
    <interface type='ethernet'><model type='virtio'/></interface>
    <serial type='pty'>
      <log file='{SERIAL_LOGS}/{escape(name)}-serial.log' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='virtio'><stats period='1'/></memballoon>
  </devices>
</domain>
"""


class Lab:
    """Starts guests on the lab's libvirtd and removes them and their files at the end."""

    def __init__(self) -> None:
        import libvirt

        self.libvirt = libvirt
        self.session = IMAGES / f"session-{os.getpid()}-{secrets.token_hex(3)}"
        self.session.mkdir(parents=True, exist_ok=True)
        self.guests: list[LabGuest] = []
        self.boot_seconds: list[float] = []

    def start(self, *, memory_mib: int = 256, vcpus: tuple[int, int] = (1, 2), disk: bool = True) -> LabGuest:
        """A new guest, booted to its shell prompt. ``disk=False`` for a migration: libvirt calls a disk
        on local (not shared) storage unsafe to migrate."""
        name = f"xentui-lab-{secrets.token_hex(4)}"
        # Each guest its own kernel and initrd: libvirt's DAC driver relabels them for the guest that uses them,
        # and refuses a file another guest (or, after a migration, another libvirtd) holds with another label.
        for image_name in ("vmlinuz", "initrd.gz"):
            shutil.copy(GUEST_DIR / image_name, self.session / f"{name}-{image_name}")
        if disk:
            with (self.session / f"{name}.img").open("wb") as image:
                image.truncate(8 * 1024 * 1024)
        log = SERIAL_LOGS / f"{name}-serial.log"
        log.unlink(missing_ok=True)
        started = time.monotonic()
        conn = self.libvirt.open(LAB_URI)
        try:
            dom = conn.createXML(guest_xml(name, self.session, memory_mib=memory_mib, vcpus=vcpus, disk=disk), 0)
            guest = LabGuest(name, dom.UUIDString(), log)
        finally:
            conn.close()
        self.guests.append(guest)
        guest.wait_log(READY, timeout=BOOT_TIMEOUT_S)
        guest.wait_log("# ", after=guest.log_text().index(READY), timeout=30)  # the shell's prompt
        self.boot_seconds.append(time.monotonic() - started)
        return guest

    def close(self) -> None:
        try:
            conn = self.libvirt.open(LAB_URI)
        except self.libvirt.libvirtError:
            conn = None
        for guest in self.guests:
            if conn is not None:
                with contextlib.suppress(self.libvirt.libvirtError):
                    conn.lookupByUUIDString(guest.uuid).destroy()
            guest.log.unlink(missing_ok=True)
        if conn is not None:
            conn.close()
        shutil.rmtree(self.session, ignore_errors=True)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    lab = Lab()
    try:
        yield lab
    finally:
        if lab.boot_seconds:
            print(f"\nlibvirtlab: {len(lab.boot_seconds)} guest(s) booted to a prompt in "
                  f"{', '.join(f'{s:.1f}s' for s in lab.boot_seconds)}")
        lab.close()


@pytest.fixture(scope="session")
def lab_guest(lab: Lab) -> LabGuest:
    """One guest shared by the tests that leave it running."""
    return lab.start()


@pytest.fixture
def fresh_guest(lab: Lab) -> Callable[..., LabGuest]:
    """A guest of its own, for the tests that stop it."""
    return lab.start


SECOND = Path(__file__).parent / "second-libvirtd.sh"


@pytest.fixture(scope="session")
def second_libvirtd(lab: Lab) -> Iterator[str]:
    """The URI of a second libvirtd on this machine (its own mount namespace, host UUID and socket)."""
    import subprocess

    done = subprocess.run(["bash", str(SECOND), "start"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"could not start a second libvirtd ({SECOND.name}): {done.stderr.strip()[-500:]}")
    uri = done.stdout.strip().splitlines()[-1]
    try:
        yield uri
    finally:
        subprocess.run(["bash", str(SECOND), "stop"], capture_output=True, check=False)
