"""The xl backend's disks, NICs, guest configs and create: the parsers against what the Xen lab printed
(tests/fixtures/xenlab-xl-*), xl's config language (including bad and hostile files), and the backend's calls
through a recorded host: the argument lists xl gets, and the refusals that come before any of them."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from xentui.backends.base import Action
from xentui.backends.devices import AttachedDisk, DiskSpec
from xentui.backends.host import FileInfo, HostAccess, NetCounters
from xentui.backends.xl import XlBackend
from xentui.backends.xl_device_parsers import (
    ConfigSyntaxError,
    attached_disks,
    guest_config,
    guest_config_from_file,
    parse_bridge_dump,
    parse_config_dump,
    parse_xl_block_list,
    parse_xl_cfg,
    parse_xl_devices,
    parse_xl_network_list,
)
from xentui.backends.xl_parsers import ParseError
from xentui.backends.xl_tool import ToolResult
from xentui.errors import BackendError, InvalidArgument

FIXTURES = Path(__file__).parent / "fixtures"
XL = "/nowhere/xl"


def capture(name: str) -> str:
    return "".join(line for line in (FIXTURES / name).read_text().splitlines(keepends=True)
                   if not line.startswith("#"))


# --- xl block-list / network-list / list -l ------------------------------------------------------

def test_block_list_from_the_lab():
    rows = parse_xl_block_list(capture("xenlab-xl-block-list.txt"))
    assert [(r.devid, r.backend_domid, r.handle, r.state, r.evtch, r.ring_ref) for r in rows] == [
        (51712, 0, 1, 4, 11, 522), (51728, 0, 1, 4, 12, 524)]
    assert rows[1].be_path == "/local/domain/0/backend/vbd/1/51728"
    assert parse_xl_block_list("Vdev  BE  handle state evt-ch ring-ref BE-path                       \n") == []


def test_network_list_from_the_lab():
    rows = parse_xl_network_list(capture("xenlab-xl-network-list.txt"))
    assert [(r.devid, r.mac, r.state, r.evtch, r.tx_ring_ref, r.rx_ring_ref) for r in rows] == [
        (0, "00:16:3e:58:00:11", 4, -1, 520, 521), (1, "00:16:3e:07:7f:0e", 4, -1, 1038, 1039),
        (2, "00:16:3e:03:b6:e9", 4, -1, 1552, 1553), (3, "00:16:3e:58:00:11", 4, -1, 2065, 2066)]
    assert rows[3].be_path == "/local/domain/0/backend/vif/1/3"


@pytest.mark.parametrize("text", [
    "", "nonsense\n", "Vdev BE handle state evt-ch ring-ref BE-path\n51712 0 1\n",
    "Vdev BE handle state evt-ch ring-ref BE-path\nxvda 0 1 4 11 522 /x\n",
    "Vdev BE handle state evt-ch ring-ref BE-path\n" + "9" * 5000 + " 0 1 4 11 522 /x\n",
])
def test_block_list_that_is_not_xls_is_a_parse_error(text):
    with pytest.raises(ParseError, match="xl block-list"):
        parse_xl_block_list(text)


@pytest.mark.parametrize("row", ["0 0 00:16:3e:zz:00:11 0 4 -1 520/521 /p", "0 0 00:16:3e:58:00:11 0 4 -1 520 /p",
                                 "x 0 00:16:3e:58:00:11 0 4 -1 520/521 /p", "0 0"])
def test_network_list_that_is_not_xls_is_a_parse_error(row):
    header = "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n"
    with pytest.raises(ParseError, match="xl network-list"):
        parse_xl_network_list(header + row + "\n")


def test_list_long_after_hot_plugging_keeps_path_mode_and_the_new_nic():
    """libxl writes a hot-plugged device into the domain's stored config: a read-only disk has no readwrite."""
    devices = {d.name: d for d in parse_xl_devices(capture("xenlab-xl-list-l-hotplugged.json.txt"))}
    assert devices["guest1"].disks == [AttachedDisk("xvda", "/var/lib/xentui-lab/guest1-disk.img", "", False)]
    assert devices["guest2"].disks == [AttachedDisk("xvdc", "/var/lib/xentui-lab/probe-ro.img", "", True)]
    assert [(n.devid, n.mac, n.bridge) for n in devices["guest2"].nics] == [
        (0, "00:16:3e:58:00:12", "xenbr0"), (1, "00:16:3e:5a:00:02", "xenbr0")]
    assert devices["Domain-0"].disks == [] and devices["Domain-0"].domid == 0


