"""The night after: --record appends every sample the screen shows (JSON Lines), --replay plays it back (both
formats), with pause, step and seek, its position said, and the audit trail's actions marked as it passes them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xentui.audit import AuditLog
from xentui.backends.replay import ReplayBackend
from xentui.ui.app import StartOptions, XentuiApp
from xentui.ui.table import DomainTable

from .ui.helpers import NEVER, make_sim, poll, settle, wait_for


def record_batch(path, iterations: int = 5) -> None:
    done = subprocess.run([sys.executable, "-m", "xentui", "--demo", "--sim-hosts", "1", "--seed", "3", "-b", "-i",
                           str(iterations), "-d", "0.5", "--format", "json", "-n", "-x", "-v"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path.write_text(done.stdout)


@pytest.mark.asyncio
async def test_a_json_recording_plays_back_with_its_own_times_and_devices(tmp_path):
    path = tmp_path / "rec.jsonl"
    record_batch(path)
    replay = ReplayBackend(path)
    assert replay.iterations == 5 and replay.interval == pytest.approx(0.5, abs=0.2)
    recorded = [json.loads(line) for line in path.read_text().splitlines()]
    first = await replay.sample()
    assert [d.name for d in first.domains] == [d["name"] for d in recorded[0]["domains"]]
    db = next(d for d in first.domains if d.name == "db-primary")
    entry = next(d for d in recorded[0]["domains"] if d["name"] == "db-primary")
    assert [v.mac for v in db.vifs] == [v["mac"] for v in entry["vifs"]]
    assert [v.device for v in db.vbds] == [v["device"] for v in entry["vbd_devices"]]
    assert db.uuid == entry["uuid"] and db.cpu_ns == round(entry["cpu_s"] * 1e9)


def test_both_formats_print_the_same_xentop_lines_again(tmp_path):
    path = tmp_path / "rec.jsonl"
    record_batch(path, 3)
    replayed = subprocess.run([sys.executable, "-m", "xentui", "--replay", str(path), "-b", "-i", "3"],
                              capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 0, replayed.stderr
    names = [line.split()[0] for line in replayed.stdout.splitlines() if line.strip()]
    assert names.count("NAME") == 3 and "Domain-0" in names


def test_a_truncated_last_line_is_left_out(tmp_path):
    path = tmp_path / "rec.jsonl"
    record_batch(path, 3)
    path.write_text(path.read_text()[:-40])
    assert ReplayBackend(path).iterations == 2


@pytest.mark.asyncio
async def test_the_screen_records_every_sample_it_shows(tmp_path):
    sim, clock = make_sim()
    path = tmp_path / "incident.jsonl"
    app = XentuiApp(sim, StartOptions(delay=NEVER, theme="xentui-dark", record=path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app, clock)
        await poll(pilot, app, clock)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["domains"] for line in lines)
    assert ReplayBackend(path).iterations == 3


@pytest.mark.asyncio
async def test_pause_step_and_seek_and_the_actions_of_the_time(tmp_path):
    path = tmp_path / "rec.jsonl"
    record_batch(path, 12)
    recorded = [json.loads(line) for line in path.read_text().splitlines()]
    audit = AuditLog(tmp_path / "audit.log", clock=lambda: _epoch(recorded[2]["time"]) - 0.1, user="alice")
    audit.record(backend="xl", host="h", action="destroy", domain="web-frontend-01", uuid=None, arguments={},
                 result="ok")
    replay = ReplayBackend(path)
    assert replay.load_actions(tmp_path / "audit.log") == 1
    app = XentuiApp(replay, StartOptions(delay=NEVER, theme="xentui-dark"))
    notes: list[str] = []
    app.notify = lambda message, **kwargs: notes.append(str(message))  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.polls_done >= 1)
        for _ in range(2):
            await poll(pilot, app, None)
        assert "replay 3/12" in str(app.query_one("#host").render())
        assert any("alice: destroy web-frontend-01 (ok)" in note for note in notes)
        await pilot.press("full_stop")
        await poll(pilot, app, None)
        assert "replay 3/12" in str(app.query_one("#host").render()) and "paused" in str(
            app.query_one("#host").render())
        await pilot.press("right_curly_bracket")
        await wait_for(pilot, lambda: "replay 12/12" in str(app.query_one("#host").render()))
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: "replay 11/12" in str(app.query_one("#host").render()))
        table = app.query_one(DomainTable)
        assert table.shown_keys and app.rates  # its own rates, from the iteration before it


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
