"""Every byte the real xentui writes to its terminal, while names, file names, tool messages and URIs are hostile.

The app runs in a pseudo-terminal (80x24, as over ssh) with stand-ins for `xl` and `xentop` that replay the Xen
lab's captures under names carrying escape sequences and markup (tests/fake_xen_tools.py), `xl pause` failing with
an escape in its message, and a save directory holding files named like an attack. Whatever the screen shows, the
terminal may receive only Textual's own drawing: CSI sequences of the kinds Textual uses and its pointer-shape OSC.
Any other OSC, a DCS/APC/PM/SOS, a C1 control, a bare ESC or BEL, or a report query (CSI ... n / t / c) fails.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.fake_xen_tools import install

# guest1 and guest2 of the lab's captures, renamed: a window title, a click action in Textual markup, a markup
# parse error, a cursor report request, a window-ops report request and a C1 CSI
HOSTILE_NAMES = {
    "guest1": "evil\x1b]0;PWNED-NAME\x07[@click=app.quit]q",
    "guest2": 'x[a="]\x1b[21t\x1b[6n\u009b2J',
}
HOSTILE_STDERR = "libxl: error: \x1b]0;STDERR-TITLE\x07 [/local/domain/1/device/vif/0] \x1b]52;c;SGk=\x1b\\\n"
HOSTILE_FILES = ["\x1b]0;FILE-TITLE\x07.save", "[@click=app.quit]x.save", "\u009d0;C1-TITLE\u009c.save"]

# Textual's drawing: SGR, cursor moves, modes, mode queries, the kitty keyboard protocol, erasures
_CSI = re.compile(r"\x1b\[([0-?]*)([ -/]*)([@-~])")
_TEXTUAL_CSI_FINALS = set("mHhlpuJKABCDG")
_TEXTUAL_OSC = re.compile(r"\x1b\]22;[a-z-]+\x07")  # the mouse pointer's shape
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def foreign_sequences(output: bytes) -> list[str]:
    """What in ``output`` is not Textual's own drawing, each with a little context."""
    text = output.decode("utf-8")  # the terminal is UTF-8: a stray byte is foreign too (this raises)
    found: list[str] = []
    position = 0
    while (match := _CONTROL.search(text, position)) is not None:
        start = match.start()
        if text.startswith("\x1b[", start) and (csi := _CSI.match(text, start)):
            if csi.group(3) in _TEXTUAL_CSI_FINALS and csi.group(2) in ("", "$"):
                position = csi.end()
                continue
        elif osc := _TEXTUAL_OSC.match(text, start):
            position = osc.end()
            continue
        found.append(repr(text[max(0, start - 40):start + 40]))
        position = start + 1
    return found


