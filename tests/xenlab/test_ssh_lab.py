"""The xl backend on another machine: this one reaches the lab's dom0 with the real ssh (`SshHost`), as an operator
reaches a dom0 of the pool. Every command, the xentop stream, dom0's interface counters and the vifs' bridges go
over one ControlMaster connection; what it shows is checked against xl in dom0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time

import pytest

from xentui.backends.base import Action, Unsupported
from xentui.backends.ssh import SshHost
from xentui.backends.xl import XlBackend
from xentui.model import DomainFlag, DomainState, compute_rates

from .dom0_calls import wait_for, xl_list

pytestmark = pytest.mark.xenlab


def lab_host(xenlab) -> SshHost:
    return SshHost("root@127.0.0.1", options=["-p", str(xenlab.port), "-i", str(xenlab.key_path),
                                               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                               "-o", "LogLevel=ERROR"])


@pytest.mark.asyncio
async def test_the_xl_backend_over_ssh_shows_what_xl_in_dom0_shows(xenlab):
    backend = XlBackend(host=lab_host(xenlab), delay=1.0)
    try:
        backend.check_environment()
        first = await backend.sample()
        second = await backend.sample()
        assert backend.stats_source == "xentop"  # libxenstat is dom0's own library: over ssh, xentop there
        listed = xl_list(xenlab)
        shown = {domain.name: domain for domain in second.domains}
        assert {name: entry.domid for name, entry in listed.items()} == {name: d.id for name, d in shown.items()}
        guest1 = shown["guest1"]
        assert guest1.vifs[0].bridge == "xenbr0" and guest1.vifs[0].ifname == f"vif{guest1.id}.0"
        assert guest1.vbds and guest1.vbds[0].device == "xvda" and guest1.uuid
        assert guest1.vifs[0].rx_bytes > 0  # dom0's /proc/net/dev, read over ssh
        assert second.host.hypervisor == "Xen" and second.host.version.startswith("4.17")
        assert compute_rates(first, second)[shown["Domain-0"].key].cpu_pct >= 0
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_an_action_over_ssh_reaches_the_guest(xenlab):
    backend = XlBackend(host=lab_host(xenlab), delay=1.0)
    try:
        await backend.sample()
        await backend.pause("guest2")
        wait_for("guest2 paused", lambda: DomainFlag.PAUSED in xl_list(xenlab)["guest2"].flags, timeout=30)
        for _ in range(20):  # the xentop stream shows it at its next iteration
            if {d.name: d for d in (await backend.sample()).domains}["guest2"].state is DomainState.PAUSED:
                break
        await backend.unpause("guest2")
        wait_for("guest2 running", lambda: DomainFlag.PAUSED not in xl_list(xenlab)["guest2"].flags, timeout=30)
        assert {d.name: d for d in (await backend.sample()).domains}["guest2"].state is not DomainState.PAUSED
    finally:
        await backend.close()
        if DomainFlag.PAUSED in xl_list(xenlab)["guest2"].flags:  # put guest2 back as the other tests expect it
            xenlab.ssh(["xl", "unpause", "guest2"], check=False)


def test_the_command_line_watches_a_dom0_over_ssh(xenlab):
    """`xentui --host` from this machine: batch JSON of the lab's dom0, as xl there lists it."""
    options = [f"Port={xenlab.port}", f"IdentityFile={xenlab.key_path}", "StrictHostKeyChecking=no",
               "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
    done = subprocess.run([sys.executable, "-m", "xentui", "--host", "root@127.0.0.1",
                           *[word for option in options for word in ("--ssh-option", option)],
                           "-b", "-i", "2", "-d", "1", "--format", "json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert {d["name"]: d["id"] for d in last["domains"]} == {name: e.domid for name, e in xl_list(xenlab).items()}


@pytest.mark.asyncio
async def test_a_console_over_ssh_answers_and_closing_lets_the_connection_go(xenlab):
    host = lab_host(xenlab)
    backend = XlBackend(host=host, delay=1.0)
    try:
        await backend.sample()
        channel = await backend.open_console("guest1")
        seen = b""
        try:
            await asyncio.sleep(0.5)
            await channel.write(b"\x15echo over-$((6*7))-ssh\r")
            deadline = time.monotonic() + 30
            while b"over-42-ssh" not in seen and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    seen += await asyncio.wait_for(channel.read(), 1.0)
        finally:
            await channel.close()
        assert b"over-42-ssh" in seen, seen[-400:]
        control = host._control_dir
        assert any(control.iterdir())  # the ControlMaster's socket
    finally:
        await backend.close()
    assert not control.exists()


@pytest.mark.asyncio
async def test_save_and_restore_over_ssh_are_refused_with_the_reason_until_paths_are_checked_there(xenlab, tmp_path):
    backend = XlBackend(host=lab_host(xenlab), delay=1.0)
    try:
        await backend.sample()
        assert "not yet over ssh" in (backend.capabilities.why_not(Action.SAVE) or "")
        with pytest.raises(Unsupported, match=r"save: not yet over ssh: run xentui on root@127\.0\.0\.1"):
            await backend.save("guest2", tmp_path / "guest2.save")
        with pytest.raises(Unsupported, match="restore: not yet over ssh"):
            await backend.restore(tmp_path / "guest2.save")
        assert "guest2" in xl_list(xenlab)  # nothing happened to it
    finally:
        await backend.close()
