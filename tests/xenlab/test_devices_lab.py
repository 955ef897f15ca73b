"""A running guest's disks and NICs, and starting a guest from its config, with the xl backend on the real Xen lab.

xentui runs on this machine and reaches the lab's dom0 over ssh (`SshHost`, as a dom0 of a pool), so every xl
call, file check, sysfs read and config read goes through the host seam; one test runs the same calls in dom0
with `LocalHost`. What the backend did is checked with xl and xentop in dom0 and inside the guest, on its console.

A config written into dom0's /etc/xen starts the test's own PV guest (``xdev-XXXX``) through
`XlBackend.create`; the disk and NIC tests hot-plug into it; it is destroyed at the end. guest1 and guest2 are only
read (the refusals) and stay as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest

from xentui.backends.devices import DiskSpec
from xentui.backends.ssh import SshHost
from xentui.backends.xentop_parser import parse_xentop_log
from xentui.backends.xl import XlBackend
from xentui.backends.xl_device_parsers import parse_xl_block_list, parse_xl_network_list
from xentui.errors import BackendUnavailable, InvalidArgument
from xentui.model import DomainFlag

from .dom0_calls import PY, wait_for, xl_list

pytestmark = pytest.mark.xenlab

GUEST_IMAGE = "/var/lib/xentui-lab/guest"
DISK = "/var/lib/xentui-lab/xentui-dev-disk.img"
LINK = "/var/lib/xentui-lab/xentui-dev-link.img"  # a symbolic link to guest1's disk


def lab_host(xenlab) -> SshHost:
    return SshHost("root@127.0.0.1", options=["-p", str(xenlab.port), "-i", str(xenlab.key_path),
                                               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                               "-o", "LogLevel=ERROR"])


def run(xenlab, call):
    """``call(backend)`` on a fresh xl backend over ssh, to the end (its errors raised here)."""
    async def main():
        backend = XlBackend(host=lab_host(xenlab), delay=1.0)
        try:
            for attempt in range(3):  # xentop's first iteration over ssh can take more than its 6 s while a
                try:                  # guest boots under emulation
                    await backend.sample()
                    break
                except BackendUnavailable:
                    if attempt == 2:
                        raise
            return await call(backend)
        finally:
            await backend.close()

    return asyncio.run(main())


async def console(backend: XlBackend, domain: str, command: str, within: float = 60.0) -> str:
    """What ``command`` printed on the guest's console (the xl backend's own console channel): typed after a
    line kill, between two markers the shell computes (the typed line's echo does not hold them)."""
    channel = await backend.open_console(domain)
    seen = b""
    try:
        await asyncio.sleep(0.5)
        await channel.write(f"\x15echo BEGIN-$((6*7)); {command}; echo END-$((7*7))\r".encode())
        deadline = time.monotonic() + within
        while b"END-49" not in seen and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                seen += await asyncio.wait_for(channel.read(), 1.0)
    finally:
        await channel.close()
    text = seen.decode("utf-8", "replace").replace("\r", "")
    assert "BEGIN-42" in text and "END-49" in text, text[-600:]
    return text.split("BEGIN-42", 1)[1].split("END-49", 1)[0]


def in_guest(xenlab, domain: str, command: str) -> str:
    async def call(backend):
        return await console(backend, domain, command)
    return run(xenlab, call)


def block_list(xenlab, domain: str) -> list:
    return parse_xl_block_list(xenlab.ssh(["xl", "block-list", domain]).stdout)


def network_list(xenlab, domain: str) -> list:
    return parse_xl_network_list(xenlab.ssh(["xl", "network-list", domain]).stdout)


def write_config(xenlab, name: str, *lines: str) -> str:
    """A PV guest's config in dom0's /etc/xen (the lab's guest image, 128 MiB); its path."""
    path = f"/etc/xen/{name}.cfg"
    config = (f'# written by tests/xenlab/test_devices_lab.py\nname = "{name}"\ntype = "pv"\n'
              f'kernel = "{GUEST_IMAGE}/vmlinuz"\nramdisk = "{GUEST_IMAGE}/initrd.gz"\n'
              f'extra = "console=hvc0 xentui_hostname={name}"\nmemory = 128\nmaxmem = 160\nvcpus = 1\n'
              + "".join(line + "\n" for line in lines) + 'on_crash = "preserve"\n')
    xenlab.ssh(["sh", "-c", 'cat > "$1"', "sh", path], input=config)
    return path


@pytest.fixture(scope="module")
def guest(xenlab) -> Iterator[dict]:
    """The test's own PV guest, started from a config file in dom0's /etc/xen by `XlBackend.create`."""
    name = f"xdev-{uuid.uuid4().hex[:4]}"  # xentop prints 10 characters of a name
    path = write_config(xenlab, name, "vif = [ 'bridge=xenbr0' ]")
    xenlab.ssh(["truncate", "-s", "32M", DISK])
    try:
        async def call(backend):
            configs = {c.ref: c for c in await backend.guest_configs()}
            started = time.monotonic()
            created = await backend.create(path)
            return configs, created, time.monotonic() - started

        configs, created, took = run(xenlab, call)
        yield {"name": name, "path": path, "configs": configs, "created": created, "took": took}
    finally:
        xenlab.ssh(["xl", "destroy", name], check=False, timeout=120)
        xenlab.ssh(["rm", "-f", path, DISK], check=False)


def ready(xenlab, name: str) -> None:
    wait_for(f"{name} ready", lambda: xenlab.ssh(
        ["grep", "-q", "XENTUI-GUEST-READY", f"/var/log/xen/console/guest-{name}.log"], check=False,
    ).returncode == 0, timeout=180, every=2)


# --- create ---------------------------------------------------------------------------------------

def test_create_from_a_config_in_etc_xen(xenlab, guest):
    name = guest["name"]
    picked = guest["configs"][guest["path"]]
    print(f"picker: {picked}")
    assert (picked.name, picked.type, picked.memory_kib, picked.maxmem_kib, picked.vcpus) == (
        name, "pv", 128 << 10, 160 << 10, 1)
    assert picked.nics == ("bridge=xenbr0",) and not picked.running and picked.problem is None
    assert guest["configs"]["/etc/xen/guest1.cfg"].running  # guest1 runs: xl would refuse it
    assert guest["created"] == name
    print(f"xl create through the backend: {guest['took']:.1f} s")
    entry = xl_list(xenlab)[name]
    assert not entry.flags & (DomainFlag.PAUSED | DomainFlag.SHUTDOWN | DomainFlag.CRASHED | DomainFlag.DYING)
    ready(xenlab, name)
    assert in_guest(xenlab, name, "hostname").strip() == name  # its console answers

    async def listed(backend):
        return {c.ref: c for c in await backend.guest_configs()}[guest["path"]]
    assert run(xenlab, listed).running  # the picker now says it runs


def test_create_paused(xenlab, guest):
    name = f"xdvp-{uuid.uuid4().hex[:4]}"
    path = write_config(xenlab, name, "vif = []")
    try:
        assert run(xenlab, lambda backend: backend.create(path, paused=True)) == name
        assert DomainFlag.PAUSED in xl_list(xenlab)[name].flags
    finally:
        xenlab.ssh(["xl", "destroy", name], check=False, timeout=120)
        xenlab.ssh(["rm", "-f", path], check=False)


async def _until(pilot, what: str, check, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {within:g} s"
        await pilot.pause(0.2)


@pytest.mark.asyncio
async def test_the_screen_creates_a_guest_from_the_picker_and_its_console_answers(xenlab):
    """The app on this machine (xl over ssh), as an operator drives it: Ctrl+N, the picker lists dom0's configs
    with what each says; Down to the test's config, "open console" ticked, Start. The guest runs (``xl list``),
    the table shows it, its console opens by itself and a command typed into it answers."""
    from xentui.ui.app import StartOptions, XentuiApp
    from xentui.ui.console_pane import ConsolePane

    name = f"xscr-{uuid.uuid4().hex[:4]}"
    path = write_config(xenlab, name, "vif = []")
    backend = XlBackend(host=lab_host(xenlab), delay=2.0)
    app = XentuiApp(backend, StartOptions(delay=2.0, theme="xentui-dark"))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await _until(pilot, "the first sample", lambda: app.sample is not None, 180)
            await pilot.press("ctrl+n")
            screen = app.screen
            assert type(screen).__name__ == "CreateScreen"
            await _until(pilot, "the configs listed", lambda: screen.items is not None, 60)
            refs = [config.ref for config in screen.items]
            print(f"\nthe picker: {refs}")
            assert path in refs and "/etc/xen/guest1.cfg" in refs
            for _ in range(len(refs)):
                if screen.highlighted() is not None and screen.highlighted().ref == path:
                    break
                await pilot.press("down")
            assert screen.highlighted().ref == path
            about = str(screen.query_one("#about").render())
            print(f"what it says of {name}: {about}")
            assert path in about and "disks" in about
            await pilot.click("#console")
            assert screen.query_one("#console").value
            await pilot.click("#ok")
            await _until(pilot, "the create done", lambda: any(entry[2] == "create" for entry in app.runner.log), 120)
            entry = next(entry for entry in app.runner.log if entry[2] == "create")
            print(f"the action log: {entry}")
            assert entry[3] == "ok", entry
            assert name in xl_list(xenlab)
            await _until(pilot, f"{name} in the table", lambda: any(d.name == name for d in app.sample.domains), 60)
            await _until(pilot, f"{name}'s console open", lambda: any(
                pane.domain_name == name for pane in app.query(ConsolePane)), 30)
            view = next(pane.view for pane in app.query(ConsolePane) if pane.domain_name == name)
            await asyncio.to_thread(ready, xenlab, name)

            def answered() -> bool:
                return any(line.strip() == "42" for line in view.core.screen_text())

            for _attempt in range(3):  # keys typed while the guest's shell starts may be lost: type again
                for char in "echo $((6*7))":
                    await pilot.press("space" if char == " " else char)
                await pilot.press("enter")
                with contextlib.suppress(AssertionError):
                    await _until(pilot, "the console's answer", answered, 20)
                    break
            print("the console: " + " | ".join(line.rstrip() for line in view.core.screen_text() if line.strip()))
            assert answered()
    finally:
        await backend.close()
        xenlab.ssh(["xl", "destroy", name], check=False, timeout=120)
        xenlab.ssh(["rm", "-f", path], check=False)


# --- disks ----------------------------------------------------------------------------------------

def test_attach_a_file_disk_see_it_in_the_guest_then_detach_it(xenlab, guest):
    name = guest["name"]
    ready(xenlab, name)
    assert "xvdb" not in in_guest(xenlab, name, "cat /proc/partitions")

    async def attach(backend):
        free = await backend.disks(name)
        started = time.monotonic()
        await backend.disk_attach(name, DiskSpec(DISK, "xvdb"))
        took = time.monotonic() - started
        return free, await backend.disks(name), took

    before, after, took = run(xenlab, attach)
    print(f"attached in {took:.1f} s; disks before {before}, after {after}")
    assert before == []
    [disk] = after
    assert (disk.vdev, disk.path, disk.backend, disk.readonly, disk.format) == ("xvdb", DISK, "phy", False, "raw")
    assert [row.devid for row in block_list(xenlab, name)] == [51728]
    partitions = wait_for("xvdb in the guest", lambda: (p := in_guest(xenlab, name, "cat /proc/partitions"))
                          and re.search(r"\sxvdb\s*$", p, re.M) and p, timeout=60, every=3)
    print(f"/proc/partitions in the guest:{partitions}")
    assert re.search(r"^\s*202\s+16\s+32768\s+xvdb\s*$", partitions, re.M)  # 32 MiB, in 1 KiB blocks

    # the guest writes it, dom0 reads it back: the file is the guest's disk
    in_guest(xenlab, name, "echo xentui-was-here > /dev/xvdb; sync")
    assert xenlab.ssh(["head", "-c", "16", DISK]).stdout == "xentui-was-here\n"

    async def detach(backend):
        await backend.disk_detach(name, "xvdb")
        return await backend.disks(name)

    assert run(xenlab, detach) == []
    assert block_list(xenlab, name) == []
    assert not re.search(r"\sxvdb\s*$", in_guest(xenlab, name, "cat /proc/partitions"), re.M)


def test_a_disk_shared_read_only_and_a_writer_refused(xenlab, guest):
    """Two guests may read one disk. xl itself would also attach it read-write to a third (a file gets a loop
    device per guest, so the block script's sharing check never sees it: seen here on 4.17); the backend refuses."""
    name, shared = guest["name"], "/var/lib/xentui-lab/xentui-dev-shared.img"
    ready(xenlab, name)
    xenlab.ssh(["truncate", "-s", "8M", shared])
    try:
        async def share(backend):
            await backend.disk_attach("guest2", DiskSpec(shared, "xvdc", readonly=True))
            await backend.disk_attach(name, DiskSpec(shared, "xvdc", readonly=True))
            return await backend.disks(name)

        [disk] = run(xenlab, share)
        assert (disk.vdev, disk.path, disk.readonly) == ("xvdc", shared, True)
        assert in_guest(xenlab, name, "cat /sys/block/xvdc/ro").split() == ["1"]  # read-only in the guest
        before = block_list(xenlab, "guest1")

        async def write(backend):
            await backend.disk_attach("guest1", DiskSpec(shared, "xvdc"))

        with pytest.raises(InvalidArgument, match=r"attached to guest2 \(xvdc\), read-only: attach it read-only "
                                                  "here too"):
            run(xenlab, write)
        assert block_list(xenlab, "guest1") == before
    finally:
        async def undo(backend):
            for each in ("guest2", name):
                with contextlib.suppress(InvalidArgument):
                    await backend.disk_detach(each, "xvdc")
        run(xenlab, undo)
        assert block_list(xenlab, "guest2") == []
        xenlab.ssh(["rm", "-f", shared], check=False)


# --- NICs -----------------------------------------------------------------------------------------

def xentop_nets(xenlab, name: str) -> int:
    out = xenlab.ssh(["xentop", "-b", "-i", "1"]).stdout
    return {row.name: row.nets for row in parse_xentop_log(out).iterations[-1]}[name]


def test_attach_a_vif_see_it_in_xentop_and_the_guest_then_detach_it(xenlab, guest):
    name = guest["name"]
    mac = "00:16:3e:5a:77:01"
    ready(xenlab, name)
    assert xentop_nets(xenlab, name) == 1

    async def attach(backend):
        assert "xenbr0" in await backend.bridges()
        before = await backend.nics(name)
        await backend.nic_attach(name, "xenbr0", mac.upper())
        after = await backend.nics(name)
        # the refresh after an action reads `xl list -l` again; over ssh the figures come from xentop's stream,
        # whose next iteration may be a second away
        for _ in range(10):
            vifs = next(d for d in (await backend.sample()).domains if d.name == name).vifs
            if len(vifs) == 2:
                break
            await asyncio.sleep(1.0)
        return before, after, vifs

    before, after, vifs = run(xenlab, attach)
    print(f"NICs before {before}, after {after}; the sample's vifs: {vifs}")
    assert len(before) == 1 and len(after) == 2
    new = after[1]
    domid = xl_list(xenlab)[name].domid
    assert (new.devid, new.mac, new.bridge, new.ifname) == (1, mac, "xenbr0", f"vif{domid}.1")
    assert [v.mac for v in vifs][1] == mac and len(vifs) == 2
    assert [row.mac for row in network_list(xenlab, name)] == [before[0].mac, mac]
    assert xentop_nets(xenlab, name) == 2  # xentop's NETS
    seen = in_guest(xenlab, name, "ls /sys/class/net; cat /sys/class/net/eth1/address")
    print(f"in the guest: {seen!r}")
    assert "eth1" in seen.split() and mac in seen

    async def detach(backend):
        await backend.nic_detach(name, mac)  # by MAC, as xl network-detach takes it
        return await backend.nics(name)

    assert [n.devid for n in run(xenlab, detach)] == [0]
    assert len(network_list(xenlab, name)) == 1 and xentop_nets(xenlab, name) == 1
    assert "eth1" not in in_guest(xenlab, name, "ls /sys/class/net").split()


# --- refusals: the real host, nothing changed -----------------------------------------------------

def host_state(xenlab, names) -> dict:
    return {"list": {n: (e.domid, e.mem_mib) for n, e in xl_list(xenlab).items()},
            "disks": {n: [(r.devid, r.state) for r in block_list(xenlab, n)] for n in names},
            "nics": {n: [(r.devid, r.mac) for r in network_list(xenlab, n)] for n in names},
            "vifs": sorted(xenlab.ssh(["ls", "/sys/class/net"]).stdout.split()),
            "loops": xenlab.ssh(["losetup", "-a"]).stdout}


REFUSALS = [
    ("missing path", lambda b, g: b.disk_attach(g, DiskSpec("/var/lib/xentui-lab/no-such.img", "xvdc")),
     "does not exist"),
    ("a directory", lambda b, g: b.disk_attach(g, DiskSpec("/var/lib/xentui-lab", "xvdc")), "is a directory"),
    ("vdev taken", lambda b, g: b.disk_attach("guest1", DiskSpec(DISK, "xvda")), "xvda is taken on guest1"),
    ("virtio's vdev naming", lambda b, g: b.disk_attach(g, DiskSpec(DISK, "vdb")), "use xvdb"),
    ("a partition for a vdev", lambda b, g: b.disk_attach(g, DiskSpec(DISK, "xvdc1")), "is not a disk name"),
    ("held read-write by another guest",
     lambda b, g: b.disk_attach(g, DiskSpec("/var/lib/xentui-lab/guest1-disk.img", "xvdc", readonly=True)),
     "attached read-write to guest1"),
    ("a link to a disk another guest writes", lambda b, g: b.disk_attach(g, DiskSpec(LINK, "xvdc")),
     "guest1-disk.img is attached read-write to guest1"),
    ("a relative path", lambda b, g: b.disk_attach(g, DiskSpec("disk.img", "xvdc")), "not an absolute path"),
    ("no such bridge", lambda b, g: b.nic_attach(g, "xenbr9"), r"no bridge 'xenbr9' on this host \(its bridges: "
                                                                 "xenbr0\\)"),
    ("a bridge name a shell would split", lambda b, g: b.nic_attach(g, "br0;reboot"), "is not a bridge name"),
    ("malformed MAC", lambda b, g: b.nic_attach(g, "xenbr0", "00:16:3e:zz:00:01"), "is not a MAC address"),
    ("multicast MAC", lambda b, g: b.nic_attach(g, "xenbr0", "01:16:3e:00:00:01"), "multicast"),
    ("MAC of another guest", lambda b, g: b.nic_attach(g, "xenbr0", "00:16:3e:58:00:11"),
     "already the MAC of a NIC of guest1"),
    ("detach a disk it does not have", lambda b, g: b.disk_detach(g, "xvdq"), "has no disk 'xvdq'"),
    ("detach a NIC it does not have", lambda b, g: b.nic_detach(g, "7"), "has no NIC '7'"),
    ("a config with a syntax error", lambda b, g: b.create("/etc/xen/xentui-dev-bad.cfg"),
     r"xl refused: /etc/xen/xentui-dev-bad.cfg:3: config parsing error near `\+'"),
    ("a config for a running name", lambda b, g: b.create("/etc/xen/guest2.cfg"),
     'Domain with name "guest2" already exists'),
    ("a config path that does not exist", lambda b, g: b.create("/etc/xen/nothing-here.cfg"), "does not exist"),
    ("a config path that is a directory", lambda b, g: b.create("/etc/xen"), "is a directory, not a config file"),
]


def test_refusals_on_the_real_host_change_nothing(xenlab, guest):
    name = guest["name"]
    ready(xenlab, name)
    xenlab.ssh(["sh", "-c", 'printf \'name = "bad"\\nmemory = 128\\nvcpus = 1 +\\n\' > /etc/xen/xentui-dev-bad.cfg'])
    xenlab.ssh(["ln", "-sfn", "guest1-disk.img", LINK])
    try:
        before = host_state(xenlab, [name, "guest1", "guest2"])

        async def every(backend):
            said = {}
            for what, call, _ in REFUSALS:
                try:
                    await call(backend, name)
                except InvalidArgument as error:
                    said[what] = str(error)
                else:
                    said[what] = None
            configs = {c.ref: c for c in await backend.guest_configs()}
            return said, configs

        said, configs = run(xenlab, every)
        for what, _, expected in REFUSALS:
            print(f"{what}: {said[what]}")
            assert said[what] is not None and re.search(expected, said[what]), (what, said[what])
        bad = configs["/etc/xen/xentui-dev-bad.cfg"]
        print(f"the picker's bad config: {bad.problem}")
        assert bad.name is None and bad.problem and "line 3" in bad.problem
        assert host_state(xenlab, [name, "guest1", "guest2"]) == before
    finally:
        xenlab.ssh(["rm", "-f", "/etc/xen/xentui-dev-bad.cfg", LINK], check=False)


# --- the same calls in dom0, with LocalHost ----------------------------------------------------------

IN_DOM0 = """
import asyncio, json, sys
from xentui.backends.devices import DiskSpec
from xentui.backends.xl import XlBackend
from xentui.errors import BackendError
async def main():
    backend = XlBackend()
    try:
        await backend.sample()
        out = {"disks": [d.vdev + " " + d.path for d in await backend.disks("guest1")],
               "nics": [f"{n.devid} {n.mac} {n.bridge}" for n in await backend.nics("guest1")],
               "bridges": await backend.bridges(),
               "configs": {c.ref: [c.name, c.type, c.running] for c in await backend.guest_configs()}}
        try:
            await backend.disk_attach("guest2", DiskSpec("/nope.img", "xvdb"))
        except BackendError as error:
            out["refused"] = str(error)
        print(json.dumps(out))
    finally:
        await backend.close()
asyncio.run(main())
"""


def test_the_same_calls_in_dom0_with_the_local_host(xenlab):
    out = json.loads(xenlab.ssh([PY, "-c", IN_DOM0]).stdout.strip().splitlines()[-1])
    print(out)
    assert out["disks"] == ["xvda /var/lib/xentui-lab/guest1-disk.img"]
    assert out["nics"] == ["0 00:16:3e:58:00:11 xenbr0"]
    assert out["bridges"] == ["xenbr0"]
    assert out["configs"]["/etc/xen/guest1.cfg"] == ["guest1", "pv", True]
    assert out["configs"]["/etc/xen/guest3.cfg"][:2] == ["guest3", "pvh"]
    assert out["refused"] == "/nope.img does not exist on this host: give the path of a disk image or a block " \
                             "device (an LV: /dev/VG/LV)"
