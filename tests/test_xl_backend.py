"""The xl backend's parts that run anywhere: vdev names, xl's error messages, migration progress,
auto-detection, the xentop stream. The backend against a real hypervisor: tests/xenlab/."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xentui.backends.base import MigratePhase
from xentui.backends.detect import detect_backend
from xentui.backends.xen_vdev import vdev_name, vdev_number
from xentui.backends.xentop_stream import XentopStream
from xentui.backends.xl import MigrateProgressReader, XlBackend, migrate_progress_from_line
from xentui.backends.xl_tool import error_summary, run_tool
from xentui.errors import BackendError, BackendUnavailable, InvalidArgument
from xentui.model import DomainType

FIXTURES = Path(__file__).parent / "fixtures"
async_test = pytest.mark.asyncio


# --- vdev names ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "number"), [
    ("xvda", 51712), ("xvdb", 51728), ("xvda1", 51713), ("hda", 768), ("hdb", 832), ("hdc", 5632), ("sda", 2048),
])
def test_vdev_numbers_match_what_xentop_prints(name: str, number: int) -> None:
    # 51712 / 768 / 832 appear in real xentop -x captures (tests/fixtures/xentop-b-nxv.txt)
    assert vdev_number(name) == number
    assert vdev_name(number) == name


@given(st.sampled_from(["xvd", "sd", "hd"]), st.integers(0, 700), st.integers(0, 15))
def test_vdev_round_trip(kind: str, disk: int, partition: int) -> None:
    letters, index = "", disk + 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(97 + rest) + letters
    name = f"{kind}{letters}{partition or ''}"
    number = vdev_number(name)
    if number is not None:
        assert vdev_name(number) == name
    else:
        assert kind != "xvd" or disk >= 1 << 20  # every xvd name has a number


@given(st.text(max_size=12))
def test_vdev_number_never_raises(text: str) -> None:
    assert vdev_number(text) is None or isinstance(vdev_number(text), int)


# --- xl's errors -------------------------------------------------------------------------------

def test_error_summary_keeps_the_words_and_drops_libxl_source_locations() -> None:
    stderr = (
        "libxl: error: libxl_mem.c:334:libxl_set_memory_target: Domain 3:memory_dynamic_max must be less than "
        "or equal to memory_static_max\n"
        "libxl: error: libxl_mem.c:334:libxl_set_memory_target: Domain 3:memory_dynamic_max must be less than "
        "or equal to memory_static_max\n"
        "cannot set domid 3 memory target\x1b[2J\n"
    )
    summary = error_summary(stderr)
    assert summary == ("Domain 3:memory_dynamic_max must be less than or equal to memory_static_max; "
                       "cannot set domid 3 memory target\\x1b[2J")


@async_test
async def test_run_tool_turns_a_failure_into_the_tools_words() -> None:
    code = "import sys; sys.stderr.write('libxl: error: libxl.c:1:f: Domain 9 does not exist\\n'); sys.exit(1)"
    with pytest.raises(BackendError, match="xl pause failed: Domain 9 does not exist") as caught:
        await run_tool([sys.executable, "-c", code], what="xl pause")
    assert "libxl.c:1" in (caught.value.detail or "")


@async_test
async def test_run_tool_missing_program_and_timeout() -> None:
    with pytest.raises(BackendUnavailable, match="not installed"):
        await run_tool(["/nonexistent/xl", "list"])
    with pytest.raises(BackendError, match=r"no answer after 0\.3 s"):
        await run_tool([sys.executable, "-c", "import time; time.sleep(30)"], limit=0.3, what="xl save")


@async_test
async def test_run_tool_unreachable_hypervisor_is_unavailable() -> None:
    code = "import sys; sys.stderr.write('xc: error: Could not obtain handle on privileged command interface\\n'); " \
           "sys.exit(1)"
    with pytest.raises(BackendUnavailable, match="cannot reach the hypervisor"):
        await run_tool([sys.executable, "-c", code], what="xl info")


# --- migration progress --------------------------------------------------------------------------

def test_migrate_progress_lines() -> None:
    first = migrate_progress_from_line("xc: info: Frames iteration 0 of 5: 16384/32768  50%")
    assert first is not None and first.phase is MigratePhase.COPYING
    assert first.bytes_sent == 16384 * 4096 and first.bytes_total == 32768 * 4096
    assert 0.3 < first.fraction < 0.4
    later = migrate_progress_from_line("xc: info: Frames iteration 2 of 5: 100/32768    0%")
    assert later is not None and later.fraction > first.fraction
    suspended = migrate_progress_from_line("xc: info: Domain now suspended")
    assert suspended is not None and suspended.phase is MigratePhase.STOP_AND_COPY
    done = migrate_progress_from_line("Migration successful.")
    assert done is not None and done.phase is MigratePhase.DONE
    assert migrate_progress_from_line("Parsing config from <saved>") is None


def test_migrate_progress_never_goes_back_when_the_targets_lines_arrive_late() -> None:
    """Seen in the Xen lab: the target's "Ready to receive" (through ssh) after the sender's "Saving to
    migration stream"; the progress bar must not jump back from 0.05 to 0.03."""
    reader = MigrateProgressReader()
    lines = ["Saving to migration stream new xl format (info 0x3/0x0/1768)",
             "migration target: Ready to receive domain.",
             "xc: info: Domain now suspended",
             "migration target: Transfer complete, requesting permission to start domain."]
    fractions = [progress.fraction for line in lines if (progress := reader.feed(line)) is not None]
    assert fractions == sorted(fractions) and fractions[0] == fractions[1] == 0.05
    assert reader.feed("Parsing config from <saved>") is None


