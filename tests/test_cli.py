"""xentui as a script runs it: real processes, real pipes, real signals."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CMD = [sys.executable, "-m", "xentui"]


def run(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The first simulated host alone unless the test chose a backend (auto-detection would look at this
    machine; the demo's default, its three hosts in one table, has tests of its own)."""
    chosen = any(arg in ("--backend", "--replay", "--demo", "-c", "--host", "--pool") for arg in args)
    return subprocess.run([*CMD, *([] if chosen else ["--demo", "--sim-hosts", "1"]), *args], capture_output=True,
                          text=True,
                          timeout=timeout, env=env)


def test_a_host_ssh_cannot_reach_is_said_in_ssh_words_and_leaves_nothing_behind(tmp_path):
    # a long TMPDIR: the ControlMaster socket must not go there (a socket's path is at most 108 bytes)
    env = {**os.environ, "TMPDIR": str(tmp_path / ("x" * 60)), "XDG_RUNTIME_DIR": ""}
    before = set(Path("/tmp").glob("xentui-ssh-*"))
    result = run("--host", "root@127.0.0.1", "--ssh-option", "Port=1", "-b", "-i", "1", env=env)
    assert result.returncode == 3 and result.stdout == ""  # nothing to watch: exit 3
    assert result.stderr.startswith("xentui: cannot reach root@127.0.0.1 with ssh: ") and "port 1" in result.stderr
    assert set(Path("/tmp").glob("xentui-ssh-*")) == before


def test_batch_xentop_two_iterations():
    result = run("-b", "-i", "2", "-d", "0.5", "--seed", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("NAME")]
    assert len(headers) == 2 and len(lines) == 2 * 14
    second = lines[headers[1] + 1:]
    cruncher = next(line for line in second if "batch-crun" in line)
    assert 300 < float(cruncher.split()[3]) <= 400.5  # CPU(%) of the runaway over a real 0.5 s


def test_batch_json_is_one_object_per_line():
    result = run("-b", "-i", "2", "-d", "0.5", "--format", "json", "-n", "-x", "-v", "--seed", "2")
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["host"]["hostname"] == "sim-host-1"
    names = [d["name"] for d in first["domains"]]
    assert "build runner 7" in names and "[staging] api" in names
    assert all(d["cpu_pct"] is None for d in first["domains"])
    assert all(isinstance(d["cpu_pct"], float) for d in second["domains"])
    db = next(d for d in second["domains"] if d["name"] == "db-primary")
    assert db["vifs"][0]["ifname"].startswith("vif") and db["vbd_devices"] and db["vcpu_s"]
    dom0 = next(d for d in second["domains"] if d["name"] == "Domain-0")
    assert dom0["maxmem_kib"] is None


