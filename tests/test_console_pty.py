"""PtyConsole against real ptys and real child processes."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from xentui.console.pty import MAX_READ, PtyConsole
from xentui.errors import BackendError, BackendUnavailable, ConsoleBusy, DomainNotFound

GRACE = 0.1  # startup window for the consoles that are meant to work


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


async def read_until(console: PtyConsole, done: Callable[[bytes], bool], within: float = 10.0) -> bytes:
    """Everything read until ``done(so_far)`` holds, or fail after ``within`` seconds."""
    received = bytearray()

    async def loop() -> None:
        while not done(bytes(received)):
            chunk = await console.read()
            if not chunk:
                raise AssertionError(f"EOF before the expected output; got {bytes(received)!r}")
            received.extend(chunk)

    try:
        await asyncio.wait_for(loop(), within)
    except TimeoutError:
        raise AssertionError(f"timed out; got {bytes(received)!r}") from None
    return bytes(received)


@pytest_asyncio.fixture
async def consoles() -> AsyncIterator[list[PtyConsole]]:
    """Consoles a test starts; closed whatever happens."""
    started: list[PtyConsole] = []
    yield started
    for console in started:
        await console.close()


async def start(consoles: list[PtyConsole], argv: list[str], **kwargs: object) -> PtyConsole:
    kwargs.setdefault("startup_grace", GRACE)
    console = await PtyConsole.start(argv, **kwargs)  # type: ignore[arg-type]
    consoles.append(console)
    return console


@pytest.mark.asyncio
async def test_echo_round_trip_through_cat(consoles: list[PtyConsole]) -> None:
    console = await start(consoles, ["cat"])
    await console.write(b"hello\r")
    await read_until(console, lambda got: got.count(b"hello") >= 2)  # the tty's echo, then cat's copy


@pytest.mark.asyncio
async def test_child_sees_initial_size_and_term(consoles: list[PtyConsole]) -> None:
    code = """
        import os, sys
        size = os.get_terminal_size()
        print(f"size={size.columns}x{size.lines} term={os.environ.get('TERM')}", flush=True)
        sys.stdin.readline()
    """
    console = await start(consoles, python(code), columns=100, rows=30)
    got = await read_until(console, lambda got: b"\n" in got)
    assert b"size=100x30 term=xterm-256color" in got


@pytest.mark.asyncio
async def test_resize_reaches_child(consoles: list[PtyConsole]) -> None:
    code = """
        import os, signal, time
        def on_winch(signum, frame):
            size = os.get_terminal_size()
            print(f"winch {size.columns}x{size.lines}", flush=True)
        signal.signal(signal.SIGWINCH, on_winch)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """
    console = await start(consoles, python(code))
    await read_until(console, lambda got: b"ready" in got)
    await console.resize(132, 43)
    await read_until(console, lambda got: b"winch 132x43" in got)


@pytest.mark.asyncio
async def test_burst_arrives_complete_in_bounded_reads(consoles: list[PtyConsole]) -> None:
    pattern = b"0123456789abcdef"  # no newline: the pty's output processing leaves it alone
    expected = pattern * (1024 * 1024 // len(pattern))
    code = f"""
        import sys
        sys.stdout.buffer.write({pattern!r} * {len(expected) // len(pattern)})
        sys.stdout.flush()
        sys.stdin.readline()
    """
    console = await start(consoles, python(code))
    await asyncio.sleep(0.2)  # let output pile up, so reads have more than one chunk to return
    sizes: list[int] = []
    received = bytearray()

    async def drain() -> None:
        while len(received) < len(expected):
            chunk = await console.read()
            assert chunk, "EOF in the middle of the burst"
            sizes.append(len(chunk))
            received.extend(chunk)

    await asyncio.wait_for(drain(), 10.0)
    assert bytes(received) == expected
    assert max(sizes) <= MAX_READ == 64 * 1024


@pytest.mark.asyncio
async def test_read_returns_empty_after_child_exits(consoles: list[PtyConsole]) -> None:
    code = """
        import sys
        sys.stdin.readline()
        print("bye", flush=True)
    """
    console = await start(consoles, python(code))
    await console.write(b"go\r")
    # the whole line: the terminal may hand over "bye" and its "\r\n" in two reads
    await read_until(console, lambda got: b"bye\r\n" in got)
    assert await asyncio.wait_for(console.read(), 10.0) == b""
    assert await console.read() == b""  # and stays at EOF
    with pytest.raises(DomainNotFound):
        await console.write(b"anyone?\r")


@pytest.mark.asyncio
async def test_close_kills_child_ignoring_sigterm_and_is_idempotent(consoles: list[PtyConsole]) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """
    console = await start(consoles, python(code))
    await read_until(console, lambda got: b"ready" in got)
    await console.close()
    assert console.returncode is not None and console.returncode < 0  # killed by a signal
    await console.close()  # a second close is harmless
    assert await console.read() == b""


@pytest.mark.asyncio
async def test_close_wakes_a_pending_read(consoles: list[PtyConsole]) -> None:
    console = await start(consoles, ["cat"])
    pending = asyncio.create_task(console.read())
    await asyncio.sleep(0.05)
    await console.close()
    assert await asyncio.wait_for(pending, 1.0) == b""


@pytest.mark.asyncio
async def test_write_after_close_raises(consoles: list[PtyConsole]) -> None:
    console = await start(consoles, ["cat"])
    await console.close()
    with pytest.raises(DomainNotFound, match="console closed"):
        await console.write(b"late\r")
    await console.resize(100, 40)  # resizing a closed console is harmless


@pytest.mark.asyncio
async def test_busy_console_raises_console_busy() -> None:
    code = """
        import sys
        print("xenconsole: Could not read tty from store: Device or resource busy, already in use")
        sys.exit(1)
    """
    with pytest.raises(ConsoleBusy, match="already in use") as caught:
        # an early exit is reported at once: waiting out a 60 s grace would trip the 30 s bound
        await asyncio.wait_for(PtyConsole.start(python(code), startup_grace=60.0), 30.0)
    assert "\r" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.asyncio
async def test_early_exit_raises_backend_error_with_status() -> None:
    code = """
        import sys
        sys.stdout.write("\\x1b[31mboom\\x07\\n")
        sys.exit(2)
    """
    with pytest.raises(BackendError) as caught:
        await PtyConsole.start(python(code), startup_grace=2.0)
    assert not isinstance(caught.value, ConsoleBusy)
    message = str(caught.value)
    assert "boom" in message and "exit status 2" in message
    assert "\x1b" not in message and "\x07" not in message


@pytest.mark.asyncio
async def test_missing_program_raises_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="cannot run /nonexistent/xentui-no-such-console"):
        await PtyConsole.start(["/nonexistent/xentui-no-such-console", "dom1"])


@pytest.mark.asyncio
async def test_start_returns_within_the_grace_window(consoles: list[PtyConsole]) -> None:
    # a console that keeps running is ready once the grace has passed: start() does not wait for more
    await asyncio.wait_for(start(consoles, ["cat"], startup_grace=0.3), 30.0)


@pytest.mark.asyncio
async def test_utf8_split_across_writes_arrives_intact(consoles: list[PtyConsole]) -> None:
    code = """
        import os, sys, time
        os.write(1, b"euro:\\xe2\\x82")
        time.sleep(0.05)
        os.write(1, b"\\xac!")
        sys.stdin.readline()
    """
    console = await start(consoles, python(code))
    got = await read_until(console, lambda got: b"!" in got)
    assert b"euro:\xe2\x82\xac!" in got
