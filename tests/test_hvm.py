"""HVM guests: the device model found in dom0 (one batched read through the host seam), the PV drivers, the serial
console, the simulated host's HVM guests, and the details screen's lines. Against captures of the Xen lab's HVM
guest (tests/fixtures/xenlab-hvm-*.txt: instance b, Debian's qemu-system-xen as the device model)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from xentui.backends.base import BackendError
from xentui.backends.host import HostAccess, NetCounters
from xentui.backends.sim import SimBackend
from xentui.backends.xl import CONSOLE_WHEN_TTY, XlBackend
from xentui.backends.xl.devicemodel import parse_device_models, read_hvm_facts
from xentui.backends.xl_tool import ToolResult
from xentui.console.channel import ConsoleChannel
from xentui.model import DomainType
from xentui.model.records import DeviceModel

FIXTURES = Path(__file__).parent / "fixtures"
XL, XENTOP = "/nowhere/xl", "/nowhere/xentop"


def capture(name: str) -> str:
    """A capture without its first line (where it came from)."""
    return (FIXTURES / name).read_text().split("\n", 1)[1]


# ---- the parser, on what the script printed in the lab's dom0 ---------------------------------------------------

def test_the_device_model_of_the_lab_hvm_guest_is_found_with_its_cpu_and_memory():
    facts = parse_device_models(capture("xenlab-hvm-devicemodel-script-booting.txt"))
    ps = capture("xenlab-hvm-ps-booting.txt").splitlines()
    pid, rss, time = ps[1].split()[:3]  # ps's line for the device model, a moment before the script
    hours, minutes, seconds = (int(part) for part in time.split(":"))
    assert set(facts.device_models) == {1}  # grep and the script itself matched too, and are left out
    model = facts.device_models[1]
    assert model.pid == int(pid) and model.program == "/usr/libexec/xen-qemu-system-i386"
    assert model.rss_kib == 44124 and abs(model.rss_kib - int(rss)) < 4096  # VmRSS
    assert 0 <= model.cpu_ns / 1e9 - (hours * 3600 + minutes * 60 + seconds) < 5  # utime + stime, as ps's TIME
    assert facts.pv_drivers == {1: False}  # the guest was still booting: feature-poweroff not yet written


def test_once_the_guest_booted_its_pv_drivers_are_up_and_the_same_device_model_ran_on():
    booting = parse_device_models(capture("xenlab-hvm-devicemodel-script-booting.txt"))
    running = parse_device_models(capture("xenlab-hvm-devicemodel-script-running.txt"))
    assert running.pv_drivers == {1: True}  # Linux's xen-platform-pci drivers wrote control/feature-poweroff
    before, after = booting.device_models[1], running.device_models[1]
    assert after.pid == before.pid and after.cpu_ns > before.cpu_ns
    assert "hvm1" in capture("xenlab-hvm-xl-list-running.txt")
    console = capture("xenlab-hvm-serial-console.txt")  # what the backend's serial console read
    assert "Linux hvm1" in console and "DONE2" in console


def test_pv_drivers_up_when_the_guest_wrote_feature_poweroff():
    facts = parse_device_models("\001pvdrivers 3 1\n\001pvdrivers 4 \n\001pvdrivers 5 0\n")
    assert facts.pv_drivers == {3: True, 4: False, 5: False}


def test_odd_output_is_left_out_not_fatal():
    stat = "77 (qemu (xen) dm) S 1 77 77 0 -1 0 0 0 0 0 150 50 0 0 20 0 7 0 9039 1 2 3"
    text = (
        f"\001process 77\n{stat}\nName:\tqemu\nVmRSS:\t  2048 kB\n\001cmdline qemu\0-xen-domid\0009\0\n"
        "\001process 78\n\001cmdline \n"  # gone between the grep and the read
        "\001process 79\n79 (grep) R 1\n\001cmdline grep\0-e\0-xen-domid\0/proc/1/cmdline\0\n"
        "\001cmdline orphan\0-xen-domid\0003\0\n"
    )
    facts = parse_device_models(text)
    assert facts.device_models == {9: DeviceModel(pid=77, program="qemu", cpu_ns=2_000_000_000, rss_kib=2048)}


def test_cpu_percent_between_two_reads():
    before = DeviceModel(10, "qemu", 1_000_000_000, 100)
    after = DeviceModel(10, "qemu", 1_500_000_000, 100)
    assert after.cpu_pct(before, 2.0) == pytest.approx(25.0)
    assert after.cpu_pct(None, 2.0) is None
    assert after.cpu_pct(DeviceModel(11, "qemu", 0, 1), 2.0) is None  # another process (the guest restarted)


class _Failing(HostAccess):
    name = "broken"

    def has(self, program): return True
    async def run(self, argv, **kwargs): raise BackendError("sh: not found")
    async def start(self, argv, **kwargs): raise NotImplementedError
    async def read_head(self, path, size): raise NotImplementedError
    async def read_links(self, paths): return {}
    async def net_counters(self): return {}
    async def open_console(self, argv): raise NotImplementedError


@pytest.mark.asyncio
async def test_no_hvm_domain_no_command_and_a_failing_host_gives_nothing():
    host = _Failing()
    assert (await read_hvm_facts(host, [])).pv_drivers == {}
    facts = await read_hvm_facts(host, [1])
    assert facts.device_models == {} and facts.pv_drivers == {}


# ---- the xl backend: through the host seam, from the captures --------------------------------------------------

class HvmLabHost(HostAccess):
    """dom0 of the lab with the HVM guest, as recorded; every request kept."""

    name = "lab dom0 with an HVM guest (recorded)"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def has(self, program: str) -> bool:
        return program in (XL, XENTOP)

    async def run(self, argv, *, what=None, limit=60.0, check=True, on_timeout=None) -> ToolResult:
        self.calls.append(("run", tuple(argv)))
        answers = {(XL, "info"): "xenlab-xl-info.txt", (XL, "list"): "xenlab-hvm-xl-list-booting.txt",
                   (XL, "list", "-l"): "xenlab-hvm-xl-list-l-booting.json.txt"}
        if argv[:2] == ["sh", "-c"] and "xen-domid" in argv[2]:
            return ToolResult(0, capture("xenlab-hvm-devicemodel-script-booting.txt"), "")
        name = answers.get(tuple(argv))
        if name == "xenlab-xl-info.txt":
            return ToolResult(0, "".join(line for line in (FIXTURES / name).read_text().splitlines(True)
                                         if not line.startswith("#")), "")
        return ToolResult(0, capture(name), "") if name else ToolResult(0, "", "")

    async def start(self, argv, *, merge_stderr=False, hang_up=False) -> asyncio.subprocess.Process:
        self.calls.append(("start", tuple(argv)))
        text = capture("xenlab-hvm-xentop-batch-booting.txt")
        code = f"import sys, time\nsys.stdout.write({text!r}); sys.stdout.flush(); time.sleep(30)"
        return await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)

    async def read_head(self, path: str, size: int) -> bytes:
        return b""

    async def read_links(self, paths) -> dict[str, str | None]:
        return dict.fromkeys(paths)

    async def net_counters(self) -> dict[str, NetCounters]:
        return {}

    async def open_console(self, argv) -> ConsoleChannel:
        self.calls.append(("open_console", tuple(argv)))
        raise NotImplementedError("recorded")


@pytest.mark.asyncio
async def test_xl_shows_the_hvm_guest_with_its_device_model_and_opens_its_serial_console():
    host = HvmLabHost()
    backend = XlBackend(xl=XL, xentop=XENTOP, stats="xentop", delay=0.2, host=host)
    try:
        sample = await backend.sample()
        hvm1 = next(domain for domain in sample.domains if domain.name == "hvm1")
        dom0 = next(domain for domain in sample.domains if domain.id == 0)
        assert hvm1.type is DomainType.HVM
        assert hvm1.device_model is not None and hvm1.device_model.pid == 456
        assert hvm1.device_model.rss_kib == 44124
        assert hvm1.pv_drivers is False
        assert dom0.device_model is None and dom0.pv_drivers is None  # not HVM: not asked about
        scripts = [argv for kind, argv in host.calls
                   if kind == "run" and argv[:2] == ("sh", "-c") and "xen-domid" in argv[2]]
        assert [argv[3:] for argv in scripts] == [("sh", "1")]  # one read, for the one HVM domid
        with pytest.raises(NotImplementedError):
            await backend.open_console("hvm1")
        assert ("open_console", ("sh", "-c", CONSOLE_WHEN_TTY, "sh", "/local/domain/1/serial/0/tty",
                                 XL, "console", "-t", "serial", "1")) in host.calls
    finally:
        await backend.close()


# ---- the simulated host -------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_the_sim_hvm_guests_have_a_device_model_whose_cpu_grows():
    backend = SimBackend()
    first = await backend.sample()
    hvm = [domain for domain in first.domains if domain.type is DomainType.HVM]
    assert hvm, "the demo host has HVM guests"
    assert all(domain.device_model is not None and domain.pv_drivers is not None for domain in hvm)
    assert any(domain.pv_drivers is False for domain in hvm)  # the legacy Windows guest
    others = [domain for domain in first.domains if domain.type is not DomainType.HVM]
    assert all(domain.device_model is None and domain.pv_drivers is None for domain in others)
    await asyncio.sleep(0.05)
    second = await backend.sample()
    for domain in hvm:
        again = second.domain(domain.key)
        assert again is not None and again.device_model is not None and domain.device_model is not None
        assert again.device_model.pid == domain.device_model.pid
        assert again.device_model.cpu_ns >= domain.device_model.cpu_ns


# ---- the details screen -------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_details_show_the_device_model_and_its_cpu_after_two_samples():
    from rich.console import Console
    from textual.widgets import Static

    from tests.ui.helpers import make_app, poll, settle
    from xentui.ui.screens import DetailsScreen
    from xentui.ui.table import DomainTable

    def shown(screen) -> str:
        console = Console(width=200, record=True)
        console.print(screen.query_one("#config", Static).content)
        return console.export_text()

    app, clock = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app, clock)
        hvm = next(d for d in app.sample.domains if d.type is DomainType.HVM)
        pv = next(d for d in app.sample.domains if d.type is DomainType.PV and d.id != 0)
        app.query_one(DomainTable).select(hvm.key)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        text = shown(screen)
        assert f"xen-qemu-system-i386 pid {hvm.device_model.pid}, CPU - %" in text  # one sample: no rate yet
        assert "PV drivers" in text
        await poll(pilot, app, clock)
        text = shown(screen)
        line = next(line for line in text.splitlines() if line.startswith("device model"))
        assert "CPU - %" not in line and " %, RSS " in line, line
        await pilot.press("escape")
        app.query_one(DomainTable).select(pv.key)
        await pilot.press("enter")
        text = shown(app.screen)
        assert "device model" not in text and "PV drivers" not in text  # a PV guest has neither line