@pytest.mark.parametrize("text", ["", "{}", "[1, 2", "(domain)", '"x"'])
def test_list_long_that_is_not_json_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_xl_devices(text)


def test_hostile_list_long_entries_are_left_out_not_raised():
    text = ('[{"domid": true, "config": {"c_info": {"name": "x"}}}, 7, {"domid": 3, "config": []},'
            '{"domid": 4, "config": {"c_info": {"name": "ok"}, "disks": [5, {"vdev": 1}, {"vdev": "xvdb", '
            '"readwrite": "True", "is_cdrom": 1}], "nics": [{"devid": "0", "mac": 7}]}}]')
    [only] = parse_xl_devices(text)
    assert only.name == "ok" and only.disks == [AttachedDisk("xvdb", "", "", False, cdrom=True)]
    assert only.nics[0].devid == -1 and only.nics[0].mac == ""


def test_block_list_rows_take_path_and_mode_from_the_config():
    rows = parse_xl_block_list(capture("xenlab-xl-block-list-ro.txt"))
    configured = {d.name: d for d in parse_xl_devices(capture("xenlab-xl-list-l-hotplugged.json.txt"))}
    assert attached_disks(rows, configured["guest2"].disks) == [
        AttachedDisk("xvdc", "/var/lib/xentui-lab/probe-ro.img", "phy", True, devid=51744)]
    # a device libxl's config does not know: its number's name, no path
    assert attached_disks(rows, []) == [AttachedDisk("xvdc", "", "phy", False, devid=51744)]


# --- xl's config language ----------------------------------------------------------------------

LAB_GUEST1 = """# xentui Xen lab: guest1
name = "guest1"
type = "pv"
kernel = "/var/lib/xentui-lab/guest/vmlinuz"
extra = "console=hvc0 xentui_hostname=guest1 xentui_ip=10.99.0.11/24"
memory = 128
maxmem = 256
vcpus = 1
maxvcpus = 2
vif = [ 'bridge=xenbr0,mac=00:16:3e:58:00:11' ]
disk = [ 'format=raw, vdev=xvda, access=rw, target=/var/lib/xentui-lab/guest1-disk.img' ]
on_crash = "preserve"
"""


def test_the_labs_guest_config():
    config = guest_config("/etc/xen/guest1.cfg", LAB_GUEST1, running=["guest1", "Domain-0"])
    assert (config.name, config.type, config.memory_kib, config.maxmem_kib, config.vcpus, config.running) == (
        "guest1", "pv", 128 << 10, 256 << 10, 1, True)
    assert config.disks == ("format=raw, vdev=xvda, access=rw, target=/var/lib/xentui-lab/guest1-disk.img",)
    assert config.nics == ("bridge=xenbr0,mac=00:16:3e:58:00:11",) and config.problem is None


