"""The libvirt backend against xen:///system in the lab's real dom0: Debian's libvirtd with its libxl driver.

Every claim is checked with `xl` (the truth libvirt reads through libxl too). guest1 and guest2 are created by
libvirt at boot (`virsh create /etc/xen/guestN.xml`, see dom0/xentui-lab-guests): the libxl driver lists only
the domains it started, and Domain-0. Each test puts them back as they were (128 MiB, 1 vCPU, running),
through libvirt, so that libvirt's own idea of them stays right too.
"""

from __future__ import annotations

import time

import pytest

from xentui.backends.xl_parsers import parse_xl_vcpu_list
from xentui.model import DomainFlag

from .dom0_calls import PY, in_dom0, wait_for, xl_list

pytestmark = pytest.mark.xenlab

URI = "xen:///system"
VIRSH = ["virsh", "-q", "-c", URI]
GUESTS = ("Domain-0", "guest1", "guest2")


def libvirt(xenlab, *args: str, timeout: float = 300) -> dict:
    """One operation of the libvirt backend in dom0 (in_dom0.py --libvirt xen:///system)."""
    return in_dom0(xenlab, "--libvirt", URI, *args, timeout=timeout)


@pytest.fixture
def restore_guests(xenlab):
    """After the test: guest1 and guest2 at 128 MiB, 1 vCPU, unpaused, through libvirt (xl if libvirt fails)."""
    yield
    for name in ("guest1", "guest2"):
        xenlab.ssh(f"{' '.join(VIRSH)} resume {name} >/dev/null 2>&1 || xl unpause {name} 2>/dev/null; "
                   f"{' '.join(VIRSH)} setmem {name} 131072 --live || xl mem-set {name} 128m; "
                   f"{' '.join(VIRSH)} setvcpus {name} 1 --live || xl vcpu-set {name} 1", check=False)
    entries = xl_list(xenlab)
    for name in ("guest1", "guest2"):
        assert entries[name].vcpus == 1 and DomainFlag.PAUSED not in entries[name].flags, entries[name]


# --- the lab itself --------------------------------------------------------------------------------

def test_virsh_lists_domain0_and_the_guests(xenlab):
    listed = xenlab.ssh([*VIRSH, "list", "--all"]).stdout
    names = {line.split()[1] for line in listed.splitlines() if line.strip()}
    assert set(GUESTS) <= names, listed
    assert xenlab.ssh([*VIRSH, "uri"]).stdout.strip() == URI
    assert xenlab.ssh([PY, "-c", "import libvirt; print(libvirt.getVersion())"]).stdout.strip().isdigit()


# --- reading -------------------------------------------------------------------------------------

def test_sample_agrees_with_xl_list(xenlab):
    result = libvirt(xenlab, "sample")
    assert "error" not in result, result
    listed = xl_list(xenlab)
    domains = {d["name"]: d for d in result["domains"]}
    assert set(GUESTS) <= domains.keys(), domains.keys()
    for name in GUESTS:
        shown, entry = domains[name], listed[name]
        assert shown["id"] == entry.domid, name
        assert shown["mem_kib"] // 1024 == entry.mem_mib, (name, shown["mem_kib"], entry.mem_mib)
        assert shown["vcpus_online"] == entry.vcpus, name
        assert ("p" in shown["flags"]) == (DomainFlag.PAUSED in entry.flags), name
        assert shown["cpu_ns"] > 0 and shown["cpu_pct"] is not None, name
        # per-vCPU times: libvirt-python's vcpus() needs virNodeGetCPUMap, which the libxl driver lacks
        assert shown["unknown"] == ["vcpu_times"], (name, shown["unknown"])
    host = result["host"]
    assert host["hypervisor"] == "Xen" and host["version"].startswith("4.17"), host
    assert host["nr_cpus"] >= 1 and host["total_kib"] > 0 and host["free_kib"] is not None
    guest1, guest2 = domains["guest1"], domains["guest2"]
    assert guest1["type"] == "pv" and guest1["maxmem_kib"] > guest1["mem_kib"]
    assert guest1["vcpus_total"] == 2 and guest1["vcpus"] == [[0, True], [1, False]]
    assert guest1["vifs"][0]["bridge"] == "xenbr0" and guest1["vifs"][0]["mac"] == "00:16:3e:58:00:11"
    assert guest1["vifs"][0]["ifname"] == f"vif{guest1['id']}.0"
    assert guest1["vbds"][0]["device"] == "xvda" and guest1["vbds"][0]["path"].endswith("guest1-disk.img")
    assert not guest1["vbds"][0]["error"] and guest1["vbds"][0]["rd_reqs"] >= 0  # blockStats answered
    assert guest2["vbds"] == [] and guest2["vifs"][0]["mac"] == "00:16:3e:58:00:12"
    assert guest1["vifs"][0]["rx_bytes"] + guest1["vifs"][0]["tx_bytes"] > 0  # interfaceStats answered
    # both backends count a vif from the guest's side (libvirt swaps dom0's tap counters, xl reads them swapped):
    # the xl backend's figures a moment later are the same or a little more, not the other direction's
    xl_vif = {d["name"]: d for d in in_dom0(xenlab, "sample")["domains"]}["guest1"]["vifs"][0]
    for direction in ("rx_bytes", "tx_bytes"):
        assert 0 <= xl_vif[direction] - guest1["vifs"][0][direction] <= 4096, (direction, guest1["vifs"], xl_vif)


