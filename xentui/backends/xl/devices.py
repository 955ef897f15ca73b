"""The xl backend's devices and guest starting: a running guest's disks (``xl block-list``, ``block-attach``,
``block-detach``) and NICs (``xl network-list``, ``network-attach``, ``network-detach``), the host's bridges, the
host's guest configs (/etc/xen) and ``xl create``.

Everything runs on dom0 through `self.host` (this machine, or a dom0 over ssh), as argument lists. Before anything
changes, the checks every backend shares (`xentui.backends.devices`, `xentui.validate`) run against what dom0 says
now, because xl itself checks late or not at all: ``network-attach`` to a bridge that does not exist fails in the
hotplug script and leaves the half-made vif plugged into the guest; it takes a MAC another NIC has; a disk path
that does not exist fails after the backend was set up; two guests writing one file are refused by the block
script only for a device, with a terse message. xl's own refusals come back with its words, never a traceback.
"""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import Callable
from dataclasses import replace

from xentui.backends.base import BackendError, InvalidArgument
from xentui.backends.devices import (
    AttachedDisk,
    AttachedNic,
    DiskSpec,
    GuestConfig,
    check_disk_attach,
    check_nic_attach,
    find_disk,
    find_nic,
)
from xentui.backends.host import HostAccess
from xentui.backends.xl_device_parsers import (
    BRIDGE_DUMP,
    CONFIG_DUMP,
    XlDomainDevices,
    attached_disks,
    guest_config_from_file,
    parse_bridge_dump,
    parse_config_dump,
    parse_xl_block_list,
    parse_xl_devices,
    parse_xl_network_list,
)
from xentui.backends.xl_parsers import parse_xl_list
from xentui.backends.xl_tool import error_summary
from xentui.textsafe import printable
from xentui.validate import check_bridge_name, check_host_path, check_mac, check_vdev

_ATTACH_LIMIT = 120.0  # the hotplug scripts are shell; under emulation an attach took 7 to 10 s
_DETACH_LIMIT = 120.0  # xl waits for the guest to let go of the device (libxl gives it 10 s, then forces)
_CREATE_LIMIT = 300.0  # building the domain and running every disk's and vif's hotplug script

_CONFIG_HEAD = 256 * 1024 + 1  # a config bigger than this is not one (`guest_config_from_file` says so)
_DOMAIN_PREFIX = re.compile(r"^Domain \d+:")
_CLEANUP = ("Non-existant domain", "Unable to destroy guest", "Destruction of domain failed")
_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFCHR: "a character device", stat.S_IFIFO: "a pipe",
          stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link"}


def _reason(output: str) -> str:
    """xl's words, without libxl's "Domain N:" prefixes and the clean-up it reports after a refused create (it
    destroys the half-made domain and says so in three more lines)."""
    lines = [_DOMAIN_PREFIX.sub("", line) for line in error_summary(output).split("; ") if line]
    return "; ".join(line for line in lines if not line.startswith(_CLEANUP))


