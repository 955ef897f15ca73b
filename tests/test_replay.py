"""Recorded `xentop -b` logs: parsed back, and replayed so exactly that xentui prints the recording again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentui.backends.base import Action, Unsupported
from xentui.backends.replay import REASON, ReplayBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.backends.xentop_parser import parse_xentop_log
from xentui.batch import BatchOptions, XentopFormatter
from xentui.clock import ManualClock
from xentui.model import compute_rates

FIXTURES = Path(__file__).parent / "fixtures"


def recording(name: str) -> str:
    """A fixture without its source comment lines (and the reference's elision note)."""
    lines = (FIXTURES / name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("#") and "elided" not in line) + "\n"


def test_parses_both_real_iterations_with_names_that_hold_spaces():
    log = parse_xentop_log(recording("xentop-b-i2-d1.txt"))
    assert [len(rows) for rows in log.iterations] == [9, 9] and log.columns == 19 and not log.skipped
    names = [row.name for row in log.iterations[1]]
    assert "r-vm-06 pr" in names and "s-vm 007" in names and "Domain-0" in names
    dom0 = next(row for row in log.iterations[1] if row.name == "Domain-0")
    assert (dom0.cpu_s, dom0.cpu_pct, dom0.mem_kib, dom0.vcpus, dom0.state) == (330256, 10.6, 6078464, 12, "-----r")


def test_parses_vcpu_and_vbd_subrows():
    log = parse_xentop_log(recording("xentop-b-nxv.txt"))
    assert log.vcpus and log.vbds and not log.networks
    dom0 = next(row for row in log.iterations[0] if row.name == "Domain-0")
    assert dom0.vcpu_s[0] == 35561 and dom0.vcpu_s[11] == 26306 and len(dom0.vcpu_s) == 12
    first = log.iterations[0][0]
    assert [(v.kind, v.devid, v.rd) for v in first.vbd_rows] == [("Tapdisk3", 768, 1005218), ("Tapdisk3", 832, 328539)]


def test_old_17_column_layout_no_limit_and_unreadable_vbds():
    text = (
        "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k)"
        " VBDS   VBD_OO   VBD_RD   VBD_WR SSID\n"
        "  Domain-0 -----r       1234    3.2    4194304    6.2   no limit       n/a     4    0        0        0"
        "    0        0        0        0    0\n"
        "  broken-1 --b---         12    0.1    1048576    1.6    2097152       3.1     1    1        5        7"
        "    2        -        -        -    0\n"
    )
    log = parse_xentop_log(text)
    assert log.columns == 17
    dom0, broken = log.iterations[0]
    assert dom0.maxmem_kib is None and dom0.maxmem_pct is None and dom0.vbd_rsect is None
    assert broken.vbd_oo is None and broken.vbds == 2


def test_a_truncated_line_is_skipped_and_counted():
    text = recording("xentop-b-i2-d1.txt")
    cut = text[: text.index("f-vm-02") + 40]  # the log ends in the middle of a row
    log = parse_xentop_log(cut)
    assert len(log.iterations) == 1 and len(log.skipped) == 1
    assert [row.name for row in log.iterations[0]] == ["b-vm-01", "Domain-0"]


@pytest.mark.asyncio
async def test_repeated_headers_do_not_split_iterations():
    clock = ManualClock()
    sim = SimBackend(SimCluster(seed=2, clock=clock))
    formatter = XentopFormatter(BatchOptions(repeat_header=True))
    text = formatter.format(await sim.sample(), {})
    clock.advance(1)
    text += formatter.format(await sim.sample(), {})
    log = parse_xentop_log(text)
    assert log.repeat_header and [len(rows) for rows in log.iterations] == [13, 13]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_without_an_exception(text):
    log = parse_xentop_log(text)
    assert isinstance(log.iterations, list)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_mangled_real_log_never_raises(data):
    lines = recording("xentop-b-nxv.txt").splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[index])))
    lines[index] = lines[index][:cut] + data.draw(st.text(max_size=5))
    parse_xentop_log("\n".join(lines))


@pytest.mark.parametrize(("fixture", "flags"), [
    ("xentop-b-i2-d1.txt", []),
    ("xentop-b-nxv.txt", ["-n", "-x", "-v"]),
    ("xenlab-xentop-batch.txt", ["-f", "-n", "-x", "-v"]),  # Xen 4.17.7, captured in our own lab
])
def test_round_trip_prints_the_recording_again(tmp_path, fixture, flags):
    log_file = tmp_path / "incident.log"
    log_file.write_text(recording(fixture))
    result = subprocess.run(
        [sys.executable, "-m", "xentui", "--replay", str(log_file), "--replay-interval", "1", "--replay-speed", "100",
         "-b", *flags], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == recording(fixture)


@pytest.mark.asyncio
async def test_replay_gives_back_the_recorded_cpu_percentages(tmp_path):
    log_file = tmp_path / "x.log"
    log_file.write_text(recording("xentop-b-i2-d1.txt"))
    replay = ReplayBackend(log_file, interval=1.0)
    first, second = await replay.sample(), await replay.sample()
    rates = compute_rates(first, second)
    by_name = {d.name: round(rates[d.key].cpu_pct, 1) for d in second.domains}
    assert by_name["Domain-0"] == 10.6 and by_name["b-vm-01"] == 1.6 and by_name["xvm"] == 2.2
    assert (await replay.sample()) is second  # the end of the log: the last iteration stays
    with pytest.raises(Unsupported, match="replay"):
        await replay.pause("xvm")
    assert replay.capabilities.why_not(Action.MEM_SET) == REASON


def test_replay_refuses_a_file_without_xentop_lines(tmp_path):
    empty = tmp_path / "notes.txt"
    empty.write_text("nothing here\n")
    result = subprocess.run([sys.executable, "-m", "xentui", "--replay", str(empty), "-b"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "no `xentop -b` domain lines" in result.stderr
    missing = subprocess.run([sys.executable, "-m", "xentui", "--replay", str(tmp_path / "nope"), "-b"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@pytest.mark.asyncio
async def test_the_screen_plays_a_recording_and_refuses_actions_with_the_reason(tmp_path):
    from xentui.audit import AuditLog
    from xentui.ui.app import StartOptions, XentuiApp
    from xentui.ui.table import DomainTable

    log_file = tmp_path / "x.log"
    log_file.write_text(recording("xentop-b-i2-d1.txt"))
    audit = AuditLog(tmp_path / "audit.log")
    app = XentuiApp(ReplayBackend(log_file, interval=1.0), StartOptions(delay=3600, save_dir=tmp_path, audit=audit))
    async with app.run_test(size=(160, 40)) as pilot:
        while app.polls_done < 1:
            await pilot.pause(0.01)
        app.action_refresh_now()
        while app.polls_done < 2:
            await pilot.pause(0.01)
        await pilot.pause()
        table = app.query_one(DomainTable)
        top = next(d for d in app.sample.domains if d.key == table.shown_keys[0])
        assert top.name == "Domain-0"  # 10.6 %, the busiest in the recording's second iteration
        assert "replay of x.log" in str(app.query_one("#host").render())
        await pilot.press("p", "m", "t")
        await pilot.pause()
        assert app.screen is app.screen_stack[0]
        assert [e["message"] for e in audit.read()] == [REASON] * 3
