"""Play a recorded `xentop -b` log back as if it were live: one recorded iteration per sample.

xentop prints whole CPU seconds and a CPU % per domain; the replay rebuilds nanosecond counters
whose differences over the recorded interval give back exactly the recorded CPU %, and a host
memory size that gives back every MEM(%) and MAXMEM(%) — so `xentui --replay LOG -b` with the
recording's flags prints the recording's domain lines again.

What the log does not record stays unknown: the host's CPU count and clock (0, as a backend gives
for a figure its host did not report: never a real count), the scheduler weight and cap (None), and
in the old 17-column layout the vbd sector counts (`UNKNOWN_VBD_SECTORS`).

After the last iteration the replay does not pretend to go on: see `ReplayBackend.sample`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import stat
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from xentui.backends.base import (
    Action,
    Backend,
    Capabilities,
    ConsoleChannel,
    InvalidArgument,
)
from xentui.backends.xentop_parser import NS, XentopLog, XentopRow, parse_xentop_log, rebuild_cpu_ns
from xentui.model import (
    UNKNOWN_VBD_SECTORS,
    Domain,
    DomainType,
    Host,
    Sample,
    Vbd,
    VbdBackend,
    Vcpu,
    Vif,
    parse_flags,
)
from xentui.textsafe import printable
from xentui.xentop_columns import percent_text  # as xentop and the batch xentop format print it

_KINDS = {"BlkBack": VbdBackend.BLKBACK, "BlkTap": VbdBackend.BLKTAP, "Tapdisk3": VbdBackend.TAPDISK3}
REASON = "a replay of a recorded log cannot act on domains"


def _percentages(log: XentopLog) -> set[tuple[int, float]]:
    """Every (KiB, recorded %) pair of the log: MEM(%) and MAXMEM(%) of every domain in every iteration."""
    pairs: set[tuple[int, float]] = set()
    for iteration in log.iterations:
        for row in iteration:
            pairs.add((row.mem_kib, row.mem_pct))
            if row.maxmem_kib is not None and row.maxmem_pct is not None:
                pairs.add((row.maxmem_kib, row.maxmem_pct))
    return {(kib, pct) for kib, pct in pairs if kib > 0}


def _matches(total: int, pairs: Iterable[tuple[int, float]]) -> int:
    return sum(percent_text(kib, total) == f"{pct:.1f}" for kib, pct in pairs)


def _host_total_kib(log: XentopLog) -> int:
    """A host size that gives back every recorded MEM(%) and MAXMEM(%) (xentop rounds to one decimal).

    One domain's MEM(%) alone may leave a range of sizes of which only some also give back its
    MAXMEM(%), so every percentage of every iteration narrows the range. A log that no size fits
    (two hosts' logs joined, a hand-edited line) gets the size that fits the most percentages.
    """
    pairs = _percentages(log)
    largest = max((row.mem_kib for iteration in log.iterations for row in iteration), default=1)
    low, high = 1.0, math.inf
    for kib, pct in pairs:
        # pct - 0.05 <= kib / total * 100 <= pct + 0.05 (checked exactly below, where it rounds)
        low = max(low, kib * 100 / (pct + 0.05))
        if pct >= 0.05:
            high = min(high, kib * 100 / (pct - 0.05))
    if math.isinf(high):  # nothing but 0.0 %: any size that large
        total = max(math.ceil(low) * 2, max(largest, 1) * 10)
        if _matches(total, pairs) == len(pairs):
            return total
    elif low <= high:
        first, last = math.ceil(low), math.floor(high)
        middle = (first + last) // 2
        for step in range(min(last - first, 2000) + 1):  # the middle fits unless the range is a few KiB wide
            for total in (middle - step, middle + step):
                if first <= total <= last and _matches(total, pairs) == len(pairs):
                    return total
    candidates = sorted({round(kib * 100 / pct) for kib, pct in pairs if pct > 0})
    if not candidates:
        return max(largest, 1) * 10
    if len(candidates) > 256:
        candidates = candidates[:: len(candidates) // 256 + 1]
    return max(candidates, key=lambda total: _matches(total, pairs))


MAX_LOG_BYTES = 256 * 1024 * 1024
"""The largest log a replay reads (a day of `xentop -b -d 1` on a 100-domain host is about 150 MiB)."""
MAX_LINE_BYTES = 64 * 1024
"""xentop's longest line is a few hundred bytes: a longer one is garbage, left out."""


def _read_log(path: Path) -> str:
    """The log's text, from a regular file of bounded size: /dev/zero, a FIFO or a directory is refused with the
    reason, never read until memory runs out or the screen hangs. A JSON Lines recording (``--record``, or
    ``-b --format json``) keeps its long lines; a `xentop -b` log loses the lines no xentop prints."""
    shown = printable(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise InvalidArgument(f"cannot read {shown}: {error.strerror}") from error
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode):
        os.close(fd)
        raise InvalidArgument(f"{shown} is not a regular file: --replay reads a saved `xentop -b` log")
    with os.fdopen(fd, "rb") as file:
        if found.st_size > MAX_LOG_BYTES:
            raise InvalidArgument(f"{shown} is {found.st_size >> 20} MiB: more than the {MAX_LOG_BYTES >> 20} MiB "
                                  "a replay reads (cut it with head or split)")
        data = file.read(MAX_LOG_BYTES + 1)
    if data.lstrip()[:1] == b"{":
        return data.decode("utf-8", errors="replace")
    lines = [line for line in data.split(b"\n") if len(line) <= MAX_LINE_BYTES]
    return b"\n".join(lines).decode("utf-8", errors="replace")


def _json_samples(text: str) -> list[Sample]:
    """The samples of a JSON Lines recording, one object per line (xentui's batch JSON schema): the recorded
    times, the domains with every device the record carries. A line that is not such an object (a recording cut
    short mid-line) is left out."""
    samples = []
    first: float | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            wall = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
            host = record["host"]
            domains = [_json_domain(entry) for entry in record["domains"]]
            shown_host = Host(
                hostname=str(host["hostname"]), hypervisor=str(host.get("hypervisor") or "Xen"),
                version=str(host.get("version") or "unknown"), nr_cpus=int(host.get("nr_cpus") or 0),
                cpu_mhz=int(host.get("cpu_mhz") or 0), total_kib=int(host["total_kib"]),
                free_kib=int(host["free_kib"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        first = wall if first is None else first
        samples.append(Sample(monotonic=wall - first, wall=wall, host=shown_host, domains=domains))
    return samples


def _json_domain(entry: dict) -> Domain:
    def number(key: str) -> int:
        value = entry.get(key)
        return int(value) if isinstance(value, int | float) else 0

    cpu_ns = round(float(entry.get("cpu_s") or 0) * NS)
    vcpus = [Vcpu(int(v["index"]), bool(v["online"]), round(float(v["cpu_s"] or 0) * NS))
             for v in entry.get("vcpu_s", [])]
    if not vcpus:
        online, total = number("vcpus"), max(number("vcpus_max"), number("vcpus"))
        vcpus = [Vcpu(i, i < online, cpu_ns // max(1, online) if i < online else 0) for i in range(total)]
    vifs = [Vif(int(v["devid"]), str(v.get("ifname") or ""), str(v.get("mac") or ""), v.get("bridge"),
                int(v["rx_bytes"]), int(v["rx_packets"]), int(v["rx_errors"]), int(v["rx_drops"]),
                int(v["tx_bytes"]), int(v["tx_packets"]), int(v["tx_errors"]), int(v["tx_drops"]))
            for v in entry.get("vifs", [])]
    if not vifs and number("nets"):
        vifs = [Vif(i, f"vif{entry.get('id', 0)}.{i}") for i in range(number("nets"))]
        vifs[0].rx_bytes, vifs[0].tx_bytes = number("net_rx_kib") * 1024, number("net_tx_kib") * 1024
    vbds = []
    for v in entry.get("vbd_devices", []):
        try:
            kind = VbdBackend(v.get("backend") or "unknown")
        except ValueError:
            kind = VbdBackend.UNKNOWN
        vbds.append(Vbd(int(v["devid"]), str(v.get("device") or ""), kind, str(v.get("path") or ""), v["oo"] or 0,
                        v["rd"] or 0, v["wr"] or 0, v["rsect"] or 0, v["wsect"] or 0, error=v["oo"] is None))
    if not vbds and number("vbds"):
        vbds = [Vbd(i, f"vbd{i}") for i in range(number("vbds"))]
        vbds[0].oo_reqs, vbds[0].rd_reqs, vbds[0].wr_reqs = number("vbd_oo"), number("vbd_rd"), number("vbd_wr")
        vbds[0].rd_sectors, vbds[0].wr_sectors = number("vbd_rsect"), number("vbd_wsect")
    try:
        dtype = DomainType(entry.get("type") or "unknown")
    except ValueError:
        dtype = DomainType.UNKNOWN
    maxmem = entry.get("xen_maxmem_kib")
    return Domain(
        id=number("id"), name=str(entry["name"]), uuid=str(entry.get("uuid") or ""), type=dtype,
        flags=parse_flags(str(entry.get("flags") or "")), cpu_ns=cpu_ns, mem_kib=number("mem_kib"),
        maxmem_kib=int(maxmem) if isinstance(maxmem, int) else None, vcpus=vcpus,
        vcpus_max=max(number("vcpus_max"), len(vcpus)), vifs=vifs, vbds=vbds,
        sched_weight=entry.get("sched_weight"), sched_cap=entry.get("sched_cap"), ssid=number("ssid"),
        static_maxmem_kib=entry.get("maxmem_kib") if isinstance(entry.get("maxmem_kib"), int) else None,
        unknown=frozenset(str(name) for name in entry.get("unknown", [])), host=str(entry.get("host") or ""),
    )


def _clock(wall: float, *, with_date: bool) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S", time.localtime(wall))


class ReplayBackend(Backend):
    name = "replay"

    def __init__(self, path: Path, *, interval: float = 3.0, loop: bool = False) -> None:
        text = _read_log(Path(path))
        if interval <= 0:
            raise InvalidArgument("the recorded interval must be more than 0 seconds")
        self.path = Path(path)
        recorded = _json_samples(text) if text.lstrip()[:1] == "{" else None
        self.log = parse_xentop_log("" if recorded is not None else text)
        if recorded is not None and not recorded:
            raise InvalidArgument(f"{path} holds no sample of xentui's JSON Lines (--record, -b --format json)")
        if recorded is None and not self.log.iterations:
            raise InvalidArgument(f"{path} holds no `xentop -b` domain lines")
        if recorded is not None and len(recorded) > 1:  # the recorded pace, from the recorded times
            steps = sorted(b.wall - a.wall for a, b in itertools.pairwise(recorded))
            interval = max(steps[len(steps) // 2], 0.001)
        self.interval = interval
        self.loop = loop
        self.position = 0
        self.finished: str | None = None
        self._domids: dict[str, int] = {}
        self._host = Host(
            hostname=f"replay of {self.path.name}", hypervisor="Xen", version="unknown", nr_cpus=0, cpu_mhz=0,
            total_kib=_host_total_kib(self.log) if recorded is None else recorded[0].host.total_kib, free_kib=0,
        )
        self.samples = recorded if recorded is not None else self._build_samples()

    @property
    def iterations(self) -> int:
        return len(self.samples)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities({action: REASON for action in Action})

    # building the samples ----------------------------------------------------------------------------

    def _domid(self, name: str) -> int:
        if name not in self._domids:
            self._domids[name] = 0 if name == "Domain-0" else len([n for n in self._domids if n != "Domain-0"]) + 1
        return self._domids[name]

    def _build_samples(self) -> list[Sample]:
        samples = []
        cpu_ns: dict[str, int] = {}
        try:
            base_wall = self.path.stat().st_mtime - self.interval * (len(self.log.iterations) - 1)
        except OSError:
            base_wall = 0.0
        for index, rows in enumerate(self.log.iterations):
            domains = []
            for row in rows:
                previous = cpu_ns.get(row.name)
                ns = rebuild_cpu_ns(row, previous, self.interval)
                cpu_ns[row.name] = ns
                domains.append(self._domain(row, ns))
            used = sum(d.mem_kib for d in domains)
            host = dataclasses.replace(self._host, free_kib=max(0, self._host.total_kib - used))
            samples.append(Sample(monotonic=index * self.interval, wall=base_wall + index * self.interval,
                                  host=host, domains=domains))
        return samples

    def _domain(self, row: XentopRow, cpu_ns: int) -> Domain:
        domid = self._domid(row.name)
        if row.vcpu_s:
            vcpus = [Vcpu(i, i in row.vcpu_s, row.vcpu_s.get(i, 0) * NS) for i in range(row.vcpus)]
        else:
            share = cpu_ns // max(1, row.vcpus)
            vcpus = [Vcpu(i, True, share) for i in range(row.vcpus)]
        # xentop counts at dom0's end of the vif (its TX: what the guest received); `Vif` from the guest's side
        if row.vifs:
            vifs = [Vif(v.index, f"vif{domid}.{v.index}", "", None, v.tx_bytes, v.tx_packets, v.tx_errors, v.tx_drops,
                        v.rx_bytes, v.rx_packets, v.rx_errors, v.rx_drops) for v in row.vifs]
        else:
            vifs = [Vif(i, f"vif{domid}.{i}") for i in range(row.nets)]
            if vifs:
                vifs[0].rx_bytes, vifs[0].tx_bytes = row.net_tx_kib * 1024, row.net_rx_kib * 1024
        unknown: frozenset[str] = frozenset()
        if row.vbd_rows:
            vbds = [Vbd(v.devid, str(v.devid), _KINDS.get(v.kind, VbdBackend.UNKNOWN), "", v.oo or 0, v.rd or 0,
                        v.wr or 0, v.rsect or 0, v.wsect or 0, error=v.oo is None) for v in row.vbd_rows]
            if any(v.oo is not None and v.rsect is None for v in row.vbd_rows):  # old layout: no RSECT/WSECT
                unknown = frozenset({UNKNOWN_VBD_SECTORS})
        else:
            unreadable = row.vbd_oo is None
            vbds = [Vbd(i, f"vbd{i}", error=unreadable) for i in range(row.vbds)]
            if vbds and not unreadable:
                first = vbds[0]
                first.oo_reqs, first.rd_reqs, first.wr_reqs = row.vbd_oo or 0, row.vbd_rd or 0, row.vbd_wr or 0
                first.rd_sectors, first.wr_sectors = row.vbd_rsect or 0, row.vbd_wsect or 0
        if row.vbd_oo is not None and row.vbd_rsect is None:  # the old 17-column layout: no VBD_RSECT/WSECT
            unknown = frozenset({UNKNOWN_VBD_SECTORS})
        return Domain(
            id=domid, name=row.name, uuid="", type=DomainType.UNKNOWN, flags=parse_flags(row.state), cpu_ns=cpu_ns,
            mem_kib=row.mem_kib, maxmem_kib=row.maxmem_kib, vcpus=vcpus, vcpus_max=row.vcpus, vifs=vifs,
            vbds=vbds, ssid=row.ssid, unknown=unknown,
        )

    # the interface --------------------------------------------------------------------------------

    # playing: pause, step, seek (the screen's replay keys) -------------------------------------------------

    paused: bool = False
    """While paused, `sample` gives the iteration shown again (the same monotonic time: no new rate)."""

    _jumped = False  # a step or seek since the last sample: its rates come with it (see `step`)

    def step(self, delta: int) -> None:
        """Move the iteration shown by ``delta`` (clamped to the recording): paused, the next sample is that
        iteration; playing, it plays on from there. A step back from the end plays on again."""
        self.position = max(1, min(len(self.samples), self.position + delta))
        self.finished = None
        self._jumped = True

    def _jumped_to(self, index: int) -> Sample:
        """Iteration ``index`` out of the recorded order, with its own rates (from the iteration before it)."""
        from xentui.model.rates import compute_rates

        current = self.samples[index]
        before = self.samples[index - 1] if index > 0 else None
        rates = compute_rates(before, dataclasses.replace(current, rates=None))
        return dataclasses.replace(current, rates=rates)

    @property
    def shown(self) -> int:
        """The iteration last given, counting from 1 (0 before the first)."""
        return self.position

    def position_text(self) -> str:
        """For the header (which shows the iteration's time): "replay 14/120", and "paused" while it is."""
        return f"replay {self.position}/{len(self.samples)}{' paused' if self.paused else ''}"

    def events_between(self, start: float, end: float) -> list[str]:
        """The actions of the audit trail taken between two recorded times (start, end], as the operator reads
        them: "03:12:05 alice: destroy web-1 (ok)". None without an audit log."""
        return [text for wall, text in self.actions if start < wall <= end]

    actions: list[tuple[float, str]] = []  # noqa: RUF012 - replaced by load_actions, never changed in place

    def load_actions(self, path: Path) -> int:
        """The audit trail's entries (``--audit-log``, or the default one) to mark on the timeline; how many."""
        from xentui.audit import AuditLog

        try:
            entries = AuditLog(path).read()
        except OSError:
            return 0
        actions = []
        for entry in entries:
            try:
                wall = datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00")).timestamp()
            except (KeyError, ValueError):
                continue
            who = entry.get("invoked_by") or entry.get("user") or "?"
            text = (f"{time.strftime('%H:%M:%S', time.localtime(wall))} {who}: {entry.get('action')} "
                    f"{entry.get('domain') or ''} ({entry.get('result')})")
            actions.append((wall, printable(" ".join(text.split()))))
        self.actions = sorted(actions)
        return len(actions)

    async def sample(self) -> Sample:
        """The next recorded iteration.

        Asked for one more after the last (without ``loop``): `finished` says that the recording
        ended, and the last iteration comes back as it was (the same `Sample`, the same monotonic
        time), so it makes no new rate and no history point. A caller that sees `finished` set
        keeps what it shows and stops asking. With ``loop`` the first iteration follows the last.
        """
        if self.paused and self.position > 0:
            if self._jumped:
                self._jumped = False
                return self._jumped_to(self.position - 1)
            return self.samples[self.position - 1]
        if self.position >= len(self.samples):
            if not self.loop:
                self.finished = self._ended()
                return self.samples[-1]
            self.position = 0
        sample = self._jumped_to(self.position) if self._jumped else self.samples[self.position]
        self._jumped = False
        self.position += 1
        return sample

    def _ended(self) -> str:
        """For the operator: what was played. The times are the log file's: xentop -b writes none,
        so the last iteration is taken to be the file's modification time, one interval apart."""
        count = len(self.samples)
        first, last = self.samples[0].wall, self.samples[-1].wall
        with_date = time.localtime(first)[:3] != time.localtime(last)[:3]
        plural = "iteration" if count == 1 else "iterations"
        return (f"the recording ended: {count} {plural}, {_clock(first, with_date=with_date)} to "
                f"{_clock(last, with_date=with_date)} (log {printable(str(self.path))})")

    async def host_info(self) -> Host:
        return self.samples[max(0, self.position - 1)].host

    async def open_console(self, domain: str) -> ConsoleChannel:
        raise self.refusal(Action.CONSOLE)