class DevicesMixin:
    """Part of `XlBackend`: a running guest's disks and NICs, and starting guests from their configs. Every action
    the base class refuses by default is done here, so `capabilities` lists none of them as unsupported."""

    xl: str
    host: HostAccess
    _config_stale: bool
    _domids_by_name: dict[str, int]
    _xl: Callable[..., object]
    _known: Callable[..., object]
    sample: Callable[[], object]

    async def _xl_text(self, *args: str, what: str, limit: float = 60.0) -> str:
        return await self._xl(*args, what=what, limit=limit)  # type: ignore[misc]

    async def _change(self, *args: str, what: str, limit: float, refused: type[BackendError] = BackendError) -> str:
        """Run an xl command that changes the host; its failure raises ``refused`` with every meaningful line xl
        wrote (over ssh too: the host's own error keeps only the last, often "Failed to parse config")."""
        try:
            result = await self.host.run([self.xl, *args], what=what, limit=limit, check=False)
        finally:
            self._config_stale = True
            self._domids_by_name = {}
        if result.returncode != 0:
            said = _reason(result.stderr) or _reason(result.stdout) or f"exit status {result.returncode}"
            raise refused(f"{what}: xl refused: {said}", detail=result.stderr or result.stdout)
        return result.stdout

    async def _domid(self, domain: str, action: str, *, allow_dom0: bool = True,
                     need_active: bool = True) -> tuple[str, int]:
        known = await self._known(domain, action=action, allow_dom0=allow_dom0,  # type: ignore[misc]
                                  need_active=need_active)
        return known.domain.name, known.domain.id

    async def _devices(self, domid: int | None = None) -> list[XlDomainDevices]:
        args = ("list", "-l") if domid is None else ("list", "-l", str(domid))
        return parse_xl_devices(await self._xl_text(*args, what="xl list -l"))

    # --- disks ---------------------------------------------------------------------------

    async def disks(self, domain: str) -> list[AttachedDisk]:
        _name, domid = await self._domid(domain, "listing disks", need_active=False)
        return await self._disks_of(domid)

    async def _disks_of(self, domid: int) -> list[AttachedDisk]:
        """``xl block-list`` (what is plugged in) and ``xl list -l`` (path, mode, format), run side by side."""
        listed, devices = await asyncio.gather(
            self._xl_text("block-list", str(domid), what="xl block-list"), self._devices(domid))
        configured = next((each.disks for each in devices if each.domid == domid), [])
        return attached_disks(parse_xl_block_list(listed), configured)

    async def disk_attach(self, domain: str, spec: DiskSpec) -> None:
        path = check_host_path(spec.path)
        vdev = check_vdev(spec.vdev)
        if vdev.startswith("vd"):  # xl: "Invalid or unsupported virtual disk identifier vdb"
            raise InvalidArgument(f"{vdev} is virtio's naming, which Xen does not have: use xvd{vdev[2:]} (or "
                                  f"sd{vdev[2:]}, hd{vdev[2:]} for an HVM guest's emulated disk)")
        name, domid = await self._domid(domain, "attaching a disk", allow_dom0=False)
        everyone, found, listed = await asyncio.gather(  # one round trip's time over ssh: three side by side
            self._devices(), self.host.stat([path], follow_links=True),
            self._xl_text("block-list", str(domid), what="xl block-list"))
        what = found[path]
        if isinstance(what, FileNotFoundError):
            raise InvalidArgument(f"{path} does not exist on {self.host.name}: give the path of a disk image or "
                                  "a block device (an LV: /dev/VG/LV)")
        if isinstance(what, OSError):
            raise InvalidArgument(f"{path} cannot be looked at on {self.host.name}: {what.strerror or what}")
        if what.kind not in (stat.S_IFREG, stat.S_IFBLK):
            raise InvalidArgument(f"{path} is {_KINDS.get(what.kind, 'not a file')}: a disk is an image file or a "
                                  "block device")
        own = attached_disks(parse_xl_block_list(listed), next((e.disks for e in everyone if e.domid == domid), []))
        # compared where they lead: a link to another guest's disk, or /dev/vg0/lv beside /dev/mapper/vg0-lv, is
        # that disk
        real = await self._real_paths([path, *(d.path for e in everyone for d in e.disks), *(d.path for d in own)])
        own = [replace(d, path=real.get(d.path, d.path)) for d in own]
        others = {each.name: [replace(d, path=real.get(d.path, d.path)) for d in each.disks]
                  for each in everyone if each.domid != domid}
        checked = check_disk_attach(name, DiskSpec(real.get(path, path), vdev, spec.readonly, spec.format), own,
                                    others)
        spec = replace(checked, path=path)  # xl gets the path as typed
        # one component a word; target last, in a word of its own: xl takes the rest of it as the path, commas and
        # all, and the path went through no shell
        await self._change("block-attach", str(domid), f"format={spec.format}", f"vdev={spec.vdev}",
                           f"access={'ro' if spec.readonly else 'rw'}", f"target={spec.path}",
                           what=f"block-attach {name} {spec.vdev}", limit=_ATTACH_LIMIT)

    async def _real_paths(self, paths: list[str]) -> dict[str, str]:
        """Where each path leads on the host (``realpath -m``: links followed, missing parts kept), in one call;
        {} when the host cannot say (the paths are then compared as written)."""
        wanted = sorted({p for p in paths if p.startswith("/")})
        if not wanted:
            return {}
        try:
            result = await self.host.run(["realpath", "-z", "-m", "--", *wanted], what="realpath", limit=30.0,
                                         check=False)
        except BackendError:
            return {}
        answers = result.stdout.split("\0")
        if result.returncode != 0 or len(answers) != len(wanted) + 1:
            return {}
        return dict(zip(wanted, answers, strict=False))

    async def disk_detach(self, domain: str, vdev: str) -> None:
        name, domid = await self._domid(domain, "detaching a disk", allow_dom0=False)
        disk = find_disk(name, vdev.strip(), await self._disks_of(domid))
        await self._change("block-detach", str(domid), disk.vdev,
                           what=f"block-detach {name} {disk.vdev}", limit=_DETACH_LIMIT)

    # --- NICs ----------------------------------------------------------------------------

    async def nics(self, domain: str) -> list[AttachedNic]:
        _name, domid = await self._domid(domain, "listing NICs", need_active=False)
        return await self._nics_of(domid)

    async def _nics_of(self, domid: int) -> list[AttachedNic]:
        """``xl network-list`` (what is plugged in), and the bridge each of dom0's vifs is a port of (sysfs):
        one xl call and one batched read of links."""
        rows = parse_xl_network_list(await self._xl_text("network-list", str(domid), what="xl network-list"))
        links = {row.devid: f"/sys/class/net/vif{domid}.{row.devid}/master" for row in rows
                 if row.backend_domid == 0}
        masters = await self.host.read_links(links.values()) if links else {}
        nics = []
        for row in rows:
            master = masters.get(links.get(row.devid, ""))
            nics.append(AttachedNic(devid=row.devid, mac=row.mac, bridge=master.rsplit("/", 1)[-1] if master else None,
                                    backend=str(row.backend_domid),
                                    ifname=f"vif{domid}.{row.devid}" if row.backend_domid == 0 else ""))
        return nics

    async def bridges(self) -> list[str]:
        """The host's bridges: the interfaces with a ``bridge`` directory in sysfs, in one call there."""
        result = await self.host.run(["sh", "-c", BRIDGE_DUMP], what="listing bridges", limit=30.0)
        return parse_bridge_dump(result.stdout)

    async def nic_attach(self, domain: str, bridge: str, mac: str | None = None) -> None:
        bridge = check_bridge_name(bridge)
        mac = check_mac(mac) if mac is not None else None
        name, domid = await self._domid(domain, "attaching a NIC", allow_dom0=False)
        bridges, everyone, own = await asyncio.gather(self.bridges(), self._devices(), self._nics_of(domid))
        in_use = {nic.mac: each.name for each in everyone for nic in each.nics if nic.mac}
        in_use.update({nic.mac: name for nic in own})
        check_nic_attach(name, bridge, mac, bridges, in_use)
        args = [f"bridge={bridge}"] + ([f"mac={mac}"] if mac else [])
        await self._change("network-attach", str(domid), *args, what=f"network-attach {name} {bridge}",
                           limit=_ATTACH_LIMIT)

    async def nic_detach(self, domain: str, nic: str) -> None:
        name, domid = await self._domid(domain, "detaching a NIC", allow_dom0=False)
        found = find_nic(name, nic.strip(), await self._nics_of(domid))
        await self._change("network-detach", str(domid), str(found.devid),
                           what=f"network-detach {name} {found.devid} ({found.mac})", limit=_DETACH_LIMIT)

    # --- guest configs and create --------------------------------------------------------

    async def guest_configs(self) -> list[GuestConfig]:
        """/etc/xen/*.cfg and what /etc/xen/auto/ starts at boot, read in one call there, parsed here (never
        run), beside ``xl list`` for the names that run now."""
        dump, listed = await asyncio.gather(
            self.host.run(["sh", "-c", CONFIG_DUMP], what="reading /etc/xen", limit=30.0),
            self._xl_text("list", what="xl list"))
        running = {entry.name for entry in parse_xl_list(listed)}
        files = parse_config_dump(dump.stdout.encode("utf-8", "surrogateescape"))
        return [guest_config_from_file(path, data, running) for path, data in files]

    async def create(self, ref: str, *, paused: bool = False) -> str:
        path = check_host_path(ref, what="a guest config")
        found = (await self.host.stat([path], follow_links=True))[path]
        if isinstance(found, FileNotFoundError):
            raise InvalidArgument(f"create: {path} does not exist on {self.host.name}")
        if isinstance(found, OSError):
            raise InvalidArgument(f"create: {path} cannot be read on {self.host.name}: {found.strerror or found}")
        if found.kind != stat.S_IFREG:
            raise InvalidArgument(f"create: {path} is {_KINDS.get(found.kind, 'not a file')}, not a config file")
        before = {entry.domid for entry in parse_xl_list(await self._xl_text("list", what="xl list"))}
        try:  # the name it asks for, to tell its domain from one another operator started meanwhile
            named = guest_config_from_file(path, await self.host.read_head(path, _CONFIG_HEAD)).name
        except OSError:
            named = None  # xl reads it itself, and says why it cannot
        flags = ["-p"] if paused else []
        await self._change("create", *flags, path, what=f"create {printable(path)}", limit=_CREATE_LIMIT,
                           refused=InvalidArgument)
        after = parse_xl_list(await self._xl_text("list", what="xl list"))
        new = [entry.name for entry in after if entry.domid not in before]
        await self.sample()
        if not new:
            raise BackendError(f"create {printable(path)}: xl said it worked but no new domain is there (it may "
                               "have stopped at once: see /var/log/xen/)")
        return named if named in new else new[0]