def test_no_bulk_stats_so_the_per_domain_calls_fill_everything(xenlab):
    """libvirt 9.0's libxl driver has no getAllDomainStats ("not supported by the connection driver"): the
    backend finds that out at the first refresh and reads every figure with info/vcpus/interfaceStats/
    blockStats instead; nothing is left unknown but the per-vCPU times (vcpus() needs virNodeGetCPUMap, which the
    driver lacks: learnt at the first refresh, not asked again) (test_sample_agrees_with_xl_list checks the values)."""
    result = libvirt(xenlab, "sample")
    state = result["libvirt"]
    assert state["driver"] == "Xen" and state["uri"] == URI
    assert state["bulk"] is False, state  # learnt at run time, not from the driver's name
    assert state["learned"] == {} and state["unsupported"] == {}, state  # nothing refused yet
    assert all(domain["unknown"] == ["vcpu_times"] for domain in result["domains"])
    assert state["vcpus_call"] is False, state
    direct = xenlab.ssh([PY, "-c", "import libvirt\n"
                         "try:\n    libvirt.open('xen:///system').getAllDomainStats(0, 0)\n"
                         "except libvirt.libvirtError as e:\n    print(e.get_error_code(), e.get_error_message())"])
    assert "virConnectGetAllDomainStats" in direct.stdout and direct.stdout.split()[0] == "3"  # VIR_ERR_NO_SUPPORT


# --- acting --------------------------------------------------------------------------------------

def test_pause_and_resume(xenlab, restore_guests):
    assert libvirt(xenlab, "act", "pause", "guest2") == {"ok": True}
    assert DomainFlag.PAUSED in xl_list(xenlab)["guest2"].flags
    shown = {d["name"]: d for d in libvirt(xenlab, "sample")["domains"]}["guest2"]
    assert "p" in shown["flags"]
    again = libvirt(xenlab, "act", "pause", "guest2")
    assert again["kind"] == "InvalidArgument" and "already paused" in again["error"]
    assert libvirt(xenlab, "act", "unpause", "guest2") == {"ok": True}
    assert DomainFlag.PAUSED not in xl_list(xenlab)["guest2"].flags


def test_dom0_is_protected(xenlab):
    refused = libvirt(xenlab, "act", "pause", "Domain-0")
    assert refused["kind"] == "InvalidArgument" and "control domain" in refused["error"]
    assert DomainFlag.PAUSED not in xl_list(xenlab)["Domain-0"].flags


def test_mem_set_balloons_the_guest(xenlab, restore_guests):
    assert libvirt(xenlab, "act", "mem-set", "guest1", str(100 * 1024)) == {"ok": True}
    wait_for("guest1 at 100 MiB", lambda: xl_list(xenlab)["guest1"].mem_mib == 100)
    shown = {d["name"]: d for d in libvirt(xenlab, "sample")["domains"]}["guest1"]
    assert shown["mem_kib"] // 1024 == 100
    refused = libvirt(xenlab, "act", "mem-set", "guest1", str(300 * 1024))
    assert refused["kind"] == "InvalidArgument" and "maxmem" in refused["error"], refused
    assert xl_list(xenlab)["guest1"].mem_mib == 100  # nothing changed
    assert libvirt(xenlab, "act", "mem-set", "guest1", str(128 * 1024)) == {"ok": True}
    wait_for("guest1 back at 128 MiB", lambda: xl_list(xenlab)["guest1"].mem_mib == 128)


