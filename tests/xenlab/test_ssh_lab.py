"""The xl backend on another machine: this one reaches the lab's dom0 with the real ssh (`SshHost`), as an operator
reaches a dom0 of the pool. Every command, the xentop stream, dom0's interface counters and the vifs' bridges go
over one ControlMaster connection; what it shows is checked against xl in dom0. Save and restore too: the image's
directory, path checks, listing and header are dom0's, read through the same connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from xentui.backends.base import Action, InvalidArgument
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
async def test_a_refresh_over_ssh_costs_one_round_trip(xenlab, monkeypatch):
    """Once the xentop stream runs there, a refresh starts one ssh (dom0's interface counters): `xl list -l` is
    read again only when the domains change, the vifs' bridges only when the vifs change, `xl info` every 30 s.
    Every round trip is a process this side starts (the ControlMaster carries it), so they are counted there."""
    backend = XlBackend(host=lab_host(xenlab), delay=1.0)
    started: list[tuple[str, ...]] = []
    real = asyncio.create_subprocess_exec

    async def counted(*argv, **kwargs):
        started.append(tuple(map(str, argv)))
        return await real(*argv, **kwargs)

    try:
        for _ in range(3):  # the stream starts, xl list -l, xl info and the bridges are read
            await backend.sample()
            await asyncio.sleep(1.0)
        monkeypatch.setattr(asyncio, "create_subprocess_exec", counted)
        refreshes, seen = 10, set()
        for _ in range(refreshes):
            await asyncio.sleep(1.0)
            sample = await backend.sample()
            seen.add(backend._stream_sequence)
        monkeypatch.undo()
        remote = [argv[argv.index("--") + 2:] if "--" in argv else argv for argv in started]
        print(f"{refreshes} refreshes ({len(seen)} xentop iterations, {len(sample.domains)} domains): "
              f"{len(started)} ssh round trips: {sorted(set(map(' '.join, remote)))}")
        assert len(seen) >= refreshes - 2  # the figures moved on: these were real refreshes
        assert len(started) <= refreshes, remote
        assert not any("-l" in argv and "list" in argv for argv in remote), remote
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


@pytest.mark.asyncio
async def test_a_guest_that_rebooted_behind_xentuis_back_is_acted_on_under_its_new_domid(xenlab, scratch_guest):
    """xentop names domains and never numbers them. SysRq b from another shell reboots the guest: xl makes a new
    domain under the same name (a new domid, its CPU time from 0). The table follows it, and a pause from xentui
    reaches the new domain, not the old domid (xl's "unable to find domain info" in the pool lab, before)."""
    backend = XlBackend(host=lab_host(xenlab), delay=1.0)

    def shown_id(sample) -> int | None:
        return next((d.id for d in sample.domains if d.name == scratch_guest), None)

    def shown_running(sample) -> bool:  # xl builds the new domain paused, and unpauses it when it is ready
        return any(d.name == scratch_guest and d.state is not DomainState.PAUSED for d in sample.domains)

    try:
        old = xl_list(xenlab)[scratch_guest].domid
        for _ in range(3):
            assert shown_id(await backend.sample()) == old
            await asyncio.sleep(1.0)
        xenlab.ssh(["xl", "sysrq", scratch_guest, "b"])
        wait_for(f"{scratch_guest} back as a new domain", lambda: (
            (entry := xl_list(xenlab).get(scratch_guest)) is not None and entry.domid != old), timeout=120)
        new = xl_list(xenlab)[scratch_guest].domid
        ids = []
        for _ in range(30):
            await asyncio.sleep(1.0)
            sample = await backend.sample()
            ids.append(shown_id(sample))
            if ids[-1] == new and shown_running(sample):
                break
        print(f"{scratch_guest}: domid {old} before the reboot, {new} after; xentui showed {ids}")
        assert ids[-1] == new, ids
        await backend.pause(scratch_guest)
        wait_for(f"{scratch_guest} paused", lambda: DomainFlag.PAUSED in xl_list(xenlab)[scratch_guest].flags,
                 timeout=30)
        assert xl_list(xenlab)[scratch_guest].domid == new
        for _ in range(20):  # the xentop stream shows it at its next iteration
            if not shown_running(await backend.sample()):
                break
        await backend.unpause(scratch_guest)
        wait_for(f"{scratch_guest} running", lambda: DomainFlag.PAUSED not in xl_list(xenlab)[scratch_guest].flags,
                 timeout=30)
    finally:
        await backend.close()


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


@pytest.fixture
def scratch_guest(xenlab) -> Iterator[str]:
    """A throwaway PV guest (guest2's configuration, another name, no vif) with a shell on its console: saving
    stops it, and guest1 and guest2 stay as the other tests expect them."""
    name = f"ssh-scratch-{uuid.uuid4().hex[:6]}"
    xenlab.ssh(["xl", "create", "/etc/xen/guest2.cfg", f'name="{name}"', "vif=[]",
                f'extra="console=hvc0 xentui_hostname={name}"'], timeout=120)
    try:
        wait_for(f"{name} ready", lambda: xenlab.ssh(
            ["grep", "-q", "XENTUI-GUEST-READY", f"/var/log/xen/console/guest-{name}.log"], check=False,
        ).returncode == 0, timeout=120, every=2)
        yield name
    finally:
        xenlab.ssh(["xl", "destroy", name], check=False, timeout=120)


@pytest.mark.asyncio
async def test_save_and_restore_over_ssh(xenlab, scratch_guest):
    """xentui here, the image on dom0: its directory made, its path checked, the image written beside and renamed,
    listed, its header read and the guest restored, all through ssh; a directory name a shell would take apart."""
    saves = Path(f"/tmp/xentui-ssh-saves/{scratch_guest}; $(touch owned) 'q' \"d\" *")
    image = saves / f"{scratch_guest}.save"
    backend = XlBackend(host=lab_host(xenlab), delay=1.0)
    try:
        await backend.sample()
        assert backend.capabilities.supports(Action.SAVE) and backend.capabilities.supports(Action.RESTORE)
        await backend.make_save_dir(saves)
        assert xenlab.ssh(["test", "-d", str(saves)], check=False).returncode == 0
        assert await backend.check_save_target(image, overwrite=False) == (image, None)
        with pytest.raises(InvalidArgument, match="is a character device"):
            await backend.check_save_target(Path("/dev/null"), overwrite=True)
        before = xl_list(xenlab)[scratch_guest].domid

        started = time.monotonic()
        await backend.save(scratch_guest, image)
        saved_in = time.monotonic() - started
        assert scratch_guest not in xl_list(xenlab)
        listed = await backend.saved_images(saves)
        assert [entry.name for entry in listed] == [image.name] and listed[0].size > 16 << 20, listed
        assert listed[0].path == image and not await asyncio.to_thread(saves.exists)  # there, not here
        assert "xentui-partial" not in xenlab.ssh(["ls", "-a", str(saves)]).stdout
        with pytest.raises(InvalidArgument, match="already exists; confirm to overwrite it"):
            await backend.check_save_target(image, overwrite=False)
        assert (await backend.check_save_target(image, overwrite=True)).existing_bytes == listed[0].size

        started = time.monotonic()
        assert await backend.restore(image) == scratch_guest
        restored_in = time.monotonic() - started
        entry = xl_list(xenlab)[scratch_guest]
        assert entry.domid != before
        assert not entry.flags & (DomainFlag.PAUSED | DomainFlag.SHUTDOWN | DomainFlag.CRASHED | DomainFlag.DYING)
        shown = {d.name: d for d in (await backend.sample()).domains}
        assert shown[scratch_guest].id == entry.domid
        with pytest.raises(InvalidArgument, match="is already running here"):
            await backend.restore(image)
        channel = await backend.open_console(scratch_guest)  # running: its shell answers, through ssh too
        seen = b""
        try:
            await asyncio.sleep(0.5)
            await channel.write(b"\x15echo back-$((6*7))-again\r")
            deadline = time.monotonic() + 60
            while b"back-42-again" not in seen and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    seen += await asyncio.wait_for(channel.read(), 1.0)
        finally:
            await channel.close()
        assert b"back-42-again" in seen, seen[-400:]
        print(f"over ssh: saved in {saved_in:.1f} s, restored in {restored_in:.1f} s")
    finally:
        await backend.close()
        xenlab.ssh(["rm", "-rf", "--", "/tmp/xentui-ssh-saves"], check=False)
    assert xenlab.ssh("ls / /root /tmp | grep -c '^owned$' || true").stdout.strip() == "0"
