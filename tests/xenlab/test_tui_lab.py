"""The screen as an operator uses it: ssh into the lab's dom0, xentui in tmux at 80x24 and 160x50.

Keys go in with `tmux send-keys`; the screen comes back with `tmux capture-pane`; what the keys did is
checked with xl in dom0.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from xentui.backends.xl_parsers import parse_xl_list
from xentui.model import DomainFlag

pytestmark = pytest.mark.xenlab


class Screen:
    """One tmux session running xentui in dom0 over ssh."""

    def __init__(self, command: list[str], columns: int, rows: int) -> None:
        self.name = f"xentui-lab-{uuid.uuid4().hex[:6]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(columns), "-y", str(rows),
                        shlex.join(command)], check=True)

    def text(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                              check=False).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *(["-l"] if literal else []), *keys], check=True)

    def wait(self, what: str, check: Callable[[str], bool], timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not on the screen within {timeout:g} s; it shows:\n{text}")
            time.sleep(0.5)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False, capture_output=True)


@pytest.fixture
def screen(xenlab, request) -> Iterator[Screen]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    columns, rows, *options = request.param  # the terminal's size, then any options for xentui
    command = xenlab.ssh_command(["env", "TERM=xterm-256color", "LANG=C.UTF-8", "/root/venv/bin/xentui",
                                  "--backend", "xl", "-d", "1", *options], tty=True)
    session = Screen(command, columns, rows)
    try:
        yield session
    finally:
        session.keys("C-]")  # out of a console pane first, or the q would be typed into the guest
        time.sleep(0.5)
        session.keys("q")
        time.sleep(1)
        session.close()
        xenlab.ssh(["xl", "unpause", "guest2"], check=False)


def guest2_paused(xenlab) -> bool:
    entries = {e.name: e for e in parse_xl_list(xenlab.ssh(["xl", "list"]).stdout)}
    return DomainFlag.PAUSED in entries["guest2"].flags


def select_guest2(screen: Screen) -> None:
    """Filter the table down to guest2, so the cursor is on it whatever the sort order."""
    screen.keys("/")
    screen.keys("guest2", literal=True)
    screen.keys("Enter")
    screen.wait("only guest2 left", lambda text: "guest2" in text and "guest1" not in text, timeout=30)


@pytest.mark.parametrize("screen", [(80, 24), (160, 50)], indirect=True, ids=["80x24", "160x50"])
def test_table_shows_the_guests_and_p_pauses_the_real_guest(xenlab, screen):
    text = screen.wait("the guests in the table",
                       lambda t: all(name in t for name in ("Domain-0", "guest1", "guest2")), timeout=120)
    assert "xenlab-dom0" in text or "Xen" in text  # the host header
    select_guest2(screen)
    screen.keys("p")
    deadline = time.monotonic() + 30
    while not guest2_paused(xenlab):
        assert time.monotonic() < deadline, f"guest2 not paused; the screen:\n{screen.text()}"
        time.sleep(1)
    screen.wait("guest2 shown paused", lambda t: re.search(r"guest2.*paused|guest2.*--p", t) is not None)
    # The pause is over when the action log says so (a second action on a busy domain is refused, as it
    # should be; the toast saying "done" may be gone already, the log keeps it).
    screen.keys("l")
    screen.wait("the pause logged as done", lambda t: re.search(r"ok\s+pause\s+guest2", t) is not None, timeout=60)
    screen.keys("Escape")
    screen.wait("the action log closed", lambda t: "Action log" not in t, timeout=30)
    screen.keys("p")  # everything targeted is paused: p unpauses
    deadline = time.monotonic() + 30
    while guest2_paused(xenlab):
        assert time.monotonic() < deadline, f"guest2 still paused; the screen:\n{screen.text()}"
        time.sleep(1)


@pytest.mark.parametrize("screen", [(160, 50), (80, 24)], indirect=True, ids=["160x50", "80x24"])
def test_console_pane_opens_and_answers(xenlab, screen):
    screen.wait("the guests in the table", lambda t: "guest2" in t, timeout=120)
    select_guest2(screen)
    screen.keys("t")
    screen.wait("the console pane", lambda t: "console: guest2" in t, timeout=30)
    screen.keys("Enter")
    screen.keys("echo $((6*7))MARK", literal=True)
    screen.keys("Enter")
    screen.wait("the guest's answer", lambda t: "42MARK" in t, timeout=30)
    screen.keys("C-u")  # leave the guest's line empty for whoever attaches next


@pytest.mark.parametrize("screen", [(80, 24)], indirect=True, ids=["80x24"])
def test_mem_set_through_its_modal_changes_the_real_guest(xenlab, screen):
    screen.wait("the guests in the table", lambda t: "guest2" in t, timeout=120)
    select_guest2(screen)
    try:
        screen.keys("m")
        screen.wait("the mem-set dialog", lambda t: "guest2" in t and "mem-set" in t, timeout=30)
        screen.keys("100M", literal=True)  # replaces the selected current size
        screen.keys("Enter")
        deadline = time.monotonic() + 60
        while True:
            entries = {e.name: e for e in parse_xl_list(xenlab.ssh(["xl", "list"]).stdout)}
            if entries["guest2"].mem_mib == 100:
                break
            assert time.monotonic() < deadline, f"guest2 not at 100 MiB; the screen:\n{screen.text()}"
            time.sleep(1)
    finally:
        xenlab.ssh(["xl", "mem-set", "guest2", "128m"], check=False)


def guest2_mib(xenlab) -> int:
    return {e.name: e for e in parse_xl_list(xenlab.ssh(["xl", "list"]).stdout)}["guest2"].mem_mib


def mem_set_from_the_modal(screen: Screen, size: str) -> None:
    screen.keys("m")
    # the dialog's own words: a toast from the last mem-set ("mem-set guest2 100M") names both guest2 and mem-set
    screen.wait("the mem-set dialog", lambda t: "guest2 — mem-set: the balloon target" in t and "New size" in t,
                timeout=30)
    screen.keys(size, literal=True)  # replaces the selected current size
    screen.keys("Enter")


@pytest.mark.parametrize("screen", [(80, 24)], indirect=True, ids=["80x24"])
def test_mem_set_down_then_up_to_the_configured_maxmem_from_the_screen(xenlab, screen):
    """guest2: memory 128, maxmem 192. After a mem-set down, Xen's limit is the target + 1 MiB (xentop's
    MAXMEM 103424k), yet libxl lets mem-set go back up to the configured maximum: so does the modal. Above
    that maximum the modal refuses, and nothing changes."""
    screen.wait("the guests in the table", lambda t: "guest2" in t, timeout=120)
    select_guest2(screen)
    try:
        mem_set_from_the_modal(screen, "100M")
        deadline = time.monotonic() + 60
        while guest2_mib(xenlab) != 100:
            assert time.monotonic() < deadline, f"guest2 not at 100 MiB; the screen:\n{screen.text()}"
            time.sleep(1)
        xentop = xenlab.ssh(["xentop", "-b", "-i", "1", "-f"]).stdout
        assert re.search(r"guest2\s+\S+\s+\d+\s+[\d.]+\s+\d+\s+[\d.]+\s+103424\s", xentop), xentop
        # The table's MAXMEM is the ceiling, 192M, not Xen's limit of the moment (101M).
        screen.wait("MAXMEM 192M in the table", lambda t: re.search(r"guest2.*192M", t) is not None, timeout=30)
        mem_set_from_the_modal(screen, "150M")
        deadline = time.monotonic() + 60
        while guest2_mib(xenlab) != 150:
            assert time.monotonic() < deadline, f"guest2 not at 150 MiB; the screen:\n{screen.text()}"
            time.sleep(1)
        mem_set_from_the_modal(screen, "250M")
        screen.wait("the refusal", lambda t: "above guest2's maxmem of 192M" in t, timeout=30)
        screen.keys("Escape")
        time.sleep(2)
        assert guest2_mib(xenlab) == 150  # nothing changed
        # maxmem raised outside xentui: the table's ceiling follows (xl list -l is read again for it)
        xenlab.ssh(["xl", "mem-max", "guest2", "224m"])
        screen.wait("MAXMEM 224M in the table", lambda t: re.search(r"guest2.*224M", t) is not None, timeout=30)
    finally:
        xenlab.ssh(["xl", "mem-set", "guest2", "128m"], check=False)
        xenlab.ssh(["xl", "mem-max", "guest2", "192m"], check=False)


@pytest.mark.parametrize("screen", [(100, 30, "--xl-stats", "xentop")], indirect=True, ids=["xentop-100x30"])
def test_a_stalled_xentop_is_shown_stale_then_live_again(xenlab, screen):
    """The issue's case: xentop that stalls froze the table with no word. Stopped here with SIGSTOP."""
    screen.wait("the guests in the table", lambda t: "guest2" in t and "Domain-0" in t, timeout=120)
    xenlab.ssh(["pkill", "-STOP", "-x", "xentop"])
    try:
        text = screen.wait("the stale banner", lambda t: "Stale: no new figures from xl" in t, timeout=60)
        assert "guest2" in text  # the last figures stay, marked
    finally:
        xenlab.ssh(["pkill", "-CONT", "-x", "xentop"], check=False)
    screen.wait("live again", lambda t: "Stale" not in t and "guest2" in t, timeout=60)