def test_the_language_xl_reads():
    text = ('name="a";memory=0x80 ; vcpus = "2"  # a comment\n'
            "disk = [\n  'phy:/dev/vg/a,xvda,w',\n  \"file:/x\\x2cy,xvdb,r\",   # trailing comma\n]\n"
            "vif = []\nvif += [ 'bridge=xenbr0' ]\nvnuma = [ [ \"pnode=0\", \"size=512\" ], [ \"pnode=1\" ] ]\n"
            'extra = "tab\\there \\"q\\" \\101"\nname = "b"\n')
    settings = parse_xl_cfg(text)
    assert settings["name"] == "b"  # set twice: the last
    assert settings["memory"] == 128 and settings["vcpus"] == "2"
    assert settings["disk"] == ["phy:/dev/vg/a,xvda,w", "file:/x,y,xvdb,r"]
    assert settings["vif"] == ["bridge=xenbr0"] and settings["vnuma"] == [["pnode=0", "size=512"], ["pnode=1"]]
    assert settings["extra"] == 'tab\there "q" A'
    config = guest_config("/etc/xen/b.cfg", text)
    assert (config.memory_kib, config.vcpus, config.type) == (128 << 10, 2, "pv")


@pytest.mark.parametrize(("text", "kind"), [
    ('name = "h"\nbuilder = "hvm"\n', "hvm"), ('name = "h"\nbuilder = "generic"\n', "pv"),
    ('name = "h"\ntype = "PVH"\n', "pvh"), ('name = "h"\n', "pv"),
])
def test_the_type_old_and_new(text, kind):
    assert guest_config("/c", text).type == kind


@pytest.mark.parametrize(("text", "said"), [
    ('name = "bad1"\nmemory = 128 +\nvcpus = 1\n', "line 2: syntax error near '+'"),  # the lab's bad.cfg
    ('name = "x\nmemory=1\n', "line 1"),  # an unclosed string
    ("import os\nos.system('reboot')\n", "line 1: syntax error near 'os'"),  # Python: never run
    ("memory = 2 * 64\n", "line 1: syntax error near '* 64', not xl's config language"),
    ('disk = [ "a" "b" ]\n', "expected ',' or ']'"),
    ('disk = [ "a",\n', "line 2: syntax error near end of file"),
    ("memory = \n", "line 1: syntax error near end of line"),
    ("= 3\n", "expected a setting's name"),
    ('name = "a" "b"\n', "expected the end of the line"),
    ("vif += 'x'\n", "appends a list"),
    ('extra = "\\q"\n', "unknown escape"),
    ("memory = 99999999999999999999999\n", "line 1"),
    ("vnuma = " + "[" * 50 + "]" * 50 + "\n", "nested"),
    ("x = 1\0\n", "NUL"),
])
def test_what_is_not_xls_language_is_refused_with_its_line(text, said):
    with pytest.raises(ConfigSyntaxError) as refused:
        parse_xl_cfg(text)
    assert said in str(refused.value)
    assert said in (guest_config("/etc/xen/bad.cfg", text).problem or "")


@pytest.mark.parametrize(("text", "said"), [
    ('memory = 128\n', "no name"), ('name = 3\n', "name should be a string"),
    ('name = "a"\nmemory = "lots"\n', "memory should be a number"),
    ('name = "a"\ndisk = "phy:/x,xvda,w"\n', "disk should be a list of strings"),
    ('name = "a"\ntype = "xen"\n', "type should be pv, pvh or hvm"),
    ('name = "a"\nbuilder = "hvm2"\n', "builder should be hvm or generic"),
])
def test_a_config_xl_would_refuse_has_a_problem(text, said):
    assert said in (guest_config("/c", text).problem or "")


def test_hostile_values_stay_text():
    text = 'name = "evil\\x1b[2J\\x07"\ndisk = [ "$(reboot)", "`id`;rm -rf /" ]\nmemory = "128"\n'
    config = guest_config("/c", text, running=["evil"])
    assert config.name is not None and "\x1b" not in config.name and "\x07" not in config.name
    assert config.disks == ("$(reboot)", "`id`;rm -rf /") and config.memory_kib == 128 << 10
    assert not config.running
    huge = "x = \"" + "a" * 300_000 + "\"\n"
    assert "KiB" in (guest_config("/c", huge).problem or "")