def test_batch_csv():
    result = run("-b", "-i", "1", "--format", "csv", "--sim-domains", "30", "--seed", "3")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 31
    assert {row["state"] for row in rows} >= {"running", "blocked", "paused", "crashed", "dying", "shutdown"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-b", "-d", "0"], "0 is too short: at least 0.5 s"),
        (["-b", "-d", "-1"], "-1 is too short: at least 0.5 s"),
        (["-b", "-d", "0.01"], "0.01 is too short: at least 0.5 s"),
        (["-b", "-d", "1e-9"], "1e-9 is too short: at least 0.5 s"),
        (["-b", "-d", "1e9"], "1e9 is too long: at most 3600 s"),
        (["-b", "-d", "soon"], "'soon' is not a number: 0.5 to 3600 s"),
        (["--replay-interval", "0.1"], "0.1 is too short: at least 0.5 s"),
        (["--replay-speed", "0"], "0 is too slow: at least 0.01"),
        (["--replay-speed", "1e-5"], "1e-5 is too slow: at least 0.01"),
        (["--replay-speed", "5000"], "5000 is too fast: at most 1000"),
        (["--replay-speed", "fast"], "'fast' is not a factor: 0.01 to 1000"),
        (["--backend", "sim", "--replay", "x.log"], "--backend sim and --replay pick two backends: give one"),
        (["--demo", "--replay", "x.log"], "--demo (sim) and --replay pick two backends: give one"),
        (["--demo", "-c", "qemu:///system"], "--demo (sim) and -c (libvirt) pick two backends: give one"),
        (["--backend", "xl", "-c", "xen:///system"], "--backend xl and -c (libvirt) pick two backends: give one"),
        (["--backend", "libvirt", "--demo"], "--backend libvirt and --demo (sim) pick two backends: give one"),
        (["--backend", "replay"], "--backend replay needs --replay FILE"),
        (["--host", "root@dom0a", "-c", "qemu:///system"],
         "-c (libvirt) and --host (xl over ssh) pick two backends: give one"),
        (["--host", ";rm -rf /"], "argument --host: not an ssh destination: ';rm -rf /'"),
        (["--host=-oProxyCommand=sh"], "argument --host: not an ssh destination: '-oProxyCommand=sh'"),
        (["-b", "-i", "-1"], "argument -i/--iterations: must be 1 or more, not -1"),
        (["--sim-domains", "5001"], "argument --sim-domains: must be 0..5000, not 5001"),
        (["--theme", "neon"], "no theme 'neon': xentui-dark, xentui-light, xentui-plain"),
        (["--backend", "vmware"], "invalid choice"),
    ],
)
def test_bad_options_are_refused_with_a_reason(args, message):
    result = run(*args, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
    if message != "invalid choice":  # argparse's own, listing the choices
        assert all(len(line) <= 80 for line in result.stderr.splitlines()), result.stderr  # one line at 80 columns


@pytest.mark.parametrize(
    "args",
    [["--demo", "--backend", "sim"], ["--backend", "libvirt", "-c", "test:///default"],
     ["--backend", "replay", "--replay", "x.log"]],
)
def test_options_that_pick_the_same_backend_go_together(args):
    from xentui.cli import build_parser, check_backend_choice

    check_backend_choice(build_parser().parse_args(args))


def test_replay_pace_is_kept_within_the_delay_bounds_and_says_so():
    from xentui.cli import replay_pace

    assert replay_pace(3.0, 2.0) == (1.5, None)
    assert replay_pace(1.0, 2.0) == (0.5, None)  # exactly the floor
    assert replay_pace(1.0, 100.0) == (0.5, "--replay-speed 100: faster than the 0.5 s floor; playing at speed 2")
    delay, note = replay_pace(3600.0, 0.5)
    assert delay == 3600.0 and note == "--replay-speed 0.5: slower than the 3600 s ceiling; playing at speed 1"


def test_a_replay_faster_than_the_floor_plays_at_the_floor(tmp_path):
    log_file = tmp_path / "incident.log"
    log_file.write_text((Path(__file__).parent / "fixtures" / "xentop-b-i2-d1.txt").read_text())
    start = time.monotonic()
    result = run("--replay", str(log_file), "--replay-interval", "1", "--replay-speed", "100", "-b")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start >= 0.5  # two iterations: one wait between them, at the floor
    assert result.stderr == "xentui: --replay-speed 100: faster than the 0.5 s floor; playing at speed 2\n"
    assert result.stdout.count("NAME") == 2


def _help_groups() -> dict[str, set[str]]:
    from xentui.cli import build_parser

    return {group.title or "": {opt for action in group._group_actions for opt in action.option_strings}
            for group in build_parser()._action_groups}


def test_help_groups_the_options_that_apply_to_the_screen_apart_from_batch_mode():
    groups = _help_groups()
    show = next(opts for title, opts in groups.items() if "screen and batch" in title)
    batch = next(opts for title, opts in groups.items() if title.startswith("batch mode"))
    assert {"-d", "-n", "-x", "-v", "-r", "-z"} <= show
    assert {"-b", "-i", "--format", "-f"} <= batch
    assert not batch & {"-d", "-n", "-x", "-v", "-r", "-z"}
    result = run("--help")
    assert result.returncode == 0
    assert "0.5..3600" in result.stdout and "--replay-speed X" in result.stdout


def test_every_option_is_in_the_readme_command_line_section():
    """The README's summary and tables follow `xentui --help`: an option added to one only fails here."""
    from xentui.cli import build_parser
    from xentui.validate import MIN_DELAY_S

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    usage = section.split("```", 2)[1]
    tables = section.split("```", 2)[2]
    for action in build_parser()._actions:
        first = action.option_strings[0]
        assert f"[{first}" in usage, f"{first} is missing from the README's usage lines"
        for option in action.option_strings:
            assert f"`{option}`" in tables or f"`{option} " in tables, f"{option} is missing from the README's table"
    assert f"floor is {MIN_DELAY_S:g} s" in section


def test_closed_pipe_ends_quietly():
    proc = subprocess.Popen([*CMD, "--demo", "--sim-hosts", "1", "-b", "-d", "0.5", "--seed", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `xentui -b | head -1`
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_ends_cleanly_with_output_flushed(sig):
    proc = subprocess.Popen([*CMD, "--demo", "--sim-hosts", "1", "-b", "-d", "0.5", "--seed", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "NAME" in first
    time.sleep(0.8)  # past the second iteration (-d 0.5): interrupted with output printed
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out.endswith("\n")  # no half-written line
    assert all(len(line.split()) >= 19 or "VCPUs" in line for line in out.splitlines() if line)


def test_demo_names_with_escape_characters_never_reach_the_terminal_raw():
    env = dict(os.environ)
    code = (
        "import sys; from xentui import cli; from xentui.backends import sim;"
        "sim._FEATURED = (('evil\\x1b[2J\\u202ename', *sim._FEATURED[0][1:]),) + sim._FEATURED[1:];"
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    for fmt in ("xentop", "csv"):
        result = subprocess.run([sys.executable, "-c", code, "--demo", "-b", "-i", "1", "-f", "--format", fmt],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
        assert "evil\\x1b[2J\\u202ename" in result.stdout
    result = subprocess.run([sys.executable, "-c", code, "--demo", "-b", "-i", "1", "--format", "json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout  # escaped by JSON
    assert any(d["name"] == "evil\x1b[2J\u202ename" for d in json.loads(result.stdout)["domains"])


class TuiInPty:
    """The real TUI in a pseudo-terminal, as over ssh: what it drew so far, and keys written to it."""

    def __init__(self, *args: str) -> None:
        import pty

        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
        self.proc = subprocess.Popen([*CMD, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                                     close_fds=True)
        os.close(slave)
        self.seen = bytearray()

    def read_until(self, needle: bytes, limit: float = 30) -> bool:
        import select

        deadline = time.monotonic() + limit
        while needle not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                self.seen.extend(os.read(self.master, 65536))
        return needle in self.seen

    def exit_code(self, limit: float = 20) -> int:
        """Keep reading (so it never blocks on output) until it ends."""
        import select

        deadline = time.monotonic() + limit
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    os.read(self.master, 65536)
                except OSError:
                    break
        return self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        os.close(self.master)


def test_interactive_screen_starts_in_a_terminal_and_q_quits():
    tui = TuiInPty("--demo", "--seed", "1", "-d", "0.5")
    try:
        assert tui.read_until(b"batch-cruncher") and b"sim-host-1" in tui.seen
        os.write(tui.master, b"q")
        assert tui.exit_code() == 0
    finally:
        tui.close()


def test_escape_and_the_next_key_read_together_in_a_terminal():
    """Over ssh Escape and the key after it often come in one read: "ESC /" must clear the filter and open
    a new one (Textual's own parser dropped the Escape: the filter became 'web/db'), "ESC q" must clear
    it and quit (read as Alt+Q, taken apart again)."""
    import re

    tui = TuiInPty("--demo", "--seed", "1", "-d", "0.5")
    try:
        assert tui.read_until(b"batch-cruncher")
        os.write(tui.master, b"/web")
        assert tui.read_until(b"filter 'web'")
        mark = len(tui.seen)
        os.write(tui.master, b"\x1b/db")
        assert tui.read_until(b"filter 'db'", limit=15)
        assert not re.search(rb"filter 'web/", bytes(tui.seen[mark:]))
        os.write(tui.master, b"\x1bq")
        assert tui.exit_code() == 0
    finally:
        tui.close()


def test_the_command_starts_with_the_collector_off_and_batch_mode_turns_it_back_on():
    script = (
        "import gc, sys\n"
        "import xentui.cli\n"
        "real_main = xentui.cli.main\n"
        "def main():\n"
        "    print('at start', gc.isenabled(), file=sys.stderr)\n"
        "    code = real_main()\n"
        "    print('after batch', gc.isenabled(), file=sys.stderr)\n"
        "    return code\n"
        "xentui.cli.main = main\n"
        "from xentui.__main__ import run\n"
        "sys.argv = ['xentui', '--demo', '-b', '-i', '1', '--seed', '2']\n"
        "raise SystemExit(run())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "at start False" in done.stderr and "after batch True" in done.stderr
    assert "Domain-0" in done.stdout


@pytest.mark.parametrize("args", [
    ["-c", "qemu+ssh://\x1b]0;owned\x07host/system", "-b", "-i", "1"],
    ["--replay", "/tmp/\x1b]52;c;cHduZWQ=\x1b\\.log", "-b", "-i", "1"],
    ["--backend", "\x1b[2Jxl"],
    ["-d", "\x9b2J"],
])
def test_a_hostile_argument_is_never_echoed_raw_to_the_terminal(args):
    """A `-c` URI with an OSC in it changed the terminal's title when the connection error echoed it."""
    result = run(*args, timeout=60)
    assert result.returncode != 0
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr and "\x07" not in result.stderr
    assert result.stderr.strip(), "the refusal says something"