def test_after_a_mem_set_down_the_ceiling_is_still_the_configured_maxmem(xenlab, restore_guests):
    """libvirt's libxl driver reports maxMemory as the configured maximum (192 MiB) even when Xen's limit of the
    moment is the target + 1 MiB (xentop's MAXMEM): mem-set down, then back up between the two, works."""
    assert libvirt(xenlab, "act", "mem-set", "guest2", str(100 * 1024)) == {"ok": True}
    wait_for("guest2 at 100 MiB", lambda: xl_list(xenlab)["guest2"].mem_mib == 100)
    xentop = xenlab.ssh(["xentop", "-b", "-i", "1"]).stdout
    assert any(line.split()[:1] == ["guest2"] and line.split()[6] == "103424" for line in xentop.splitlines()), xentop
    shown = {d["name"]: d for d in libvirt(xenlab, "sample")["domains"]}["guest2"]
    assert shown["mem_ceiling_kib"] == 192 * 1024, shown
    assert libvirt(xenlab, "act", "mem-set", "guest2", str(150 * 1024)) == {"ok": True}
    wait_for("guest2 at 150 MiB", lambda: xl_list(xenlab)["guest2"].mem_mib == 150)
    refused = libvirt(xenlab, "act", "mem-set", "guest2", str(250 * 1024))
    assert refused["kind"] == "InvalidArgument" and "maxmem of 192M" in refused["error"], refused
    assert xl_list(xenlab)["guest2"].mem_mib == 150


def test_vcpu_set_onlines_a_vcpu(xenlab, restore_guests):
    def vcpus() -> list:
        return parse_xl_vcpu_list(xenlab.ssh(["xl", "vcpu-list", "guest2"]).stdout)

    assert libvirt(xenlab, "act", "vcpu-set", "guest2", "2") == {"ok": True}
    wait_for("vCPU 1 online", lambda: len(vcpus()) == 2 and all(v.online for v in vcpus()))
    assert xl_list(xenlab)["guest2"].vcpus == 2
    shown = {d["name"]: d for d in libvirt(xenlab, "sample")["domains"]}["guest2"]
    assert shown["vcpus_online"] == 2 and shown["vcpus"] == [[0, True], [1, True]]
    refused = libvirt(xenlab, "act", "vcpu-set", "guest2", "3")
    assert refused["kind"] == "InvalidArgument" and "at most 2" in refused["error"], refused
    assert libvirt(xenlab, "act", "vcpu-set", "guest2", "1") == {"ok": True}
    wait_for("back to one vCPU", lambda: xl_list(xenlab)["guest2"].vcpus == 1)


def test_sysrq_is_unsupported_with_the_reason(xenlab):
    """The libxl driver has no sendKey: a clear Unsupported carrying libvirt's words, not a crash, and the
    guest is untouched."""
    before = xenlab.ssh(["wc", "-c", "/var/log/xen/console/guest-guest2.log"]).stdout.split()[0]
    refused = libvirt(xenlab, "act", "sysrq", "guest2", "h")
    assert refused["kind"] == "Unsupported", refused
    assert "Xen driver" in refused["error"] and "virDomainSendKey" in refused["error"], refused
    reason = refused["libvirt"]["unsupported"]["sysrq"]  # backend.capabilities: the UI greys sysrq out
    assert "Xen driver does not support it" in reason and "virDomainSendKey" in reason, reason
    time.sleep(1)
    log = xenlab.ssh(["tail", "-c", f"+{int(before) + 1}", "/var/log/xen/console/guest-guest2.log"]).stdout
    assert "sysrq" not in log.lower()
    bad = libvirt(xenlab, "act", "sysrq", "guest2", "?")
    assert bad["kind"] == "InvalidArgument"


def test_scheduler_weight_and_cap(xenlab):
    """credit2 through libvirt's libxl driver: weight and cap, checked with xl sched-credit2."""
    try:
        assert libvirt(xenlab, "act", "sched", "guest2", "512", "50") == {"ok": True}
        line = xenlab.ssh(["xl", "sched-credit2", "-d", "guest2"]).stdout.splitlines()[-1].split()
        assert line[0] == "guest2" and (int(line[2]), int(line[3])) == (512, 50), line
        shown = {d["name"]: d for d in libvirt(xenlab, "sample")["domains"]}["guest2"]
        assert (shown["weight"], shown["cap"]) == (512, 50)
    finally:
        xenlab.ssh(["xl", "sched-credit2", "-d", "guest2", "-w", "256", "-c", "0"], check=False)


def test_console_answers_a_typed_command(xenlab):
    """openConsole works on the libxl driver, but only without VIR_DOMAIN_CONSOLE_SAFE ("unsupported flags
    (0x2) in function libxlDomainOpenConsole"): the backend retries without it."""
    result = libvirt(xenlab, "console", "guest2", "echo $((6*7))MARK", "42MARK")
    assert result.get("ok"), result
    assert result["libvirt"]["console_safe"] is False
