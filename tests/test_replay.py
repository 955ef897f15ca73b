"""Recorded `xentop -b` logs: parsed back, and replayed so exactly that xentui prints the recording again."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentui.backends.base import Action, Unsupported
from xentui.backends.replay import REASON, ReplayBackend
from xentui.backends.sim import SimBackend, SimCluster
from xentui.backends.xentop_parser import HEADER_RE, parse_xentop_log
from xentui.batch import CSV_COLUMNS, BatchOptions, XentopFormatter
from xentui.clock import ManualClock
from xentui.model import Domain, DomainFlag, DomainType, Host, Sample, Vcpu, compute_rates

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


# --- the end of a recording -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_screen_says_the_recording_ended_and_stops_polling(tmp_path):
    """Past the last iteration: a banner with the replay's message, no more polls, no history point, no new rate."""
    from textual.widgets import Static

    from xentui.backends.readonly import ReadOnlyBackend
    from xentui.ui.app import StartOptions, XentuiApp

    log_file = tmp_path / "x.log"
    log_file.write_text(recording("xentop-b-i2-d1.txt"))
    replay = ReplayBackend(log_file, interval=1.0)
    asked = 0
    real_sample = replay.sample

    async def counted_sample():
        nonlocal asked
        asked += 1
        return await real_sample()

    replay.sample = counted_sample  # type: ignore[method-assign]
    app = XentuiApp(ReadOnlyBackend(replay), StartOptions(delay=0.05, save_dir=tmp_path))
    async with app.run_test(size=(160, 40)) as pilot:
        while app.polls_done < 2:
            await pilot.pause(0.01)
        await pilot.pause()
        rates, points = app.rates, len(app.history.get(app.sample.domains[0].key).cpu_pct)
        for _ in range(300):  # the timer asks once more, past the end
            if replay.finished is not None:
                break
            await pilot.pause(0.01)
        await pilot.pause(0.3)  # six delays: a timer still running would have asked again
        assert asked == 3 and app.poll_count == 2
        banner = app.query_one("#banner", Static)
        assert banner.display and replay.finished in str(banner.render())
        assert app.rates is rates and len(app.history.get(app.sample.domains[0].key).cpu_pct) == points
        app.action_refresh_now()  # Ctrl+L: nothing more to ask for
        app.set_delay(0.05)  # nor does a new delay start the timer again
        await pilot.pause(0.3)
        assert asked == 3


@pytest.mark.asyncio
async def test_after_the_last_iteration_the_replay_says_it_ended(tmp_path):
    from xentui.backends.readonly import ReadOnlyBackend

    log_file = tmp_path / "night\x1b[2J.log"  # the file name reaches the screen: escaped
    log_file.write_text(recording("xentop-b-i2-d1.txt"))
    replay = ReplayBackend(log_file, interval=60.0)
    gate = ReadOnlyBackend(replay)
    assert replay.finished is None and gate.finished is None
    first, second = await gate.sample(), await gate.sample()
    assert replay.finished is None  # the last iteration was served; nothing asked past it yet
    again = await gate.sample()
    assert again is second and again.monotonic == second.monotonic  # no new rates, no history point
    assert not compute_rates(second, again)
    message = gate.finished
    assert message is not None and message == replay.finished
    start = time.strftime("%H:%M:%S", time.localtime(first.wall))
    end = time.strftime("%H:%M:%S", time.localtime(second.wall))
    assert message == f"the recording ended: 2 iterations, {start} to {end} (log {tmp_path}/night\\x1b[2J.log)"
    assert second.wall - first.wall == 60.0
    assert (await gate.sample()) is second and gate.finished == message


@pytest.mark.asyncio
async def test_a_looping_replay_never_ends(tmp_path):
    log_file = tmp_path / "x.log"
    log_file.write_text(recording("xentop-b-i2-d1.txt"))
    replay = ReplayBackend(log_file, interval=1.0, loop=True)
    first = await replay.sample()
    await replay.sample()
    assert (await replay.sample()) is first and replay.finished is None