# --- auto-detection ------------------------------------------------------------------------------

def test_detect_picks_xl_in_dom0_with_xl(tmp_path: Path) -> None:
    caps = tmp_path / "capabilities"
    caps.write_text("control_d\n")
    assert detect_backend(caps, which=lambda _: "/usr/sbin/xl", libvirt_probe=lambda: (False, "none")) == "xl"


def test_detect_falls_back_to_libvirt_then_explains(tmp_path: Path) -> None:
    guest_caps = tmp_path / "capabilities"
    guest_caps.write_text("\n")  # a domU has the file, without control_d
    assert detect_backend(guest_caps, which=lambda _: None, libvirt_probe=lambda: (True, "qemu:///system")) == "libvirt"
    with pytest.raises(BackendUnavailable) as caught:
        detect_backend(tmp_path / "absent", which=lambda _: None, libvirt_probe=lambda: (False, "no daemon"))
    message = str(caught.value)
    assert "not running on Xen" in message and "no daemon" in message and "--demo" in message
    caps = tmp_path / "dom0"
    caps.write_text("control_d")
    with pytest.raises(BackendUnavailable, match="xl` is not on PATH"):
        detect_backend(caps, which=lambda _: None, libvirt_probe=lambda: (False, "no daemon"))


def test_cli_without_a_hypervisor_says_what_it_looked_for(tmp_path: Path) -> None:
    import subprocess

    # an empty PATH for xl and no libvirt module: nothing to find
    code = ("import sys; sys.modules['libvirt'] = None; from xentui import cli; sys.exit(cli.main(['-b', '-i', '1']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 3  # no hypervisor here: not a usage error
    assert "Looked for" in result.stderr and "--demo" in result.stderr and "Traceback" not in result.stderr


def test_xl_backend_refuses_bad_options_and_explains_missing_xl(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        XlBackend(stats="psychic")
    with pytest.raises(InvalidArgument):
        XlBackend(migrate_ssh="ssh\nrm -rf /")
    with pytest.raises(BackendUnavailable, match="not on PATH"):
        XlBackend(xl=str(tmp_path / "xl")).check_environment()


# --- the xentop stream ---------------------------------------------------------------------------

def _fake_xentop(tmp_path: Path, capture: str) -> Path:
    """A stand-in `xentop -b -d D`: prints the recorded iterations of a real capture, D seconds apart,
    then stays quiet like xentop between iterations; it records its arguments."""
    script = tmp_path / "xentop"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        f"open({str(tmp_path / 'argv')!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "delay = float(sys.argv[sys.argv.index('-d') + 1])\n"
        f"text = open({capture!r}).read().split('---8<---')[1]\n"
        "blocks = [b for b in text.split('      NAME') if b.strip()]\n"
        "for block in blocks * 50:\n"
        "    sys.stdout.write('      NAME' + block.rstrip('\\n') + '\\n'); sys.stdout.flush(); time.sleep(delay)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@async_test
async def test_xentop_stream_reads_iterations_and_restarts_on_delay_change(tmp_path: Path) -> None:
    capture = tmp_path / "capture.txt"
    lines = (FIXTURES / "xentop-b-i2-d1.txt").read_text().splitlines()
    capture.write_text("---8<---\n" + "\n".join(line for line in lines if not line.startswith("#")) + "\n---8<---\n")
    stream = XentopStream(str(_fake_xentop(tmp_path, str(capture))), delay=0.2)
    try:
        rows, _, first = await stream.latest()
        assert {row.name for row in rows} >= {"Domain-0", "b-vm-01"}
        assert stream.starts == 1
        rows, _, second = await stream.latest(newer_than=first)  # waits for the next iteration
        assert second > first and stream.starts == 1  # one process, not one per sample
        # the second recorded iteration: Domain-0 at 10.6 % over the 0.2 s delay
        assert stream.cpu_ns["Domain-0"] - 330256 * 10**9 == 10**9 // 2 + round(10.6 * 0.2 * 1e7)
        await stream.set_delay(0.3)
        rows, _, _ = await stream.latest()
        assert stream.starts == 2
        assert (tmp_path / "argv").read_text().splitlines() == ["-b -d 0.2 -x -v -f", "-b -d 0.3 -x -v -f"]
    finally:
        await stream.stop()


@async_test
async def test_xentop_stream_reports_a_dead_xentop(tmp_path: Path) -> None:
    script = tmp_path / "xentop"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stderr.write('xentop: cannot open privcmd\\n')\n"
                      "sys.exit(1)\n")
    script.chmod(0o755)
    stream = XentopStream(str(script), delay=0.2)
    with pytest.raises(BackendUnavailable, match="cannot open privcmd"):
        await stream.latest()
    await stream.stop()


def test_migrate_failure_explains_missing_log_dirty_support() -> None:
    """The real output of a failed `xl migrate` in the lab (Debian's Xen has no shadow paging for PV log-dirty)."""
    from xentui.backends.xl import _migrate_failure

    text = (FIXTURES / "xenlab-xl-migrate-localhost.txt").read_text().split("## xl list afterwards")[0]
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    message = _migrate_failure(lines, 1)
    assert message.startswith("this Xen cannot track the guest's dirty pages")
    assert "Failed to enable logdirty: 95,22,0" in message and "Migration failed" in message
    assert "libxl_stream_write.c" not in message  # source locations stay in the detail


@pytest.mark.parametrize(("fixture", "kind", "ok", "words"), [
    ("xenlab-xl-info.txt", DomainType.PV, False, "needs shadow paging"),  # Debian's Xen: no shadow
    ("xenlab-xl-info.txt", DomainType.PVH, True, "through HAP"),
    ("xl-info-intel.txt", DomainType.PV, True, "through shadow paging"),
    ("xl-info-opensuse.txt", DomainType.HVM, True, "through HAP"),
    ("xl-info-opensuse.txt", DomainType.UNKNOWN, None, "cannot tell"),
    ("xl-info-opensuse.txt", DomainType.PV, True, "through shadow paging"),
])
def test_the_preflight_says_whether_this_xen_can_track_the_guests_dirty_pages(fixture, kind, ok, words) -> None:
    """From the virt_caps of real `xl info` captures: the lab's Xen has HAP and no shadow paging, so its PV
    guests cannot move live (what xl migrate then fails with, see above) and its PVH guests can."""
    from xentui.backends.xl.migration import _dirty_tracking_check
    from xentui.backends.xl_parsers import parse_xl_info, xl_info_host

    text = "\n".join(line for line in (FIXTURES / fixture).read_text().split("\n") if not line.startswith("#"))
    caps = xl_info_host(parse_xl_info(text))["virt_caps"]
    check = _dirty_tracking_check(kind, caps)
    assert (check.name, check.ok) == ("dirty pages", ok) and words in check.detail, check


def test_an_older_xen_that_does_not_list_hap_or_shadow_leaves_the_dirty_pages_check_open() -> None:
    from xentui.backends.xl.migration import _dirty_tracking_check

    check = _dirty_tracking_check(DomainType.PV, ["pv", "hvm", "hvm_directio", "pv_directio"])
    assert check.ok is None and "does not say" in check.detail


def test_the_memory_arrived_on_the_target_moves_the_bar_between_sending_and_suspended() -> None:
    """Xen 4.17's xl prints nothing between "Saving to migration stream" and "Domain now suspended" (see the
    capture below): what the target's NAME--incoming domain holds then says how far the first pass is."""
    reader = MigrateProgressReader()
    assert reader.arrived(10, 128) is None  # not sending yet: xl has not said so
    reader.feed("Saving to migration stream new xl format (info 0x3/0x0/1092)")
    half = reader.arrived(64, 128)
    assert half is not None and half.phase is MigratePhase.COPYING and 0.4 < half.fraction < 0.5
    assert half.message == "sending memory: 64 of 128 MiB there" and half.bytes_sent == 64 << 20
    assert reader.arrived(60, 128) is None  # never back
    full = reader.arrived(140, 128)  # the incoming domain may hold a little more than the guest's pages
    assert full is not None and full.fraction < 0.85
    suspended = reader.feed("xc: info: Domain now suspended")
    assert suspended is not None and suspended.fraction == 0.85
    assert reader.arrived(128, 128) is None  # the last pages: xl's own lines say the rest


def test_migrate_progress_from_a_real_successful_migration() -> None:
    lines = [line for line in (FIXTURES / "xenlab-xl-migrate-localhost-pvh.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    events = [p for p in map(migrate_progress_from_line, lines) if p is not None]
    fractions = [event.fraction for event in events]
    assert fractions == sorted(fractions) and len(events) >= 5
    assert events[0].phase is MigratePhase.PREFLIGHT and events[-1].phase is MigratePhase.DONE


@async_test
async def test_xentop_stream_survives_a_line_of_garbage_longer_than_the_reader_takes(tmp_path: Path) -> None:
    """One line over 64 KiB used to kill the reader for good: the table stayed stale after xentop was sane again."""
    capture = tmp_path / "capture.txt"
    lines = (FIXTURES / "xentop-b-i2-d1.txt").read_text().splitlines()
    capture.write_text("---8<---\n" + "\n".join(line for line in lines if not line.startswith("#")) + "\n---8<---\n")
    script = _fake_xentop(tmp_path, str(capture))
    text = script.read_text().replace(
        "for block in blocks * 50:\n",
        "sys.stdout.write('      NAME' + blocks[0].rstrip('\\n') + '\\n'); sys.stdout.flush(); time.sleep(delay)\n"
        "sys.stdout.write('\\x1b' + 'G' * 300_000 + '\\n'); sys.stdout.flush(); time.sleep(delay)\n"
        "for block in blocks * 50:\n")
    script.write_text(text)
    stream = XentopStream(str(script), delay=0.2)
    try:
        _, _, first = await stream.latest()
        sequence = first
        for _ in range(3):  # iterations after the garbage keep coming, from the same process
            _, _, sequence = await stream.latest(newer_than=sequence)
        assert sequence >= first + 3 and stream.starts == 1
        assert stream.garbage_lines >= 1
    finally:
        await stream.stop()


def _scripted_xentop(tmp_path: Path, after_blocks: str) -> Path:
    """The lab capture's first iterations, then ``after_blocks`` (Python run once they are printed)."""
    capture = tmp_path / "capture.txt"
    lines = (FIXTURES / "xentop-b-i2-d1.txt").read_text().splitlines()
    capture.write_text("---8<---\n" + "\n".join(line for line in lines if not line.startswith("#")) + "\n---8<---\n")
    script = _fake_xentop(tmp_path, str(capture))
    script.write_text(script.read_text().replace("for block in blocks * 50:\n", "for block in blocks[:2]:\n")
                      + after_blocks + "\n")
    return script


@async_test
async def test_xentop_stream_that_stalls_hands_back_the_same_iteration_and_does_not_hang(tmp_path: Path) -> None:
    """A stalled xentop: the sample after it carries the same sequence and time, so the screen calls it stale."""
    stream = XentopStream(str(_scripted_xentop(tmp_path, "time.sleep(3600)")), delay=0.2)
    try:
        _, first_at, first = await stream.latest()
        _, second_at, second = await stream.latest(newer_than=first)
        _, stalled_at, stalled = await asyncio.wait_for(stream.latest(newer_than=second), 30)
        assert second == first + 1 and (stalled, stalled_at) == (second, second_at) and second_at > first_at
        assert stream.starts == 1  # a stall is not a death: the same process, still waited for
    finally:
        await stream.stop()


@async_test
async def test_xentop_stream_restarts_a_xentop_that_exited_and_numbers_go_on(tmp_path: Path) -> None:
    stream = XentopStream(str(_scripted_xentop(tmp_path, "sys.exit(0)")), delay=0.2)
    try:
        _, _, sequence = await stream.latest()
        seen = [sequence]
        for _ in range(6):
            _, _, sequence = await asyncio.wait_for(stream.latest(newer_than=sequence), 30)
            seen.append(sequence)
        assert stream.starts >= 2  # the exit was noticed and a new xentop started by a later sample
        assert seen == sorted(seen) and seen[-1] > 2  # iterations of the new process count on
        assert (tmp_path / "argv").read_text().splitlines()[:2] == ["-b -d 0.2 -x -v -f"] * 2
    finally:
        await stream.stop()
