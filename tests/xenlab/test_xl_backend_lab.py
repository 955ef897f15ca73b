"""The xl backend against a real Xen 4.17 hypervisor (the lab): every claim checked with xl itself.

The tests run xentui inside dom0 (tests/xenlab/in_dom0.py for one backend operation, the real CLI for
batch mode) and read the truth with `xl` there. guest1 and guest2 are put back as they were; what
destroys, saves or migrates a domain acts on a scratch guest of its own.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import pytest

from xentui.backends.xentop_parser import parse_xentop_log
from xentui.backends.xl_parsers import parse_xl_sched_credit, parse_xl_vcpu_list
from xentui.model import DomainFlag

from .dom0_calls import in_dom0, wait_for, xl_list

pytestmark = pytest.mark.xenlab

XENTUI = "/root/venv/bin/xentui"


def dom0(xenlab, *args: str, timeout: float = 300, file_size_limit: int | None = None) -> dict:
    """One operation of the xl backend in dom0."""
    return in_dom0(xenlab, *args, timeout=timeout, file_size_limit=file_size_limit)


@pytest.fixture
def scratch(xenlab) -> Iterator[str]:
    """A throwaway PV guest (guest2's configuration, another name, no vif), up with a shell on its console."""
    name = f"scratch-{uuid.uuid4().hex[:6]}"
    xenlab.ssh(["xl", "create", "/etc/xen/guest2.cfg", f'name="{name}"', "vif=[]",
                f'extra="console=hvc0 xentui_hostname={name}"'], timeout=120)
    try:
        wait_for(f"{name} ready", lambda: xenlab.ssh(
            ["grep", "-q", "XENTUI-GUEST-READY", f"/var/log/xen/console/guest-{name}.log"], check=False,
        ).returncode == 0, timeout=120, every=2)
        yield name
    finally:
        xenlab.ssh(f"xl destroy {name} 2>/dev/null; rm -f /tmp/{name}.save", check=False, timeout=120)


# --- reading -------------------------------------------------------------------------------------

def test_batch_json_agrees_with_xl_list(xenlab):
    out = xenlab.ssh([XENTUI, "--backend", "xl", "-b", "-i", "2", "-d", "1", "--format", "json", "-n", "-x"],
                     timeout=120).stdout
    last = json.loads(out.strip().splitlines()[-1])
    listed = xl_list(xenlab)
    domains = {d["name"]: d for d in last["domains"]}
    assert {"Domain-0", "guest1", "guest2"} <= domains.keys()
    assert last["host"]["hypervisor"] == "Xen" and last["host"]["version"].startswith("4.17")
    for name, entry in listed.items():
        if name not in domains:
            continue
        shown = domains[name]
        assert shown["id"] == entry.domid
        assert shown["mem_kib"] // 1024 == entry.mem_mib, name
        assert shown["vcpus"] == entry.vcpus, name
        assert ("p" in shown["flags"]) == (DomainFlag.PAUSED in entry.flags), name
        assert shown["cpu_pct"] is not None
    guest1 = domains["guest1"]
    assert guest1["type"] == "pv" and guest1["uuid"]
    assert guest1["vifs"][0]["bridge"] == "xenbr0" and guest1["vifs"][0]["mac"] == "00:16:3e:58:00:11"
    assert guest1["vbd_devices"][0]["device"] == "xvda"
    assert guest1["vbd_devices"][0]["path"].endswith("guest1-disk.img")
    assert guest1["vcpus_max"] == 2 and domains["Domain-0"]["maxmem_kib"] is not None


def test_xentop_format_lines_up_with_real_xentop(xenlab):
    """Both run in the same seconds; the header is the same bytes and every domain line has the same fixed
    fields in the same columns (CPU figures come from two different samplings, so they may differ)."""
    script = (f"{XENTUI} --backend xl -b -i 2 -d 1 > /tmp/ours.txt & "
              "xentop -b -i 2 -d 1 > /tmp/theirs.txt; wait; cat /tmp/ours.txt; echo ===; cat /tmp/theirs.txt")
    ours_text, theirs_text = xenlab.ssh(script, timeout=120).stdout.split("===\n")
    ours, theirs = parse_xentop_log(ours_text), parse_xentop_log(theirs_text)
    assert ours_text.splitlines()[0] == theirs_text.splitlines()[0]  # the header, byte for byte
    assert len(ours.iterations) == len(theirs.iterations) == 2
    mine = {row.name: row for row in ours.iterations[-1]}
    real = {row.name: row for row in theirs.iterations[-1]}
    assert mine.keys() == real.keys()
    for name, row in real.items():
        other = mine[name]
        for field in ("mem_kib", "mem_pct", "maxmem_kib", "maxmem_pct", "vcpus", "nets", "vbds", "ssid"):
            assert getattr(other, field) == getattr(row, field), (name, field)
        # running/blocked flicker between two samplings; dying, shutdown, crashed and paused do not
        assert other.state[:2] + other.state[3:5] == row.state[:2] + row.state[3:5], name
        if name != "Domain-0":  # dom0 burns CPU starting Python under emulation: its seconds move fast
            assert abs(other.cpu_s - row.cpu_s) <= 5, name  # two samplings a few seconds apart
        # xentop's NETTX is dom0's end of the vif (what the guest received); idle guests: the same KiB or one more
        assert abs(other.net_tx_kib - row.net_tx_kib) <= 1 and abs(other.net_rx_kib - row.net_rx_kib) <= 1, (
            name, (other.net_tx_kib, other.net_rx_kib), (row.net_tx_kib, row.net_rx_kib))
    lines_ours = {line.split()[0]: line for line in ours_text.splitlines()[-len(mine):]}
    lines_real = {line.split()[0]: line for line in theirs_text.splitlines()[-len(real):]}
    for name, line in lines_real.items():
        columns_real = [m.end() for m in re.finditer(r"\S+", line)]
        columns_ours = [m.end() for m in re.finditer(r"\S+", lines_ours[name])]
        # NAME..MAXMEM(%) and the counters end in the same columns when their values have the same width
        assert columns_ours[:2] == columns_real[:2] and columns_ours[-1] == columns_real[-1], (line, lines_ours[name])


@pytest.mark.parametrize("source", ["xenstat", "xentop"])
def test_both_stats_sources_see_the_guests(xenlab, source):
    result = dom0(xenlab, "sample", *(["--xentop"] if source == "xentop" else []))
    assert result["stats_source"] == source
    domains = {d["name"]: d for d in result["domains"]}
    guest1 = domains["guest1"]
    assert guest1["vifs"] and guest1["vifs"][0]["bridge"] == "xenbr0" and guest1["vifs"][0]["ifname"].startswith("vif")
    assert guest1["vbds"] and guest1["vbds"][0]["device"] == "xvda" and guest1["vbds"][0]["backend"] == "blkback"
    assert domains["Domain-0"]["cpu_pct"] > 0  # dom0 is busy running us
    assert result["host"]["scheduler"] in ("credit", "credit2") and result["host"]["nr_cpus"] >= 1


VIFS_BOTH_WAYS = """
import json
from xentui.backends.host import _psutil_counters
from xentui.backends.xenstat import XENSTAT_ALL, XenstatReader
from xentui.backends.xl import _networks_by_domain
reader = XenstatReader()
before = reader.read(XENSTAT_ALL)
ours = _networks_by_domain(_psutil_counters())
after = reader.read(XENSTAT_ALL)
print(json.dumps({"before": {d.id: [list(n) for n in map(lambda n: (n.id, n.rx_bytes, n.tx_bytes, n.rx_packets,
                                                                    n.tx_packets), d.networks)]
                             for d in before.domains},
                  "after": {d.id: [[n.id, n.rx_bytes, n.tx_bytes, n.rx_packets, n.tx_packets] for n in d.networks]
                            for d in after.domains},
                  "ours": {domid: [[n.id, n.rx_bytes, n.tx_bytes, n.rx_packets, n.tx_packets] for n in nets]
                           for domid, nets in ours.items()}}))
"""


def test_vif_counters_read_once_from_dom0_are_libxenstats(xenlab):
    """The backend reads the vifs from one parse of dom0's interfaces, not from libxenstat (which parses them once
    per domain): the same vifs with the same counters, between two libxenstat reads taken around it."""
    got = json.loads(xenlab.ssh(["/root/venv/bin/python", "-c", VIFS_BOTH_WAYS]).stdout)
    before, after, ours = got["before"], got["after"], got["ours"]
    with_vifs = {domid for domid, nets in before.items() if nets}
    assert with_vifs and with_vifs == {domid for domid, nets in ours.items() if nets}
    for domid in with_vifs:
        assert [n[0] for n in ours[domid]] == [n[0] for n in before[domid]]
        for low, mine, high in zip(before[domid], ours[domid], after[domid], strict=True):
            assert all(a <= b <= c for a, b, c in zip(low[1:], mine[1:], high[1:], strict=True)), (domid, low, mine)


XL_LIST_LONG_COUNT = """
import asyncio, json, sys
from xentui.backends.host import LocalHost
from xentui.backends.xl import XlBackend

class Counting(LocalHost):
    runs = []
    async def run(self, argv, **options):
        self.runs.append(argv[1:3])
        return await super().run(argv, **options)

async def main():
    host = Counting()
    backend = XlBackend(host=host, stats=sys.argv[1])
    counts = []
    for _ in range(6):
        await backend.sample()
        counts.append(host.runs.count(["list", "-l"]))
    await backend.close()
    print(json.dumps(counts))

asyncio.run(main())
"""


@pytest.mark.parametrize("source", ["xenstat", "xentop"])
def test_xl_list_long_stays_off_the_refresh_path(xenlab, source):
    """`xl list -l` (the configuration of every domain: slow, and it grows with the domains) runs at the first
    refresh and again only when the set of domains changes."""
    counts = json.loads(xenlab.ssh(["/root/venv/bin/python", "-c", XL_LIST_LONG_COUNT, source], timeout=180).stdout)
    assert counts == [1] * 6


# --- acting --------------------------------------------------------------------------------------

def test_mem_set_changes_the_guest_and_refuses_above_maxmem(xenlab):
    try:
        assert dom0(xenlab, "act", "mem-set", "guest1", str(100 * 1024)) == {"ok": True}
        wait_for("guest1 at 100 MiB", lambda: xl_list(xenlab)["guest1"].mem_mib == 100)
        refused = dom0(xenlab, "act", "mem-set", "guest1", str(300 * 1024))
        assert refused["kind"] == "InvalidArgument" and "maxmem" in refused["error"]
        assert xl_list(xenlab)["guest1"].mem_mib == 100  # nothing changed
    finally:
        xenlab.ssh(["xl", "mem-set", "guest1", "128m"])


def test_the_ceiling_is_the_configured_maxmem_not_xens_limit_of_the_moment(xenlab):
    """guest2: memory 128, maxmem 192. libxl sets Xen's limit to the target + 1 MiB at each mem-set, and
    raises it again at the next one, up to the static maximum (xenstore memory/static-max)."""
    def guest2() -> dict:
        return {d["name"]: d for d in dom0(xenlab, "sample")["domains"]}["guest2"]

    try:
        assert dom0(xenlab, "act", "mem-set", "guest2", str(100 * 1024)) == {"ok": True}
        wait_for("guest2 at 100 MiB", lambda: xl_list(xenlab)["guest2"].mem_mib == 100)
        lowered = guest2()
        assert lowered["maxmem_kib"] == 100 * 1024 + 1024  # what xentop prints: 103424
        assert lowered["static_maxmem_kib"] == lowered["mem_ceiling_kib"] == 192 * 1024
        assert dom0(xenlab, "act", "mem-set", "guest2", str(150 * 1024)) == {"ok": True}
        wait_for("guest2 at 150 MiB", lambda: xl_list(xenlab)["guest2"].mem_mib == 150)
        refused = dom0(xenlab, "act", "mem-set", "guest2", str(200 * 1024))
        assert refused["kind"] == "InvalidArgument" and "maxmem of 192M" in refused["error"]
        assert xl_list(xenlab)["guest2"].mem_mib == 150  # nothing changed
    finally:
        xenlab.ssh(["xl", "mem-set", "guest2", "128m"])


def test_mem_max_sets_the_ceiling_and_refuses_below_the_target(xenlab, scratch):
    def maxmem_kib() -> int:
        rows = parse_xentop_log(xenlab.ssh(["xentop", "-b", "-i", "1", "-f"]).stdout).iterations[-1]
        return next(row.maxmem_kib for row in rows if row.name == scratch)

    assert dom0(xenlab, "act", "mem-max", scratch, str(160 * 1024)) == {"ok": True}
    assert 160 * 1024 <= maxmem_kib() <= 161 * 1024  # libxl adds its 1 MiB of slack, as xentop shows
    refused = dom0(xenlab, "act", "mem-max", scratch, str(64 * 1024))  # the target is 128 MiB
    assert refused["kind"] == "InvalidArgument" and "lower the target first" in refused["error"]
    assert 160 * 1024 <= maxmem_kib() <= 161 * 1024


def test_vcpu_set_onlines_a_vcpu_and_refuses_beyond_maxvcpus(xenlab):
    def vcpus() -> list:
        return [v for v in parse_xl_vcpu_list(xenlab.ssh(["xl", "vcpu-list", "guest2"]).stdout)]

    try:
        assert dom0(xenlab, "act", "vcpu-set", "guest2", "2") == {"ok": True}
        wait_for("vCPU 1 online", lambda: all(v.online for v in vcpus()), timeout=60)
        assert xl_list(xenlab)["guest2"].vcpus == 2
        refused = dom0(xenlab, "act", "vcpu-set", "guest2", "3")
        assert refused["kind"] == "InvalidArgument" and "at most 2" in refused["error"]
        assert dom0(xenlab, "act", "vcpu-set", "guest2", "1") == {"ok": True}
        wait_for("back to one vCPU", lambda: xl_list(xenlab)["guest2"].vcpus == 1)
    finally:
        xenlab.ssh(["xl", "vcpu-set", "guest2", "1"], check=False)


def test_pause_and_unpause(xenlab):
    try:
        assert dom0(xenlab, "act", "pause", "guest2") == {"ok": True}
        assert DomainFlag.PAUSED in xl_list(xenlab)["guest2"].flags
        again = dom0(xenlab, "act", "pause", "guest2")
        assert again["kind"] == "InvalidArgument" and "already paused" in again["error"]
        assert dom0(xenlab, "act", "unpause", "guest2") == {"ok": True}
        assert DomainFlag.PAUSED not in xl_list(xenlab)["guest2"].flags
    finally:
        xenlab.ssh(["xl", "unpause", "guest2"], check=False)


def test_dom0_is_protected(xenlab):
    refused = dom0(xenlab, "act", "pause", "Domain-0")
    assert refused["kind"] == "InvalidArgument" and "control domain" in refused["error"]
    assert DomainFlag.PAUSED not in xl_list(xenlab)["Domain-0"].flags


def test_scheduler_weight_and_cap(xenlab):
    scheduler = dom0(xenlab, "sample")["host"]["scheduler"]
    command = {"credit": "sched-credit", "credit2": "sched-credit2"}[scheduler]
    try:
        assert dom0(xenlab, "act", "sched", "guest2", "512", "50") == {"ok": True}
        row = next(r for r in parse_xl_sched_credit(xenlab.ssh(["xl", command, "-d", "guest2"]).stdout))
        assert (row.weight, row.cap) == (512, 50)
        refused = dom0(xenlab, "act", "sched", "guest2", "70000", "-")
        assert refused["kind"] == "InvalidArgument"
        shown = {d["name"]: d for d in dom0(xenlab, "sample")["domains"]}["guest2"]
        assert (shown["weight"], shown["cap"]) == (512, 50)
    finally:
        xenlab.ssh(["xl", command, "-d", "guest2", "-w", "256", "-c", "0"], check=False)


def test_console_answers_a_typed_command(xenlab):
    result = dom0(xenlab, "console", "guest2", "echo $((6*7))MARK", "42MARK")
    assert result["ok"], result["output"][-500:]


def test_sysrq_answers_on_the_console(xenlab):
    result = dom0(xenlab, "console-sysrq", "guest2", "h", "sysrq: HELP")
    assert result["ok"], result["output"][-500:]
    refused = dom0(xenlab, "act", "sysrq", "guest2", "?")
    assert refused["kind"] == "InvalidArgument"


def test_save_then_restore(xenlab, scratch):
    image = f"/tmp/{scratch}.save"
    before = xl_list(xenlab)[scratch].domid
    assert dom0(xenlab, "act", "save", scratch, image, timeout=600) == {"ok": True}
    assert scratch not in xl_list(xenlab)
    assert xenlab.ssh(["test", "-s", image], check=False).returncode == 0
    again = dom0(xenlab, "act", "save", scratch, image)
    assert again["kind"] == "DomainNotFound"
    restored = dom0(xenlab, "act", "restore", image, timeout=600)
    assert restored == {"ok": True, "name": scratch}
    entry = xl_list(xenlab)[scratch]
    assert entry.domid != before and DomainFlag.PAUSED not in entry.flags
    twice = dom0(xenlab, "act", "restore", image)
    assert twice["kind"] == "InvalidArgument" and "already running" in twice["error"]


def test_save_keep_running(xenlab, scratch):
    image = f"/tmp/{scratch}.save"
    assert dom0(xenlab, "act", "save", scratch, image, "keep", timeout=600) == {"ok": True}
    assert scratch in xl_list(xenlab)
    refused = dom0(xenlab, "act", "save", scratch, image, "keep")
    assert refused["kind"] == "InvalidArgument" and "already exists" in refused["error"]
    first = xenlab.ssh(["sha256sum", image]).stdout.split()[0]
    # overwrite: written beside, renamed over at the end; nothing half-written is left in the directory
    assert dom0(xenlab, "act", "save", scratch, image, "keep", "overwrite", timeout=600) == {"ok": True}
    assert xenlab.ssh(["sha256sum", image]).stdout.split()[0] != first
    assert "xentui-partial" not in xenlab.ssh(["ls", "-a", "/tmp"]).stdout
    # a device, a link or a path xl would read as an option: refused before the guest is touched
    for path, reason in (("/dev/null", "character device"), ("-c", "not an absolute path")):
        refused = dom0(xenlab, "act", "save", scratch, path, "keep", "overwrite")
        assert refused["kind"] == "InvalidArgument" and reason in refused["error"], refused
    xenlab.ssh(["ln", "-sf", "/etc/hostname", f"/tmp/{scratch}.link"])
    refused = dom0(xenlab, "act", "save", scratch, f"/tmp/{scratch}.link", "keep", "overwrite")
    assert refused["kind"] == "InvalidArgument" and "symbolic link" in refused["error"], refused
    assert xenlab.ssh(["test", "-c", "/dev/null"], check=False).returncode == 0
    assert DomainFlag.PAUSED not in xl_list(xenlab)[scratch].flags


def test_a_save_xl_cannot_finish_keeps_the_old_image(xenlab, scratch):
    """The issue's case: under a file-size limit the old image used to be truncated to 0 bytes."""
    image = f"/tmp/{scratch}.save"
    assert dom0(xenlab, "act", "save", scratch, image, "keep", timeout=600) == {"ok": True}
    first = xenlab.ssh(["sha256sum", image]).stdout.split()[0]
    failed = dom0(xenlab, "act", "save", scratch, image, "keep", "overwrite", timeout=600,
                  file_size_limit=16 << 20)  # the image is about 128 MiB: xl is stopped a good way in
    assert failed.get("ok") is not True and failed["kind"] == "BackendError", failed
    assert xenlab.ssh(["sha256sum", image]).stdout.split()[0] == first
    assert "xentui-partial" not in xenlab.ssh(["ls", "-a", "/tmp"]).stdout
    print("the failed save said:", failed["error"], "; the guest is", xl_list(xenlab)[scratch].flags)


def test_shutdown_stops_the_guest(xenlab, scratch):
    assert dom0(xenlab, "act", "shutdown", scratch, timeout=200) == {"ok": True}
    wait_for(f"{scratch} gone", lambda: scratch not in xl_list(xenlab), timeout=60)


def test_destroy(xenlab, scratch):
    assert dom0(xenlab, "act", "destroy", scratch) == {"ok": True}
    assert scratch not in xl_list(xenlab)
    gone = dom0(xenlab, "act", "destroy", scratch)
    assert gone["kind"] == "DomainNotFound"


def test_bad_input_changes_nothing(xenlab):
    before = xl_list(xenlab)["guest2"]
    for args in (["mem-set", "guest2", "1"], ["vcpu-set", "guest2", "0"], ["sched", "guest2", "0", "-"]):
        result = dom0(xenlab, "act", *args)
        assert result["kind"] == "InvalidArgument", (args, result)
    after = xl_list(xenlab)["guest2"]
    # 'r' and 'b' are the scheduler's moment-to-moment view of a running guest, not a change we made
    on_cpu = DomainFlag.RUNNING | DomainFlag.BLOCKED
    assert (after.mem_mib, after.vcpus, after.flags & ~on_cpu) == (before.mem_mib, before.vcpus, before.flags & ~on_cpu)
    migrate = dom0(xenlab, "migrate", "guest2", "localhost;reboot")
    assert migrate["kind"] == "InvalidArgument" and "not a host name" in migrate["error"]


def test_migrate_to_localhost_with_progress(xenlab):
    """A live migration of the PVH guest (HAP gives it log-dirty on this Xen) to localhost, as xl allows."""
    xenlab.lab.create_guests(["guest3"])
    try:
        time.sleep(10)  # let the fresh guest finish settling its memory before its pages are tracked
        before = xl_list(xenlab)["guest3"].domid
        result = dom0(xenlab, "migrate", "guest3", "localhost", timeout=900)
        first_error = result.get("error")
        if result.get("kind") == "BackendError":
            # Under full emulation (TCG) a live migration fails now and then on Xen's side, the guest
            # staying at the sender: libxc "Failed to get types for pfn batch" (a race with the guest's
            # memory map), "save callback suspend() failed" (the guest slow to answer the suspend).
            # The guest must still run here (checked); a second attempt is what an operator would do.
            assert "guest3" in xl_list(xenlab), result
            result = dom0(xenlab, "migrate", "guest3", "localhost", timeout=900)
        assert result.get("ok"), (result, first_error)
        checks = {check["name"]: check for check in result["preflight"]}
        assert checks["reachable"]["ok"] and checks["memory"]["ok"] and checks["xen version"]["ok"]
        events = result["events"]
        fractions = [event["fraction"] for event in events]
        assert fractions == sorted(fractions) and len(events) >= 4
        assert events[-1]["phase"] == "done" and "localhost" in events[-1]["message"]
        assert {"target ready to receive", "transfer complete"} <= {event["message"] for event in events}
        entry = xl_list(xenlab)["guest3"]
        assert entry.domid != before and not entry.flags & (DomainFlag.PAUSED | DomainFlag.SHUTDOWN)
    finally:
        xenlab.ssh(["xl", "destroy", "guest3"], check=False)


def test_migrate_failure_is_reported_and_the_guest_keeps_running(xenlab, scratch):
    """PV live migration needs shadow paging, which Debian's Xen lacks: xl fails, and says so."""
    result = dom0(xenlab, "migrate", scratch, "localhost", timeout=600)
    assert result["kind"] == "BackendError" and "dirty pages" in result["error"], result
    entry = xl_list(xenlab)[scratch]
    assert not entry.flags & (DomainFlag.PAUSED | DomainFlag.SHUTDOWN)