class Terminal:
    """A program in a pseudo-terminal: keys in, every byte out kept."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, columns: int = 80) -> None:
        self.output = bytearray()
        self.status: int | None = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the terminal's size before the program looks at it
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
            os.execve(argv[0], argv, env)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is None:  # a failed step: the program must not outlive the test
            os.kill(self.pid, signal.SIGKILL)
            self._reap(block=True)
        os.close(self.fd)

    def _read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # EIO: the program has gone
                    data = b""
                if not data:
                    self._reap(block=True)
                    return
                self.output.extend(data)
            elif self._reap(block=False):
                return

    def _reap(self, *, block: bool) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def shown_since(self, mark: int) -> str:
        """The text written since ``mark``, without escape sequences (markers of what the screen shows)."""
        return _CSI.sub("", bytes(self.output[mark:]).decode("utf-8", "replace"))

    def wait_for(self, text: str, since: int = 0, within: float = 30.0) -> None:
        end = time.monotonic() + within
        while text not in self.shown_since(since):
            if time.monotonic() > end or self.status is not None:
                raise AssertionError(f"{text!r} never appeared; the last screenful:\n{self.shown_since(since)[-3000:]}")
            self._read(0.2)

    def press(self, keys: str, then: str | None = None) -> None:
        """Type ``keys``; with ``then``, wait for that text to be drawn after them."""
        mark = len(self.output)
        os.write(self.fd, keys.encode())
        if then is not None:
            self.wait_for(then, since=mark)
        else:
            self._read(0.5)

    def finish(self, quit_key: str = "q", within: float = 20.0) -> int:
        end = time.monotonic() + within
        while self.status is None and time.monotonic() < end:
            if quit_key:
                os.write(self.fd, quit_key.encode())
            self._read(1.0)
        if self.status is None:
            raise AssertionError("the program did not end")
        return self.status


def _environment(bin_dir: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "TEXTUAL")}
    env.update(TERM="xterm-256color", COLORTERM="", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


XENTUI = [sys.executable, "-m", "xentui"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the xl backend insists on root (xl opens /dev/xen/privcmd)")
def test_the_screen_writes_nothing_but_its_own_drawing_whatever_the_names_files_and_tools_say(tmp_path):
    calls = install(tmp_path / "bin", HOSTILE_NAMES, fail_with=HOSTILE_STDERR)
    saves = tmp_path / "saves"
    saves.mkdir()
    for name in HOSTILE_FILES:
        (saves / name).write_bytes(b"not an image")
    with Terminal([*XENTUI, "--backend", "xl", "--xl-stats", "xentop", "-d", "1", "--save-dir", str(saves),
                   "--audit-log", str(tmp_path / "audit.log")], _environment(tmp_path / "bin")) as terminal:
        terminal.wait_for("PWNED-NAME")  # the table, with the names made printable
        terminal.press("/", then="filter: a name")
        terminal.press("evil\r")
        terminal.press("p", then="STDERR-TITLE")  # xl pause failed; its message in a notification
        terminal.press("\x1b")
        terminal.press("\x12", then="FILE-TITLE")  # Ctrl+R: the restore picker lists the files
        terminal.press("\r", then="not a domain")  # xl's backend refuses the first one, by its name
        terminal.press("\r", then="(id ")  # the details of the selected domain
        terminal.press("\x1b")
        status = terminal.finish()
    assert status == 0
    assert ["pause", "1"] in [eval(line) for line in calls.read_text().splitlines()]
    assert foreign_sequences(bytes(terminal.output)) == []
    assert b"\x1b[?1049l" in terminal.output  # and the terminal was given back


# libvirt's XML cannot carry ESC, but a name may hold C1 controls and markup; libvirt's own messages name it
LIBVIRT_NODE = """<node><domain type="test"><name>x[a="]&#x9b;2J&#x9d;0;C1-TITLE&#x9c;[@click=app.quit]q</name>
<memory unit="KiB">262144</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain></node>"""


def test_the_screen_over_libvirt_writes_nothing_but_its_own_drawing(tmp_path):
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")
    node = tmp_path / "node.xml"
    node.write_text(LIBVIRT_NODE)
    with Terminal([*XENTUI, "-c", f"test://{node}", "-d", "1", "--save-dir", str(tmp_path / "saves"),
                   "--audit-log", str(tmp_path / "audit.log")], _environment()) as terminal:
        terminal.wait_for("C1-TI")  # cut to the NAME column
        terminal.press("/", then="filter: a name")
        terminal.press("x[a\r")
        terminal.press("p", then="paused")  # libvirt's test driver pauses it; the toast names it
        terminal.press("t", then="console")  # the test driver has no console: libvirt's reason, with the name
        terminal.press("\r", then="(id ")
        terminal.press("\x1b")
        status = terminal.finish()
    assert status == 0
    assert foreign_sequences(bytes(terminal.output)) == []


@pytest.mark.parametrize("argv, shown", [
    (["-c", "test:///\x1b]0;URI-TITLE\x07", "-b", "-i", "1"], "URI-TITLE"),
    (["--\x1b]0;OPTION-TITLE\x07"], "OPTION-TITLE"),
    (["-d", "\x1b]0;DELAY-TITLE\x07"], "DELAY-TITLE"),
    (["--replay", "/nonexistent/\x1b]0;FILE-TITLE\x07\u009b6n"], "FILE-TITLE"),
    (["--backend", "\x1b[21t"], "invalid choice"),
], ids=["uri", "option", "delay", "replay-path", "backend"])
def test_messages_about_hostile_arguments_reach_the_terminal_escaped(argv, shown):
    if argv[0] == "-c":
        pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh)")
    with Terminal([*XENTUI, *argv], _environment()) as terminal:
        status = terminal.finish(quit_key="")
    assert status == 2 if argv[0] != "-c" else status != 0
    assert shown in terminal.shown_since(0)
    assert foreign_sequences(bytes(terminal.output)) == []


def test_the_scanner_finds_what_it_must():
    """The check itself: each attack in raw form is found, Textual's drawing is not."""
    drawing = b"\x1b[?1049h\x1b[1;1H\x1b[38;5;251;48;5;235mx\x1b[0m\x1b]22;default\x07\x1b[?2026$p\r\n"
    assert foreign_sequences(drawing) == []
    for raw in [*HOSTILE_NAMES.values(), HOSTILE_STDERR, "\x07", "\x1bP1$r\x1b\\", "\x1b_G\x1b\\"]:
        assert foreign_sequences(drawing + raw.encode()), raw
