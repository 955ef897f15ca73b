"""Migration between the simulated hosts, as xl does it: the preflight checks, then rounds of pre-copy while
the guest runs, stop-and-copy, and a failure where the real target would refuse the stream, the disks or
the CPU. `SimMigration` is the part of `SimBackend` that does it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from xentui.backends.base import BackendError, InvalidArgument, MigratePhase, MigrateProgress, PreflightCheck
from xentui.backends.sim.domain import GIB, MIB, SimDomain
from xentui.units import human_kib
from xentui.validate import check_host, format_kib

if TYPE_CHECKING:
    from xentui.backends.sim.cluster import SimCluster, SimHost
    from xentui.clock import Clock

MIGRATE_BANDWIDTH_KIB_S = 1 * GIB


class SimMigration:
    """`SimBackend`'s migrate_preflight and migrate (a mixin: it works on the backend's host and cluster)."""

    cluster: SimCluster
    host: SimHost

    if TYPE_CHECKING:  # SimBackend's

        @property
        def clock(self) -> Clock: ...

        def _domain(
            self, name: str, *, action: str, allow_dom0: bool = True, need_active: bool = True
        ) -> SimDomain: ...

        def _remove(self, dom: SimDomain) -> None: ...

    def _target(self, target: str) -> SimHost:
        host = check_host(target)
        if host == self.host.hostname:
            raise InvalidArgument(f"migrate: {host} is this host")
        peer = self.cluster.hosts.get(host)
        if peer is None:
            peers = ", ".join(h for h in self.cluster.hosts if h != self.host.hostname)
            raise BackendError(f"migrate: cannot reach {host}: no such host in the simulated pool (try {peers})")
        return peer

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        dom = self._domain(domain, action="migrate", allow_dom0=False)
        peer = self._target(target)
        return self._checks(dom, peer)

    def _checks(self, dom: SimDomain, peer: SimHost) -> list[PreflightCheck]:
        mine = _version_tuple(self.host.version)
        theirs = _version_tuple(peer.version)
        missing = sorted(self.host.cpu_features - peer.cpu_features)
        unseen = [vbd.path for vbd in dom.vbds if not peer.sees(vbd.path)]
        return [
            PreflightCheck("reachable", True, f"{peer.hostname} answers"),
            PreflightCheck(
                "hypervisor version", theirs >= mine,
                f"Xen {peer.version} there, {self.host.version} here"
                + ("" if theirs >= mine else ": a domain cannot move to an older Xen"),
            ),
            PreflightCheck(
                "CPU", peer.cpu_vendor == self.host.cpu_vendor and not missing,
                f"{peer.cpu_vendor}, same features" if not missing
                else f"{peer.cpu_vendor}, lacks {' '.join(missing)} that the guest may use",
            ),
            PreflightCheck(
                "free memory", peer.free_kib >= dom.mem_kib,
                f"{human_kib(peer.free_kib)} free there, {dom.name} needs {human_kib(int(dom.mem_kib))}",
            ),
            PreflightCheck(
                "storage", not unseen,
                "every disk is on shared storage" if not unseen else f"not visible there: {', '.join(unseen)}",
            ),
        ]

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        dom = self._domain(domain, action="migrate", allow_dom0=False)
        peer = self._target(target)
        checks = self._checks(dom, peer)
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"migrating {dom.name} to {peer.hostname}")
        failed = {check.name: check for check in checks if check.ok is False}
        if "hypervisor version" in failed:
            raise BackendError(
                f"migrate: {peer.hostname} rejected the stream (Xen {peer.version} cannot restore a domain from "
                f"Xen {self.host.version}); {dom.name} keeps running here"
            )
        if "free memory" in failed:
            raise BackendError(f"migrate: {peer.hostname} could not allocate {dom.name}'s memory "
                               f"({failed['free memory'].detail}); {dom.name} keeps running here")
        was_paused = dom.paused
        dom.busy = "migrating"
        done = False
        total = int(dom.mem_kib)
        sent = 0
        try:
            if not live:
                dom.paused = True
            to_send = total
            for round_no in range(1, 6):
                chunk = max(64 * MIB, total // 8)
                remaining = to_send
                while remaining > 0:
                    piece = min(chunk, remaining)
                    await self.clock.sleep(piece / MIGRATE_BANDWIDTH_KIB_S)
                    remaining -= piece
                    sent += piece
                    fraction = min(0.95, sent / (total * 1.3))
                    yield MigrateProgress(MigratePhase.COPYING, fraction,
                                          f"round {round_no}: {format_kib(sent // MIB * MIB)} sent",
                                          sent * 1024, total * 1024)
                dirty_share = 0.0 if dom.paused else 0.05 + 0.3 * dom.load.at(self.clock.monotonic(), dom.salt)
                to_send = int(to_send * dirty_share)
                if to_send < 32 * MIB:
                    break
            dom.paused = True
            yield MigrateProgress(MigratePhase.STOP_AND_COPY, 0.97,
                                  f"{dom.name} paused; copying the last {format_kib(max(to_send, MIB) // MIB * MIB)}",
                                  sent * 1024, total * 1024)
            await self.clock.sleep(max(to_send, MIB) / MIGRATE_BANDWIDTH_KIB_S + 0.05)
            if "storage" in failed:
                raise BackendError(f"migrate: {peer.hostname} could not attach {dom.name}'s disks "
                                   f"({failed['storage'].detail}); {dom.name} resumed here")
            if "CPU" in failed:
                raise BackendError(f"migrate: {peer.hostname} refused {dom.name}: its CPU "
                                   f"{failed['CPU'].detail}; {dom.name} resumed here")
            self.cluster.advance()
            self._remove(dom)
            dom.domid = peer.allocate_domid()
            dom.busy, dom.paused = None, was_paused
            dom.started_at = self.clock.monotonic() - dom.uptime(self.clock.monotonic())
            peer.domains[dom.name] = dom
            done = True
            yield MigrateProgress(MigratePhase.DONE, 1.0, f"{dom.name} now runs on {peer.hostname}",
                                  sent * 1024, total * 1024)
        finally:
            if not done:  # failed or cancelled: the domain carries on here as before
                dom.busy, dom.paused = None, was_paused


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
