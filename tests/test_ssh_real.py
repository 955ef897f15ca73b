"""ssh's own failures, with the real ``ssh`` against a real ``sshd``: a password asked for, a host key that
changed or is not known, a name that does not resolve. Each fails at once with words an operator acts on (BatchMode:
no prompt, no hang), and in a pool that host is shown down with them while the others keep refreshing.

The sshd is this test's own: 127.0.0.1, a free port, its host key, authorized key and config in a temporary
directory; no system configuration is read or changed (as root, sshd needs its empty privilege separation
directory, /run/sshd, which the openssh-server package's service makes at start: made here if missing). The client
runs with ``-F /dev/null`` and its own keys and known_hosts: the operator's ~/.ssh plays no part.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil
import pytest

from tests.ui.helpers import NEVER, poll, settle
from xentui.backends.host import end_process
from xentui.backends.pool import LateMember, PoolBackend
from xentui.backends.registry import BACKENDS, BackendOptions
from xentui.backends.sim import SimBackend, SimCluster
from xentui.backends.ssh import SshHost
from xentui.clock import ManualClock
from xentui.errors import BackendUnavailable
from xentui.ui.app import StartOptions, XentuiApp

SSHD = shutil.which("sshd") or next((path for path in ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
                                     if os.access(path, os.X_OK)), None)
NO_SUCH_HOST = "no-such-host.invalid"  # RFC 6761: never resolves


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return path


@dataclass(frozen=True)
class Sshd:
    port: int
    directory: Path
    authorized: Path  # a client key in the sshd's authorized_keys
    stranger: Path  # a client key it does not know: the server then offers a password
    host_key: Path  # the sshd's own host key (its .pub beside it)
    other_key: Path  # another host key, as if the machine had been reinstalled, or someone were in between

    @property
    def destination(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1"

    def known_hosts(self, name: str, key: Path | None) -> Path:
        """A known_hosts file holding ``key`` for this sshd's [127.0.0.1]:port (None: an empty one)."""
        path = self.directory / name
        line = " ".join(key.with_suffix(".pub").read_text().split()[:2]) if key is not None else ""
        path.write_text(f"[127.0.0.1]:{self.port} {line}\n" if line else "")
        return path

    def options(self, *, key: Path, known_hosts: Path) -> list[str]:
        """ssh options for this sshd and nothing of the operator's: no ~/.ssh/config, no agent, one key."""
        return ["-F", "/dev/null", "-p", str(self.port), "-i", str(key), "-oIdentitiesOnly=yes",
                "-oIdentityAgent=none", f"-oUserKnownHostsFile={known_hosts}", "-oGlobalKnownHostsFile=/dev/null",
                "-oStrictHostKeyChecking=yes"]


@contextlib.contextmanager
def running_sshd(directory: Path, *, passwords: bool) -> Iterator[Sshd]:
    """An sshd of its own in ``directory``, until the block ends; ``passwords``: whether it offers password
    authentication to a client whose keys it does not know. Skips the test when no sshd can run here."""
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("no sshd (or ssh, ssh-keygen) here: apt-get install openssh-server openssh-client")
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        try:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        except OSError as error:
            pytest.skip(f"sshd as root needs /run/sshd, its privilege separation directory: {error}")
    host_key, other_key = _keygen(directory / "host_key"), _keygen(directory / "other_host_key")
    authorized, stranger = _keygen(directory / "client_key"), _keygen(directory / "stranger_key")
    (directory / "authorized_keys").write_text(authorized.with_suffix(".pub").read_text())
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {directory}/authorized_keys
PidFile {directory}/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication {"yes" if passwords else "no"}
KbdInteractiveAuthentication no
LogLevel VERBOSE
""")
    checked = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        pytest.skip(f"this sshd cannot run here: {checked.stderr.strip() or checked.returncode}")
    with (directory / "sshd.log").open("wb") as log:
        server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=log)
        try:
            for _ in range(200):  # until it listens (or has died)
                if server.poll() is not None:
                    pytest.skip(f"sshd stopped at start: {(directory / 'sshd.log').read_text().strip()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                pytest.skip(f"sshd never listened on 127.0.0.1:{port}")
            yield Sshd(port, directory, authorized, stranger, host_key, other_key)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """An sshd that falls back to a password for a key it does not know, as a default sshd does."""
    with running_sshd(tmp_path_factory.mktemp("sshd"), passwords=True) as server:
        yield server


@pytest.fixture
def askpass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a password prompt would be recorded: ssh is told to ask this program for any password or
    passphrase (SSH_ASKPASS_REQUIRE=force, terminal or not); it writes down the prompt and gives none."""
    asked = tmp_path / "asked"
    program = tmp_path / "askpass"
    program.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{asked}"\nexit 1\n')
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("SSH_ASKPASS", str(program))
    monkeypatch.setenv("SSH_ASKPASS_REQUIRE", "force")
    monkeypatch.setenv("DISPLAY", ":0")
    return asked


