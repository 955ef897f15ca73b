"""The xl backend reaches its machine only through its `HostAccess`: commands, long-running tools, files, links,
counters and consoles. The host here answers from the Xen lab's captures; `xl` and `xentop` are paths that do not
exist on this machine, so anything that went around the seam would fail."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from xentui.backends.host import HostAccess, NetCounters
from xentui.backends.xl import XlBackend
from xentui.backends.xl_tool import ToolResult
from xentui.console.channel import ConsoleChannel

FIXTURES = Path(__file__).parent / "fixtures"
XL, XENTOP = "/nowhere/xl", "/nowhere/xentop"


def capture(name: str) -> str:
    return "".join(line for line in (FIXTURES / name).read_text().splitlines(keepends=True)
                   if not line.startswith("#"))


class LabHost(HostAccess):
    """A dom0 as the lab recorded it, every request kept."""

    name = "lab dom0 (recorded)"

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def has(self, program: str) -> bool:
        return program in (XL, XENTOP)

    async def run(self, argv, *, what=None, limit=60.0, check=True, on_timeout=None) -> ToolResult:
        self.calls.append(("run", tuple(argv)))
        answers = {(XL, "info"): "xenlab-xl-info.txt", (XL, "list"): "xenlab-xl-list.txt",
                   (XL, "list", "-l"): "xenlab-xl-list-l.json.txt", (XL, "sched-credit2"): "xenlab-xl-sched-credit.txt"}
        name = answers.get(tuple(argv))
        return ToolResult(0, capture(name), "") if name else ToolResult(0, "", "")

    async def start(self, argv, *, merge_stderr=False, hang_up=False) -> asyncio.subprocess.Process:
        self.calls.append(("start", tuple(argv)))
        assert argv[0] == XENTOP
        text = capture("xenlab-xentop-batch.txt")
        code = f"import sys, time\nsys.stdout.write({text!r}); sys.stdout.flush(); time.sleep(30)"
        return await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)

    async def read_head(self, path: str, size: int) -> bytes:
        self.calls.append(("read_head", path))
        return b"Xen saved domain, xl format\n"[:size]

    async def read_links(self, paths) -> dict[str, str | None]:
        paths = list(paths)
        self.calls.append(("read_links", tuple(paths)))
        return {path: "../../devices/virtual/net/xenbr0" if "vif1.0" in path else None for path in paths}

    async def net_counters(self) -> dict[str, NetCounters]:
        self.calls.append(("net_counters", None))
        return {"vif1.0": NetCounters(1910, 824, 23, 12, 0, 0, 0, 0)}

    async def open_console(self, argv) -> ConsoleChannel:
        self.calls.append(("open_console", tuple(argv)))
        raise NotImplementedError("recorded")


@pytest.mark.asyncio
async def test_a_sample_and_a_console_go_through_the_host_only():
    host = LabHost()
    backend = XlBackend(xl=XL, xentop=XENTOP, stats="xentop", delay=0.2, host=host)
    try:
        sample = await backend.sample()
        names = {domain.name for domain in sample.domains}
        assert names == {"Domain-0", "guest1", "guest2"} and sample.host.hostname == "xenlab-dom0"
        guest1 = next(domain for domain in sample.domains if domain.name == "guest1")
        assert guest1.vifs[0].bridge == "xenbr0"  # from the host's link, not this machine's sysfs
        assert guest1.net_tx_bytes == 824 and guest1.net_rx_bytes == 1910  # dom0 sent = the guest received
        links = [paths for kind, paths in host.calls if kind == "read_links"]
        assert len(links) == 1 and len(links[0]) == 2  # both vifs' bridges in one request
        assert [argv for kind, argv in host.calls if kind == "start"] == [(XENTOP, "-b", "-d", "0.2", "-x", "-v",
                                                                           "-f")]
        with pytest.raises(NotImplementedError):
            await backend.open_console("guest2")
        assert host.calls[-1] == ("open_console", (XL, "console", "-t", "pv", "2"))
    finally:
        await backend.close()


class ArrivingConsoleHost(LabHost):
    """xenconsole finds no tty in xenstore for the first ``missing`` tries (a guest that has just arrived, before
    xenconsoled has seen it), then the console opens; or another client holds it (busy)."""

    def __init__(self, missing: int, busy: bool = False) -> None:
        super().__init__()
        self.missing, self.busy = missing, busy

    async def open_console(self, argv) -> ConsoleChannel:
        from xentui.errors import BackendError, ConsoleBusy

        self.calls.append(("open_console", tuple(argv)))
        if self.busy:
            raise ConsoleBusy("xl console: xenconsole: Could not read tty from store: Device or resource busy, "
                              "already in use")
        if self.missing:
            self.missing -= 1
            raise BackendError("xl console exited at once (exit status 1): xenconsole: Could not read tty from "
                               "store: No such file or directory")
        return "a console"  # type: ignore[return-value]


@pytest.mark.asyncio
@pytest.mark.parametrize(("missing", "busy", "tries", "opens"), [
    (0, False, 1, True), (2, False, 3, True), (3, False, 3, False), (0, True, 1, False),
])
async def test_a_console_with_no_tty_in_xenstore_yet_is_tried_again_and_a_busy_one_is_not(missing, busy, tries, opens):
    from xentui.errors import BackendError, ConsoleBusy

    host = ArrivingConsoleHost(missing, busy)
    backend = XlBackend(xl=XL, xentop=XENTOP, stats="xentop", delay=0.2, host=host)
    backend.console_tty_tries, backend.console_tty_wait = 3, 0.01
    try:
        await backend.sample()
        if opens:
            assert await backend.open_console("guest2") == "a console"
        else:
            with pytest.raises(ConsoleBusy if busy else BackendError, match="Could not read tty from store"):
                await backend.open_console("guest2")
        assert [call for call in host.calls if call[0] == "open_console"] == [
            ("open_console", (XL, "console", "-t", "pv", "2"))] * tries
    finally:
        await backend.close()
