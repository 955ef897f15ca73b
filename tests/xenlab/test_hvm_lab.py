"""An HVM guest on the lab's real Xen: Debian's qemu-system-xen as its device model in dom0 (the lab's CPU has
SVM + NPT), shown by the xl backend as HVM with that device model, its serial console answering through the
backend's console (`xl console -t serial`).

The guest is the lab's kernel and initrd booted as HVM (QEMU loads them: no disk), its console on the emulated
serial port. Under the lab's TCG it is slow: 5 to 10 s to create, 5 minutes to its shell on an otherwise idle
machine (SeaBIOS, then the kernel, every port access through the device model), far longer while the machine's two
CPUs also run the other lab. The console is tried only once the guest's PV drivers are up (a cheap xenstore read):
a console reader every few seconds slows the boot further.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from .dom0_calls import PY, in_dom0, wait_for, xl_list

pytestmark = pytest.mark.xenlab

NAME = "hvm1"
DEVICE_MODEL = "/usr/libexec/xen-qemu-system-i386"  # Debian's qemu-system-xen, where libxl looks for it
CONFIG = f"""
name = "{NAME}"
type = "hvm"
kernel = "/var/lib/xentui-lab/guest/vmlinuz"
ramdisk = "/var/lib/xentui-lab/guest/initrd.gz"
extra = "console=ttyS0 xentui_hostname={NAME}"
memory = 128
vcpus = 1
serial = "pty"
device_model_version = "qemu-xen"
vnc = 0
sdl = 0
on_crash = "preserve"
"""

# The xl backend's view of the HVM guest, from a sample in dom0 (what the details screen shows).
SAMPLE = f"""
import asyncio, json
from xentui.backends.xl import XlBackend

async def main():
    backend = XlBackend()
    try:
        sample = await backend.sample()
    finally:
        await backend.close()
    domain = next(d for d in sample.domains if d.name == {NAME!r})
    model = domain.device_model
    print(json.dumps({{"id": domain.id, "type": str(domain.type), "pv_drivers": domain.pv_drivers,
                      "device_model": None if model is None else {{
                          "pid": model.pid, "program": model.program, "cpu_ns": model.cpu_ns,
                          "rss_kib": model.rss_kib}}}}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def hvm(xenlab) -> Iterator[dict]:
    """hvm1 created from its config (xl create), destroyed at the end. Yields the creation time."""
    if xenlab.ssh(["test", "-x", DEVICE_MODEL], check=False).returncode != 0:
        pytest.skip(f"no device model in dom0 ({DEVICE_MODEL}): rebuild the lab with tests/xenlab/build.sh "
                    "(it installs qemu-system-xen)")
    xenlab.ssh(f"xl destroy {NAME} 2>/dev/null; true", check=False, timeout=120)
    xenlab.ssh(["sh", "-c", 'cat > /tmp/xentui-hvm1.cfg', "sh"], input=CONFIG, timeout=30)
    t0 = time.monotonic()
    xenlab.ssh(["xl", "create", "/tmp/xentui-hvm1.cfg"], timeout=180)
    created = time.monotonic() - t0
    try:
        yield {"created_s": created, "t0": t0}
    finally:
        xenlab.ssh(f"xl destroy {NAME} 2>/dev/null; true", check=False, timeout=120)


def _backend_view(xenlab) -> dict:
    out = xenlab.ssh([PY, "-c", SAMPLE], timeout=180).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_xl_backend_shows_the_hvm_guest_with_its_real_device_model(xenlab, hvm):
    assert NAME in xl_list(xenlab)
    view = _backend_view(xenlab)
    assert view["type"] == "hvm"
    # the truth, from ps in dom0: the process whose command line names this domain
    ps = xenlab.ssh(["ps", "-eo", "pid=,rss=,args="], timeout=60).stdout
    real = [line.split() for line in ps.splitlines() if f"-xen-domid {view['id']} " in line + " "]
    assert len(real) == 1, ps
    pid, rss, program = int(real[0][0]), int(real[0][1]), real[0][2]
    model = view["device_model"]
    assert model is not None, view
    assert model["pid"] == pid and model["program"] == program == DEVICE_MODEL
    assert model["rss_kib"] > 0 and abs(model["rss_kib"] - rss) < 16 * 1024  # ps read it a moment apart
    assert model["cpu_ns"] > 0
    # the pid libxl recorded for the domain's device model
    recorded = xenlab.ssh(["xenstore-read", f"/local/domain/{view['id']}/image/device-model-pid"]).stdout
    assert int(recorded) == pid
    assert view["pv_drivers"] in (True, False)  # known for an HVM guest (False while it boots)


def test_the_serial_console_answers_through_the_backend(xenlab, hvm):
    # First the cheap sign that the kernel is far along (its PV drivers wrote feature-poweroff): a backend in
    # dom0 every few seconds would take the CPU the guest boots on. Then the console, until the shell answers.
    # Its domid is looked up at each try: under emulation the first boot has been seen to triple-fault, and Xen
    # restarts the guest under a new domid (xl's log: "Domain 7 has shut down, reason code 1").
    domids: list[str] = []

    def drivers_up() -> bool:
        domid = xenlab.ssh(["xl", "domid", NAME], check=False).stdout.strip()
        if domid and domid not in domids:
            domids.append(domid)
        return bool(domid) and xenlab.ssh(["xenstore-read", f"/local/domain/{domid}/control/feature-poweroff"],
                                          check=False).stdout.strip() == "1"

    wait_for(f"{NAME}'s PV drivers", drivers_up, timeout=1800, every=5)
    if len(domids) > 1:
        print(f"{NAME} was restarted by Xen while it booted: domids {', '.join(domids)}")

    def answered() -> dict | None:
        result = in_dom0(xenlab, "console", NAME, "echo $((6*7))HVM", "42HVM", timeout=120)
        return result if result["ok"] else None

    result = wait_for(f"{NAME}'s serial console answers", answered, timeout=600, every=5)
    print(f"{NAME}: created in {hvm['created_s']:.1f} s, its serial console answered "
          f"{time.monotonic() - hvm['t0']:.0f} s after xl create")
    assert "42HVM" in result["output"]
    # With its shell up, the guest's PV drivers (Linux's xen-platform-pci) have long been up too
    view = _backend_view(xenlab)
    assert view["pv_drivers"] is True, view