def test_live_backends_are_never_finished():
    from xentui.backends.base import Backend

    assert Backend.finished is None
    assert SimBackend(SimCluster(seed=2, clock=ManualClock())).finished is None


@pytest.mark.asyncio
async def test_batch_stops_at_the_end_of_the_recording_whatever_the_iterations_asked(tmp_path):
    import io

    from xentui.batch import run_batch

    log_file = tmp_path / "x.log"
    log_file.write_text(recording("xentop-b-i2-d1.txt"))
    out = io.StringIO()

    async def no_sleep(seconds: float) -> None:
        pass

    await run_batch(ReplayBackend(log_file, interval=1.0), BatchOptions(iterations=5), out, sleep=no_sleep)
    assert out.getvalue() == recording("xentop-b-i2-d1.txt")  # two iterations, not the last one four times


# --- the host size: every recorded percentage given back ----------------------------------------------


def _domain(name: str, mem_kib: int, maxmem_kib: int | None, domid: int) -> Domain:
    return Domain(domid, name, "", DomainType.UNKNOWN, DomainFlag.BLOCKED, 7 * 1_000_000_000, mem_kib, maxmem_kib,
                  vcpus=[Vcpu(0, True, 7 * 1_000_000_000)], vcpus_max=1)


def _recorded(iterations: list[list[Domain]], total_kib: int, options: BatchOptions) -> str:
    """What xentop prints for these iterations on a host of ``total_kib`` (every CPU idle)."""
    host = Host("h", "Xen", "4.17", 4, 2000, total_kib, 0)
    formatter = XentopFormatter(options)
    text, previous = "", None
    for index, domains in enumerate(iterations):
        sample = Sample(monotonic=float(index), wall=float(index), host=host, domains=domains)
        text += formatter.format(sample, compute_rates(previous, sample))
        previous = sample
    return text


async def _replayed(text: str, options: BatchOptions) -> str:
    import io

    from xentui.batch import run_batch

    with tempfile.TemporaryDirectory() as directory:
        log_file = Path(directory) / "x.log"
        log_file.write_text(text)
        out = io.StringIO()

        async def no_sleep(seconds: float) -> None:
            pass

        replay = ReplayBackend(log_file, interval=1.0)
        options = dataclasses.replace(options, iterations=replay.iterations)  # as the command line does
        await run_batch(replay, options, out, sleep=no_sleep)
        return out.getvalue()


def _without_headers(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not HEADER_RE.match(line))


@pytest.mark.asyncio
async def test_maxmem_percent_narrows_the_host_size_that_mem_percent_leaves_open():
    # 9,960,000 KiB: MEM(%) 10.0 allows 9.95 to 10.05 million KiB; MAXMEM(%) 50.0 only 9.95 to 9.97 million.
    iteration = [_domain("a-guest-with-a-long-name", 1_000_000, 4_980_000, 1)]
    options = BatchOptions(full_name=True)
    text = _recorded([iteration, iteration], 9_960_000, options)
    assert "50.0" in text
    headerless = _without_headers(text)  # a log cut out of a longer one with grep
    assert _without_headers(await _replayed(headerless, options)) == headerless
    assert await _replayed(text, options) == text


@pytest.mark.asyncio
async def test_a_percentage_of_a_later_iteration_narrows_the_host_size_too():
    early = [_domain("Domain-0", 2_000_000, None, 0)]
    # a guest that starts in the second iteration: its MAXMEM(%), 50.04, prints 50.1 on the size MEM(%) allows
    later = [_domain("Domain-0", 2_000_000, None, 0), _domain("late", 500_000, 4_983_984, 1)]
    options = BatchOptions()
    text = _recorded([early, later], 9_960_000, options)
    assert "50.0" in text.splitlines()[-1]
    assert await _replayed(text, options) == text


