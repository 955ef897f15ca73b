"""What an HVM guest costs dom0: its device model (QEMU, ``qemu-dm`` of old) and whether its PV drivers are up.

libxl starts one device model process per HVM domain in dom0 (Debian: ``/usr/libexec/xen-qemu-system-i386
-xen-domid N ...``). Its CPU time and resident memory are the guest's cost outside Xen's own accounting, which
xentop does not show. Whether the guest runs PV drivers is in xenstore: Linux's and Windows' drivers write
``control/feature-poweroff`` = 1 once they are up (libxl creates the node empty), and without them a shutdown
request is never read.

All of it is ONE command through the host seam (a constant shell script, the domids as its arguments): one grep
over every ``/proc/PID/cmdline``, then each match's ``stat`` (CPU ticks) and ``status`` (VmRSS), then one
``xenstore-read`` per HVM domain. Over ssh that is one round trip per refresh, and only when HVM domains run.
A device model in a stub domain (qemu-traditional's stubdom) is no dom0 process: none is found for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from xentui.backends.base import BackendError, BackendUnavailable
from xentui.backends.host import HostAccess
from xentui.model.records import DeviceModel, Domain

__all__ = ["HvmFacts", "parse_device_models", "read_hvm_facts"]

USER_HZ = 100  # the unit of /proc/PID/stat's utime and stime on every Linux architecture Xen runs on
_NS_PER_TICK = 1_000_000_000 // USER_HZ

# `grep -l` lists the processes whose command line holds the word; grep's own (and this shell's) match too and
# are left out by the parser (their -xen-domid is not followed by a number).
_SCRIPT = r"""
for f in $(grep -l -a -s -e -xen-domid /proc/[0-9]*/cmdline); do
    d=${f%/cmdline}
    printf '\001process %s\n' "${d#/proc/}"
    cat "$d/stat" "$d/status" 2>/dev/null
    printf '\001cmdline '
    cat "$d/cmdline" 2>/dev/null
    echo
done
for id; do
    printf '\001pvdrivers %s %s\n' "$id" "$(xenstore-read "/local/domain/$id/control/feature-poweroff" 2>/dev/null)"
done
"""


class HvmFacts:
    """One read's answers: the device model of each domid that has one in dom0, and the PV drivers of the
    domids asked about (True: up; False: not, or not yet)."""

    __slots__ = ("device_models", "pv_drivers")

    def __init__(self, device_models: dict[int, DeviceModel], pv_drivers: dict[int, bool]) -> None:
        self.device_models = device_models
        self.pv_drivers = pv_drivers

    def fill(self, domains: Iterable[Domain]) -> None:
        """Put each HVM domain's device model and PV drivers on its record (the domains asked about)."""
        for domain in domains:
            if domain.id in self.pv_drivers:
                domain.pv_drivers = self.pv_drivers[domain.id]
                domain.device_model = self.device_models.get(domain.id)


def parse_device_models(text: str) -> HvmFacts:
    """The script's output (see `_SCRIPT`) as `HvmFacts`. A process that ended between the grep and the read,
    or whose -xen-domid is not followed by a domid (grep, this script), is left out."""
    models: dict[int, DeviceModel] = {}
    drivers: dict[int, bool] = {}
    pending: tuple[int, str] | None = None  # the last process's pid and its stat + status
    for record in text.split("\001")[1:]:
        if record.startswith("cmdline "):
            if pending is not None:
                found = _device_model(*pending, record[len("cmdline "):].rstrip("\n"))
                if found is not None:
                    domid, model = found
                    old = models.get(domid)  # two for one domid: the larger (never seen; a QEMU for disks?)
                    if old is None or model.rss_kib > old.rss_kib:
                        models[domid] = model
            pending = None
            continue
        head, _, rest = record.partition("\n")
        words = head.split()
        if words[:1] == ["pvdrivers"] and len(words) >= 2 and words[1].isdigit():
            drivers[int(words[1])] = words[2:3] == ["1"]
        elif words[:1] == ["process"] and len(words) == 2 and words[1].isdigit():
            pending = (int(words[1]), rest)
    return HvmFacts(models, drivers)


def _device_model(pid: int, stat_and_status: str, cmdline: str) -> tuple[int, DeviceModel] | None:
    argv = cmdline.rstrip("\0").split("\0")
    domid = next((int(argv[i + 1]) for i, word in enumerate(argv[:-1])
                  if word == "-xen-domid" and argv[i + 1].isdigit()), None)
    stat_line, _, status = stat_and_status.partition("\n")
    # comm (in parentheses) may hold spaces: the fields after its closing parenthesis, state first
    fields = stat_line.rpartition(")")[2].split()
    if domid is None or len(fields) < 22 or not (fields[11].isdigit() and fields[12].isdigit()):
        return None
    rss_kib = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value = line.split()[1:2]
            rss_kib = int(value[0]) if value and value[0].isdigit() else 0
            break
    cpu_ns = (int(fields[11]) + int(fields[12])) * _NS_PER_TICK  # utime + stime
    return domid, DeviceModel(pid=pid, program=argv[0], cpu_ns=cpu_ns, rss_kib=rss_kib)


async def read_hvm_facts(host: HostAccess, hvm_domids: Iterable[int]) -> HvmFacts:
    """The device models in dom0 and the PV drivers of HVM_DOMIDS, in one command. Never fails the refresh:
    a host that cannot say (no grep, a failed ssh command) gives empty facts."""
    ids = [str(int(domid)) for domid in hvm_domids]
    if not ids:
        return HvmFacts({}, {})
    try:
        result = await host.run(["sh", "-c", _SCRIPT, "sh", *ids], what="device models", limit=20.0, check=False)
    except BackendUnavailable:
        raise  # the host is gone: the refresh says so
    except BackendError:
        return HvmFacts({}, {})
    return parse_device_models(result.stdout)
