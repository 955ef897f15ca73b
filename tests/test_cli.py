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

import pytest

CMD = [sys.executable, "-m", "xentui"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The simulated host unless the test chose a backend (auto-detection would look at this machine)."""
    chosen = any(arg in ("--backend", "--replay", "--demo", "-c") for arg in args)
    return subprocess.run([*CMD, *([] if chosen else ["--demo"]), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_batch_xentop_two_iterations():
    result = run("-b", "-i", "2", "-d", "0.2", "--seed", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("NAME")]
    assert len(headers) == 2 and len(lines) == 2 * 14
    second = lines[headers[1] + 1:]
    cruncher = next(line for line in second if "batch-crun" in line)
    assert 300 < float(cruncher.split()[3]) <= 400.5  # CPU(%) of the runaway over a real 0.2 s


def test_batch_json_is_one_object_per_line():
    result = run("-b", "-i", "2", "-d", "0.1", "--format", "json", "-n", "-x", "-v", "--seed", "2")
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
        (["-b", "-d", "0"], "more than 0"),
        (["-b", "-d", "soon"], "not a number"),
        (["-b", "-i", "-1"], "1 or more"),
        (["--sim-domains", "5001"], "0..5000"),
        (["--theme", "neon"], "xentui-dark"),
        (["--backend", "vmware"], "invalid choice"),
    ],
)
def test_bad_options_are_refused_with_a_reason(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_closed_pipe_ends_quietly():
    proc = subprocess.Popen([*CMD, "--demo", "-b", "-d", "0.05", "--seed", "4"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `xentui -b | head -1`
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_ends_cleanly_with_output_flushed(sig):
    proc = subprocess.Popen([*CMD, "--demo", "-b", "-d", "0.3", "--seed", "5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "NAME" in first
    time.sleep(0.5)
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