@settings(max_examples=150, deadline=None)
@given(
    total=st.integers(64 * 1024, 2**40),
    count=st.integers(1, 4),
    figures=st.lists(st.lists(st.tuples(st.floats(0, 1), st.one_of(st.none(), st.floats(0, 2))), min_size=4,
                              max_size=4), min_size=1, max_size=3),
    full_name=st.booleans(),
)
def test_any_recording_replays_with_every_percentage_as_recorded(total, count, figures, full_name):
    names = ["Domain-0", "a-guest-with-a-long-name", "b", "c"]
    iterations = [
        [_domain(names[i], int(mem * total), None if maxmem is None else int(maxmem * total), i)
         for i, (mem, maxmem) in enumerate(rows[:count])]
        for rows in figures
    ]
    options = BatchOptions(full_name=full_name)
    text = _recorded(iterations, total, options)
    assert asyncio.run(_replayed(text, options)) == text


# --- the old 17-column layout: no sector counts -------------------------------------------------------

OLD_LAYOUT = (
    "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k)"
    " VBDS   VBD_OO   VBD_RD   VBD_WR SSID\n"
    "  Domain-0 -----r       1234    3.2    4194304    6.2   no limit       n/a     4    0        0        0"
    "    0        0        0        0    0\n"
    "    web-01 --b---         12    0.1    1048576    1.6    2097152       3.1     1    1        5        7"
    "    1        0     {rd:>4}       20    0\n"
    "VBD BlkBack  768 [ 3: 0]  OO:        0   RD:     {rd:>4}   WR:       20\n"
)


@pytest.mark.asyncio
@pytest.mark.parametrize("subrows", [False, True])
async def test_an_old_log_gives_no_sector_counts_rather_than_zeros(tmp_path, subrows):
    import io
    import json

    from xentui.batch import BatchFormat, run_batch

    text = OLD_LAYOUT.format(rd=100) + OLD_LAYOUT.format(rd=160)
    if not subrows:
        text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("VBD "))
    log = parse_xentop_log(text)
    assert log.columns == 17 and not log.skipped and log.vbds == subrows
    log_file = tmp_path / "old.log"
    log_file.write_text(text)

    async def no_sleep(seconds: float) -> None:
        pass

    out = io.StringIO()
    options = BatchOptions(format=BatchFormat.JSON, vbds=True, iterations=2)
    await run_batch(ReplayBackend(log_file, interval=1.0), options, out, sleep=no_sleep)
    second = json.loads(out.getvalue().splitlines()[1])
    assert second["host"]["nr_cpus"] is None and second["host"]["cpu_mhz"] is None  # not in the log either
    web = next(domain for domain in second["domains"] if domain["name"] == "web-01")
    assert (web["vbd_oo"], web["vbd_rd"], web["vbd_wr"]) == (0, 160, 20)  # what the old layout has stays
    assert (web["vbd_rsect"], web["vbd_wsect"], web["vbd_rd_bps"], web["vbd_wr_bps"]) == (None, None, None, None)
    assert [(d["rd"], d["rsect"], d["wsect"]) for d in web["vbd_devices"]] == [(160, None, None)]
    dom0 = next(domain for domain in second["domains"] if domain["name"] == "Domain-0")
    assert dom0["vbd_rsect"] is None  # no such column: unknown, even where there is no vbd to count

    out = io.StringIO()
    await run_batch(ReplayBackend(log_file, interval=1.0), BatchOptions(format=BatchFormat.CSV, iterations=2), out,
                    sleep=no_sleep)
    rows = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in csv.reader(io.StringIO(out.getvalue()))][1:]
    assert [(row["vbd_rd"], row["vbd_rsect"], row["vbd_wsect"]) for row in rows if row["name"] == "web-01"] == [
        ("100", "", ""), ("160", "", "")]


def test_a_replay_refuses_what_is_not_a_regular_file_and_never_reads_it_whole(tmp_path):
    """`--replay /dev/zero` read until memory ran out; a FIFO blocked with no message."""
    import os

    from xentui.errors import InvalidArgument

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo, tmp_path):
        with pytest.raises(InvalidArgument, match="not a regular file"):
            ReplayBackend(path)


def test_a_huge_garbage_line_in_a_log_is_left_out(tmp_path):
    log_file = tmp_path / "x.log"
    log_file.write_text("G" * 200_000 + "\n" + recording("xentop-b-i2-d1.txt"))
    assert ReplayBackend(log_file).samples