def host_for(sshd: Sshd, *, key: Path, known_hosts: Path) -> SshHost:
    """The ControlMaster socket goes where xentui puts it (a short path: pytest's are too long for one)."""
    return SshHost(sshd.destination, options=sshd.options(key=key, known_hosts=known_hosts))


async def failure(host: SshHost) -> str:
    """What a command there fails with (ssh's own failure; within a minute, or this test fails: no hang)."""
    with pytest.raises(BackendUnavailable) as caught:
        await asyncio.wait_for(host.run(["echo", "reached"]), 60)
    assert caught.value.detail  # ssh's own words, kept for the details
    return str(caught.value)


@pytest.mark.asyncio
async def test_the_authorized_key_gets_in(sshd, askpass):
    """The fixture works: the failures below are for the reason each names, not a broken sshd."""
    host = host_for(sshd, key=sshd.authorized, known_hosts=sshd.known_hosts("kh", sshd.host_key))
    try:
        assert (await asyncio.wait_for(host.run(["echo", "reached"]), 60)).stdout == "reached\n"
        assert host.has("sh") and not host.has("no-such-program-here")
    finally:
        await host.close()
    assert not askpass.exists()


def test_without_batch_mode_this_sshd_makes_ssh_ask_for_a_password(sshd, askpass):
    """The control of the next test: the same key, the same sshd, ssh without xentui's options asks."""
    known = sshd.known_hosts("kh", sshd.host_key)
    without_batch = subprocess.run(["ssh", *sshd.options(key=sshd.stranger, known_hosts=known),
                                    "-oNumberOfPasswordPrompts=1", sshd.destination, "true"],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                                   start_new_session=True)
    assert without_batch.returncode == 255
    assert askpass.read_text() == f"{sshd.destination}'s password: \n"


@pytest.mark.asyncio
async def test_ssh_that_asks_for_a_password_fails_at_once_and_says_so(sshd, askpass):
    known = sshd.known_hosts("kh", sshd.host_key)
    host = host_for(sshd, key=sshd.stranger, known_hosts=known)
    said = await failure(host)
    assert said == (f"ssh to {sshd.destination} asks for a password, and xentui never types one (BatchMode): "
                    "log in with a key (ssh-copy-id, or load yours in ssh-agent)")
    with pytest.raises(BackendUnavailable) as before_the_screen:  # xl's check before the screen opens
        host.has("xl")
    assert str(before_the_screen.value) == said
    assert not askpass.exists()  # never asked: no prompt, on a terminal or anywhere
    await host.close()


@pytest.mark.asyncio
async def test_a_key_refused_where_no_password_is_offered_is_said_so(tmp_path, askpass):
    with running_sshd(tmp_path, passwords=False) as keys_only:
        host = host_for(keys_only, key=keys_only.stranger, known_hosts=keys_only.known_hosts("kh", keys_only.host_key))
        said = await failure(host)
        await host.close()
    assert said == (f"ssh to {keys_only.destination}: permission denied (publickey): no key of yours is accepted "
                    "there")
    assert not askpass.exists()


@pytest.mark.asyncio
async def test_a_host_key_that_changed_is_said_changed_and_nothing_is_accepted(sshd, askpass):
    known = sshd.known_hosts("kh", sshd.other_key)
    before = known.read_text()
    host = host_for(sshd, key=sshd.authorized, known_hosts=known)
    said = await failure(host)
    assert said.startswith(f"the host key of {sshd.destination} has CHANGED since it was last seen: ssh refused "
                           "to connect (a reinstalled host, or someone in between?); check the new key, then "
                           "remove the old one: ssh-keygen "), said
    assert f"-R \"[127.0.0.1]:{sshd.port}\"" in said and "\n" not in said and "@@@" not in said
    assert known.read_text() == before and not askpass.exists()
    await host.close()


@pytest.mark.asyncio
async def test_a_host_key_not_known_is_never_accepted(sshd, askpass):
    known = sshd.known_hosts("kh", None)
    host = host_for(sshd, key=sshd.authorized, known_hosts=known)
    said = await failure(host)
    assert said == (f"the host key of {sshd.destination} is not known here (not in known_hosts): ssh refused to "
                    "connect, and xentui never accepts a key; check it and accept it with ssh by hand once")
    assert known.read_text() == "" and not askpass.exists()
    await host.close()


@pytest.mark.asyncio
async def test_a_host_name_that_does_not_resolve_is_said_so(askpass):
    host = SshHost(f"root@{NO_SUCH_HOST}", options=["-F", "/dev/null"])
    said = await failure(host)
    assert said.startswith(f"cannot reach root@{NO_SUCH_HOST}: the host name {NO_SUCH_HOST} cannot be resolved ("), said
    assert said.endswith("); check the name, or its HostName in ~/.ssh/config")
    assert not askpass.exists()
    await host.close()