def test_file_bytes_that_are_not_a_config():
    assert guest_config_from_file("/c", None).problem == "cannot be read (permissions)"
    assert "not UTF-8" in (guest_config_from_file("/c", b'name = "\xff"\n').problem or "")
    assert "KiB" in (guest_config_from_file("/c", b"#" * 300_000).problem or "")
    assert guest_config_from_file("/c", b'name = "a"\n').name == "a"


def test_the_config_dump_lists_each_file_once():
    dump = (b"/etc/xen/a.cfg\0/etc/xen/a.cfg\0ok\0name = \"a\"\n\0"
            b"/etc/xen/auto/a\0/etc/xen/a.cfg\0ok\0name = \"a\"\n\0"
            b"/etc/xen/b.cfg\0/etc/xen/b.cfg\0unreadable\0\0")
    assert parse_config_dump(dump) == [("/etc/xen/a.cfg", b'name = "a"\n'), ("/etc/xen/b.cfg", None)]
    assert parse_config_dump(b"") == []


def test_bridges_from_sysfs():
    assert parse_bridge_dump("/sys/class/net/xenbr0\n/sys/class/net/br-lan\n\n") == ["br-lan", "xenbr0"]


# --- the backend, through a recorded host ---------------------------------------------------------

class RecordedHost(HostAccess):
    """A dom0 that answers from the lab's captures and records every call."""

    name = "dom0 (recorded)"

    def __init__(self, files: dict[str, FileInfo | OSError] | None = None, fail: dict[str, str] | None = None):
        self.calls: list[tuple[str, ...]] = []
        self.files = files or {}
        self.fail = fail or {}
        self.heads: dict[str, bytes] = {}
        self.links = {"/srv/link.img": "/var/lib/xentui-lab/guest1-disk.img"}
        self.listed = capture("xenlab-xl-list.txt")

    def has(self, program):
        return True

    async def run(self, argv, *, what=None, limit=60.0, check=True, on_timeout=None):
        self.calls.append(tuple(argv))
        words = tuple(argv[1:3]) if argv[0] == XL else ("sh",)
        if argv[0] == XL and argv[1] in self.fail:
            return ToolResult(1, "", self.fail[argv[1]])
        if argv[0] == XL and argv[1] == "create":  # two domains appear: ours and one started meanwhile
            self.listed += ("aaa-other                                    7   128     1     -b----       0.1\n"
                            "zzz-ours                                     8   128     1     -b----       0.1\n")
        if argv[0] == "realpath":
            return ToolResult(0, "".join(self.links.get(p, p) + "\0" for p in argv[4:]), "")
        if argv[0] == "sh" and "bridge" in argv[2]:
            return ToolResult(0, "/sys/class/net/xenbr0\n", "")
        if argv[0] == "sh":
            return ToolResult(0, '/etc/xen/guest1.cfg\0/etc/xen/guest1.cfg\0ok\0name = "guest1"\n\0'
                                 '/etc/xen/bad.cfg\0/etc/xen/bad.cfg\0ok\0name = "x" +\n\0', "")
        answers = {("block-list", "1"): capture("xenlab-xl-block-list.txt"),
                   ("block-list", "2"): capture("xenlab-xl-block-list-ro.txt"),
                   ("network-list", "1"): capture("xenlab-xl-network-list.txt"),
                   ("network-list", "2"): capture("xenlab-xl-network-list.txt").replace("vif/1/", "vif/2/"),
                   ("list", "-l"): capture("xenlab-xl-list-l-hotplugged.json.txt"),
                   ("list",): self.listed}
        key = words if words in answers else words[:1]
        return ToolResult(0, answers.get(key, ""), "")

    async def start(self, argv, *, merge_stderr=False, hang_up=False):
        raise AssertionError("nothing long-running here")

    async def read_head(self, path, size):
        self.calls.append(("read_head", path))
        if path in self.heads:
            return self.heads[path][:size]
        raise OSError("not recorded")

    async def read_links(self, paths):
        paths = list(paths)
        self.calls.append(("read_links", *paths))
        return {p: "../../devices/virtual/net/xenbr0" if ".0/" in p else None for p in paths}

    async def net_counters(self) -> dict[str, NetCounters]:
        return {}

    async def open_console(self, argv):
        raise AssertionError("no console here")

    async def stat(self, paths, *, follow_links=False):
        paths = list(paths)
        self.calls.append(("stat", *paths))
        return {p: self.files.get(p, FileNotFoundError(2, "No such file or directory")) for p in paths}


