"""The xl backend reaches its machine only through its `HostAccess`: commands, long-running tools, files, links,
counters and consoles. The host here answers from the Xen lab's captures; `xl` and `xentop` are paths that do not
exist on this machine, so anything that went around the seam would fail."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xentui.backends.base import BackendError
from xentui.backends.host import HostAccess, NetCounters
from xentui.backends.xl import CONSOLE_WHEN_TTY, XlBackend
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
        assert host.calls[-1] == ("open_console", ("sh", "-c", CONSOLE_WHEN_TTY, "sh", "/local/domain/2/console/tty",
                                                   XL, "console", "-t", "pv", "2"))
    finally:
        await backend.close()



def when_tty(tmp_path: Path, appears_after: int | None) -> tuple[str, list[str]]:
    """The console command's wrapper run here: a fake ``xenstore-read`` that answers empty ``appears_after`` times
    then a tty (None: no xenstore-read at all), and ``echo`` for xl console. Its output and the reads made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sleep", "echo", "wc"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    reads = tmp_path / "reads"
    if appears_after is not None:
        script = bin_dir / "xenstore-read"
        script.write_text(f"""#!/bin/sh
echo "$1" >> {reads}
[ "$(wc -l < {reads})" -gt {appears_after} ] && echo /dev/pts/7
exit 0
""")
        script.chmod(0o755)
    done = subprocess.run(["/bin/sh", "-c", CONSOLE_WHEN_TTY, "sh", "/local/domain/9/console/tty", "echo", "xl",
                           "console", "-t", "pv", "9"], env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                          timeout=30, check=True)
    return done.stdout, reads.read_text().splitlines() if reads.exists() else []


@pytest.mark.parametrize(("appears_after", "reads"), [(0, 1), (3, 4), (None, 0)])
def test_the_console_waits_for_its_tty_in_xenstore_then_runs_xl_console(tmp_path, appears_after, reads):
    """A guest that has just arrived has no tty in xenstore until xenconsoled has seen it, and xenconsole gives up
    after a few seconds: the console's command waits for it (every 0.5 s) then becomes ``xl console``; a dom0
    without xenstore-read runs xl console at once."""
    output, made = when_tty(tmp_path, appears_after)
    assert output == "xl console -t pv 9\n"
    assert made == ["/local/domain/9/console/tty"] * reads


@pytest.mark.asyncio
async def test_dom0s_console_is_xl_console_alone_with_no_tty_to_wait_for():
    host = LabHost()
    backend = XlBackend(xl=XL, xentop=XENTOP, stats="xentop", delay=0.2, host=host)
    try:
        await backend.sample()
        with pytest.raises(NotImplementedError):
            await backend.open_console("Domain-0")
        assert host.calls[-1] == ("open_console", (XL, "console", "-t", "pv", "0"))
    finally:
        await backend.close()


class RebootingHost(LabHost):
    """The recorded dom0, whose `xl list` gives guest1 the domid the test says (a reboot makes a new domain)."""

    def __init__(self) -> None:
        super().__init__()
        self.guest1_domid = 1

    async def run(self, argv, *, what=None, limit=60.0, check=True, on_timeout=None) -> ToolResult:
        if tuple(argv[:2]) == (XL, "pause"):
            raise BackendError(f"xl pause {argv[2]}: unable to find domain info for domain {argv[2]}")
        result = await super().run(argv, what=what, limit=limit, check=check, on_timeout=on_timeout)
        if tuple(argv) == (XL, "list"):
            return ToolResult(0, result.stdout.replace(
                "guest1                                       1 ",
                f"guest1                                      {self.guest1_domid:>2} "), "")
        return result


def _recorded_rows():
    from xentui.backends.xentop_parser import parse_xentop_log

    return parse_xentop_log(capture("xenlab-xentop-batch.txt")).iterations[0]


@pytest.mark.asyncio
async def test_xentops_names_are_listed_again_when_a_guest_may_have_come_back_as_another_domain(monkeypatch):
    """xentop prints names, not domids: a guest that rebooted (xl makes a new domain under the same name) must not
    keep its old domid, or every action on it would go to a domain that no longer exists."""
    import dataclasses

    import xentui.backends.xl as xl_module

    host = RebootingHost()
    backend = XlBackend(xl=XL, xentop=XENTOP, stats="xentop", delay=0.2, host=host)
    rows = _recorded_rows()
    guest1 = next(row for row in rows if row.name == "guest1")

    def listings() -> int:
        return sum(call == ("run", (XL, "list")) for call in host.calls)

    def guest1_id(node) -> int:
        return next(domain.id for domain in node.domains if domain.name == "guest1")

    async def node(rows):
        return await backend._node_from_xentop(rows, {})

    try:
        assert guest1_id(await node(rows)) == 1
        for _ in range(5):
            await node(rows)
        assert listings() == 1, "the same names, times going on: no need to list again"

        # CPU time that went back: a new domain under the old name (xentop saw no gap)
        host.guest1_domid = 7
        later = [dataclasses.replace(row, cpu_s=0) if row is guest1 else row for row in rows]
        assert guest1_id(await node(later)) == 7 and listings() == 2

        # gone for one iteration, then back: listed at both
        host.guest1_domid = 8
        await node([row for row in later if row.name != "guest1"])
        assert guest1_id(await node(later)) == 8 and listings() == 4

        # shut down (xl reboot's old domain), then running again with more time than the old one had
        host.guest1_domid = 9
        shut = [dataclasses.replace(row, state="---s--") if row.name == "guest1" else row for row in later]
        await node(shut)
        assert listings() == 4, "a shut-down flag alone is no new domain"
        assert guest1_id(await node(later)) == 9 and listings() == 5

        # nothing says so, but time has passed: listed again all the same
        host.guest1_domid = 10
        monkeypatch.setattr(xl_module, "_RELIST_EVERY", 0.0)
        assert guest1_id(await node(later)) == 10 and listings() == 6
        monkeypatch.setattr(xl_module, "_RELIST_EVERY", 3600.0)

        # an action xl refused (e.g. "unable to find domain info" for an old domid): listed again at the next sample
        backend._last = {}
        await backend._node_from_xentop(later, {})
        count = listings()
        with pytest.raises(BackendError, match="unable to find domain info"):
            await backend._act("pause", "99", what="pause guest1")
        await node(later)
        assert listings() == count + 1
    finally:
        await backend.close()