CASES = {  # the client key, the key known_hosts holds, and the words its host line starts with
    "password": ("stranger", "host_key", "ssh to {label} asks for a password, and xentui never types one"),
    "changed host key": ("authorized", "other_key", "the host key of {label} has CHANGED since it was last seen"),
    "unknown host name": ("authorized", "host_key", f"cannot reach {{label}}: the host name {NO_SUCH_HOST} "
                                                    "cannot be resolved"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(CASES))
async def test_in_a_pool_that_host_is_down_with_the_reason_and_the_other_keeps_refreshing(sshd, askpass, case):
    key, known_key, words = CASES[case]
    where = NO_SUCH_HOST if case == "unknown host name" else "127.0.0.1"
    label = f"{getpass.getuser()}@{where}"
    words = words.format(label=label)
    options = BackendOptions(host=label, ssh_options=tuple(sshd.options(
        key=getattr(sshd, key), known_hosts=sshd.known_hosts("kh", getattr(sshd, known_key)))))
    clock = ManualClock()
    cluster = SimCluster(seed=5, domains=4, clock=clock, hosts=2)
    pool = PoolBackend([(label, LateMember(label, partial(BACKENDS["xl"].build, options), "xl")),
                        ("sim-host-1", SimBackend(cluster, "sim-host-1"))])
    app = XentuiApp(pool, StartOptions(delay=NEVER, theme="xentui-dark"))
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot, app, clock)
        down, up = app.sample.hosts
        assert down.label == label and down.error is not None and down.error.startswith(words), down.error
        assert up.error is None and up.domains == 5
        rows = [app.table.render_line(y).text for y in range(1, len(app.table._lines) + 1)]
        assert rows[0].startswith(f"▾ {label[:12]}") and f": {words}" in rows[0], rows[0]  # the name is cut
        assert rows[0].split()[2:4] == ["DOWN", "since"]
        for _ in range(2):  # the simulated host keeps refreshing, each time with new figures
            cpu_before = list(app.rates.column("cpu_pct", app.sample.keys()))
            await poll(pilot, app, clock, 2.0)
            assert list(app.rates.column("cpu_pct", app.sample.keys())) != cpu_before
            assert app.sample.hosts[0].error == down.error and app.sample.hosts[1].error is None
    assert not askpass.exists()


def test_xentui_host_with_a_name_that_does_not_resolve_says_so_before_the_screen(askpass):
    done = subprocess.run([sys.executable, "-m", "xentui", "--host", f"root@{NO_SUCH_HOST}", "-b", "-i", "1"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and done.stdout == "", done.stderr  # nothing to watch
    assert done.stderr.startswith(f"xentui: cannot reach root@{NO_SUCH_HOST}: the host name {NO_SUCH_HOST} cannot "
                                  "be resolved ("), done.stderr
    assert "Traceback" not in done.stderr and not askpass.exists()


# --- a long command ended from here: it must end there too --------------------------------------------------

def remote_sleepers(marker: str) -> list[psutil.Process]:
    """The sshd's `sleep` started with MARKER (the sshd is on this machine, so its children are seen here)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if process.info["cmdline"] and process.info["cmdline"][:1] == ["sleep"] and marker in (
                    process.info["cmdline"][1:]):
                found.append(process)
    return found


async def until(check, within: float) -> bool:
    """Whether CHECK holds within WITHIN seconds (looked at every tenth of a second)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


@pytest.mark.asyncio
@pytest.mark.parametrize("hang_up", [True, False])
async def test_a_command_that_writes_nothing_ends_there_when_it_is_ended_here_only_with_hang_up(sshd, hang_up):
    """xl migrate writes nothing while it sends memory: ended here (the operator's Stop), it must end there
    too. With ``hang_up`` (a terminal there) the closed connection hangs it up; without, it goes on (the
    control: what a Stop did to a migration over ssh before)."""
    import uuid

    host = host_for(sshd, key=sshd.authorized, known_hosts=sshd.known_hosts("kh", sshd.host_key))
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**6}"  # a sleep length no one else uses
    try:
        await host.run(["true"])  # the ControlMaster up, as in a running pool
        process = await host.start(["sleep", marker], merge_stderr=True, hang_up=hang_up)
        assert await until(lambda: bool(remote_sleepers(marker)), 30), "the command never started there"
        await end_process(process)  # as a Stop does
        ended = await until(lambda: not remote_sleepers(marker), 10)
        assert ended is hang_up
    finally:
        for left in remote_sleepers(marker):
            left.kill()
        await host.close()