def backend_on(host: RecordedHost) -> XlBackend:
    backend = XlBackend(xl=XL, stats="xentop", host=host)
    domains = {"guest1": 1, "guest2": 2, "Domain-0": 0}

    async def known(name, *, action, allow_dom0=True, need_active=True):
        if name not in domains:
            raise InvalidArgument(f"{action}: no domain named {name!r}")
        if name == "Domain-0" and not allow_dom0:
            raise InvalidArgument(f"{action} refused: Domain-0 is the control domain")
        return SimpleNamespace(domain=SimpleNamespace(name=name, id=domains[name]))

    async def sample():
        return None

    backend._known = known  # type: ignore[method-assign]
    backend.sample = sample  # type: ignore[method-assign]
    return backend


FILE = FileInfo(stat.S_IFREG | 0o644, 16 << 20, 0.0)


def changes(host: RecordedHost) -> list[tuple[str, ...]]:
    return [c for c in host.calls if c[0] == XL and c[1] in (
        "block-attach", "block-detach", "network-attach", "network-detach", "create")]


def test_the_new_actions_are_supported_on_xl():
    caps = backend_on(RecordedHost()).capabilities
    for action in (Action.CREATE, Action.DISK_ATTACH, Action.DISK_DETACH, Action.NIC_ATTACH, Action.NIC_DETACH):
        assert caps.supports(action)


@pytest.mark.asyncio
async def test_listing_disks_and_nics():
    host = RecordedHost()
    backend = backend_on(host)
    assert await backend.disks("guest2") == [
        AttachedDisk("xvdc", "/var/lib/xentui-lab/probe-ro.img", "phy", True, devid=51744)]
    nics = await backend.nics("guest2")
    assert [(n.devid, n.mac, n.bridge, n.ifname) for n in nics][:2] == [
        (0, "00:16:3e:58:00:11", "xenbr0", "vif2.0"), (1, "00:16:3e:07:7f:0e", None, "vif2.1")]
    assert await backend.bridges() == ["xenbr0"]
    assert ("read_links", *(f"/sys/class/net/vif2.{i}/master" for i in range(4))) in host.calls  # in one go


@pytest.mark.asyncio
async def test_disk_attach_argv_target_last_in_a_word_of_its_own():
    path = "/srv/images/a,b c=d.img"
    host = RecordedHost(files={path: FILE})
    await backend_on(host).disk_attach("guest2", DiskSpec(path, " xvdd ", readonly=True, format="qcow2"))
    assert changes(host) == [(XL, "block-attach", "2", "format=qcow2", "vdev=xvdd", "access=ro", f"target={path}")]
    realpath = next(c for c in host.calls if c[0] == "realpath")  # the paths resolved in one call
    assert realpath == ("realpath", "-z", "-m", "--", "/srv/images/a,b c=d.img", "/var/lib/xentui-lab/guest1-disk.img",
                        "/var/lib/xentui-lab/probe-ro.img")


@pytest.mark.asyncio
async def test_a_host_that_cannot_resolve_paths_compares_them_as_written():
    host = RecordedHost(files={"/srv/link.img": FILE})
    host.links = {"/srv/link.img": "/var/lib/xentui-lab/guest1-disk.img"}
    real_run = host.run

    async def no_realpath(argv, **options):
        if argv[0] == "realpath":
            return ToolResult(1, "", "realpath: unrecognized option '-z'")
        return await real_run(argv, **options)
    host.run = no_realpath  # type: ignore[method-assign]
    await backend_on(host).disk_attach("guest2", DiskSpec("/srv/link.img", "xvdd"))
    assert changes(host)[0][-1] == "target=/srv/link.img"


@pytest.mark.asyncio
@pytest.mark.parametrize(("domain", "spec", "files", "said"), [
    ("guest2", DiskSpec("/nope.img", "xvdd"), {}, "/nope.img does not exist on dom0"),
    ("guest2", DiskSpec("/srv", "xvdd"), {"/srv": FileInfo(stat.S_IFDIR | 0o755, 0, 0.0)}, "is a directory"),
    ("guest2", DiskSpec("/x", "xvdd"), {"/x": PermissionError(13, "Permission denied")}, "Permission denied"),
    ("guest2", DiskSpec("/x", "xvdc"), {"/x": FILE}, "xvdc is taken on guest2"),
    ("guest2", DiskSpec("/var/lib/xentui-lab/guest1-disk.img", "xvdd", readonly=True),
     {"/var/lib/xentui-lab/guest1-disk.img": FILE}, "attached read-write to guest1"),
    ("guest1", DiskSpec("/var/lib/xentui-lab/probe-ro.img", "xvdd"), {"/var/lib/xentui-lab/probe-ro.img": FILE},
     "attach it read-only here too"),
    ("guest2", DiskSpec("relative.img", "xvdd"), {}, "not an absolute path"),
    ("guest2", DiskSpec("/x", "xvdd", format="iso"), {"/x": FILE}, "not a disk format"),
    ("Domain-0", DiskSpec("/x", "xvdd"), {"/x": FILE}, "control domain"),
    ("guest2", DiskSpec("/x", "vdb"), {"/x": FILE}, "virtio's naming, which Xen does not have: use xvdb"),
    ("guest2", DiskSpec("/srv/link.img", "xvdd"), {"/srv/link.img": FILE},
     "/var/lib/xentui-lab/guest1-disk.img is attached read-write to guest1"),
])
async def test_disk_attach_refusals_run_no_xl_change(domain, spec, files, said):
    host = RecordedHost(files=files)
    with pytest.raises(InvalidArgument, match=said):
        await backend_on(host).disk_attach(domain, spec)
    assert changes(host) == []


@pytest.mark.asyncio
async def test_nic_attach_and_its_refusals():
    host = RecordedHost()
    backend = backend_on(host)
    await backend.nic_attach("guest2", " xenbr0 ", "00:16:3E:AA:BB:CC")
    await backend.nic_attach("guest2", "xenbr0", "")
    assert changes(host) == [(XL, "network-attach", "2", "bridge=xenbr0", "mac=00:16:3e:aa:bb:cc"),
                             (XL, "network-attach", "2", "bridge=xenbr0")]
    host.calls.clear()
    for bridge, mac, said in [("xenbr9", None, r"no bridge 'xenbr9' on this host \(its bridges: xenbr0\)"),
                              ("br0,script=/x", None, "is not a bridge name"),
                              ("xenbr0", "00:16:3e:zz:00:00", "is not a MAC"),
                              ("xenbr0", "00:16:3e:58:00:12", "a NIC of guest2"),
                              ("xenbr0", "00:16:3e:5a:00:02", "a NIC of guest2")]:
        with pytest.raises(InvalidArgument, match=said):
            await backend.nic_attach("guest1", bridge, mac)
    assert changes(host) == []


@pytest.mark.asyncio
async def test_detach_by_name_devid_or_mac():
    host = RecordedHost()
    backend = backend_on(host)
    await backend.disk_detach("guest2", "xvdc")
    await backend.nic_detach("guest2", "00:16:3E:07:7F:0E")
    await backend.nic_detach("guest2", "2")
    assert changes(host) == [(XL, "block-detach", "2", "xvdc"), (XL, "network-detach", "2", "1"),
                             (XL, "network-detach", "2", "2")]
    with pytest.raises(InvalidArgument, match="has no disk 'xvdz'"):
        await backend.disk_detach("guest2", "xvdz")
    with pytest.raises(InvalidArgument, match="has no NIC '9'"):
        await backend.nic_detach("guest2", "9")


@pytest.mark.asyncio
async def test_xls_own_failure_comes_back_with_its_words():
    said = capture("xenlab-xl-device-errors.txt").split("$ xl create /tmp/bad.cfg\n")[1].split("rc=")[0]
    host = RecordedHost(files={"/etc/xen/bad.cfg": FILE}, fail={"create": said, "block-detach": "libxl: error: "
                        "libxl_device.c:1:f: Domain 2:Timeout waiting for device to go away\n"})
    backend = backend_on(host)
    with pytest.raises(InvalidArgument) as refused:
        await backend.create("/etc/xen/bad.cfg")
    assert str(refused.value).startswith("create /etc/xen/bad.cfg: xl refused: /tmp/bad.cfg:2: config parsing error "
                                         "near `+': lexical error")
    with pytest.raises(BackendError, match="xl refused: Timeout waiting for device to go away") as failed:
        await backend.disk_detach("guest2", "xvdc")
    assert not isinstance(failed.value, InvalidArgument)


@pytest.mark.asyncio
async def test_create_refused_name_keeps_xls_reason_without_its_cleanup():
    said = capture("xenlab-xl-device-errors.txt").split("$ xl create /etc/xen/guest2.cfg\n")[1].split("rc=")[0]
    host = RecordedHost(files={"/etc/xen/guest2.cfg": FILE}, fail={"create": said})
    with pytest.raises(InvalidArgument) as refused:
        await backend_on(host).create("/etc/xen/guest2.cfg")
    assert str(refused.value) == ('create /etc/xen/guest2.cfg: xl refused: Domain with name "guest2" already exists.; '
                                  "cannot make domain: -6")


@pytest.mark.asyncio
async def test_create_checks_the_path_first_and_passes_paused():
    host = RecordedHost(files={"/etc/xen": FileInfo(stat.S_IFDIR | 0o755, 0, 0.0), "/etc/xen/g.cfg": FILE})
    backend = backend_on(host)
    for path, said in [("/etc/xen", "is a directory, not a config file"), ("/etc/xen/none.cfg", "does not exist"),
                       ("g.cfg", "not an absolute path"), ("", "give its path")]:
        with pytest.raises(InvalidArgument, match=said):
            await backend.create(path)
    assert changes(host) == []
    host.heads["/etc/xen/g.cfg"] = b'name = "zzz-ours"\n'
    assert await backend.create("/etc/xen/g.cfg", paused=True) == "zzz-ours"
    assert changes(host) == [(XL, "create", "-p", "/etc/xen/g.cfg")]


@pytest.mark.asyncio
async def test_create_when_xl_says_yes_but_nothing_runs():
    host = RecordedHost(files={"/etc/xen/g.cfg": FILE})
    backend = backend_on(host)

    async def quiet(argv, **options):
        host.calls.append(tuple(argv))
        return ToolResult(0, capture("xenlab-xl-list.txt") if argv[1:] == ["list"] else "", "")
    host.run = quiet  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="no new domain"):
        await backend.create("/etc/xen/g.cfg")


@pytest.mark.asyncio
async def test_guest_configs_in_one_read_beside_xl_list():
    host = RecordedHost()
    configs = await backend_on(host).guest_configs()
    assert [(c.ref, c.name, c.running, bool(c.problem)) for c in configs] == [
        ("/etc/xen/guest1.cfg", "guest1", True, False), ("/etc/xen/bad.cfg", None, False, True)]
    assert len(host.calls) == 2


def test_nothing_here_blocks_the_loop():
    """Every call above is a coroutine over the host; the parsers are pure."""
    for method in ("disks", "disk_attach", "disk_detach", "nics", "bridges", "nic_attach", "nic_detach",
                   "guest_configs", "create"):
        assert asyncio.iscoroutinefunction(getattr(XlBackend, method))
