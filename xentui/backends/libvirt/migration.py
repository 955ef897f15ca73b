"""Migration: the target's URI, the preflight checks against the target host, and the migration
itself (migrateToURI3, peer to peer) with its progress read from jobStats."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from xentui.backends.base import (
    Action,
    BackendError,
    InvalidArgument,
    MigratePhase,
    MigrateProgress,
    PreflightCheck,
    Unsupported,
)
from xentui.backends.libvirt.connection import ConnectionMixin, _Connection, _message, libvirt
from xentui.backends.libvirt.stats import _PAUSED
from xentui.backends.libvirt_xml import DomainConfig, HostCaps, parse_capabilities, parse_domain_xml, parse_version
from xentui.validate import check_host, format_kib

_PAUSED_MIGRATION = 2  # VIR_DOMAIN_PAUSED_MIGRATION: the stop-and-copy of a live migration
_PREFLIGHT_TIMEOUT_S = 30.0
_MIGRATE_POLL_S = 0.5

_URI_SCHEME = re.compile(r"[a-z][a-z0-9]*(\+[a-z0-9]+)?")


class MigrationMixin(ConnectionMixin):
    """migrate_preflight and migrate."""

    migrate_data_uri: str | None
    migrate_params: dict[str, Any]

    # --- migration --------------------------------------------------------------------------------

    def _destination(self, target: str) -> str:
        """A libvirt URI for ``target``: as given when it is one, else our driver and path on that host
        over ssh (``qemu:///system`` + ``host2`` -> ``qemu+ssh://host2/system``)."""
        target = target.strip()
        if "://" in target:
            scheme = target.split("://", 1)[0]
            if not _URI_SCHEME.fullmatch(scheme) or any(char.isspace() or ord(char) < 32 for char in target):
                raise InvalidArgument(f"{target!r} is not a libvirt URI (e.g. qemu+ssh://host2/system)")
            return target
        host = check_host(target)
        current = self._current
        own = urlsplit(current.uri if current is not None else (self.uri or "qemu:///system"))
        driver, _, transport = own.scheme.partition("+")
        if transport in ("", "unix"):
            transport = "ssh"
        if ":" in host:
            host = f"[{host}]"
        return f"{driver}+{transport}://{host}{own.path or '/system'}"

    async def migrate_preflight(self, domain: str, target: str) -> list[PreflightCheck]:
        destination = self._destination(target)
        what = f"migrate {domain}"
        if Action.MIGRATE in self._learned:
            raise Unsupported(f"{what}: {self._learned[Action.MIGRATE]}")
        try:
            return await asyncio.wait_for(
                self._run(what, lambda current: self._preflight_sync(current, domain, destination)),
                _PREFLIGHT_TIMEOUT_S,
            )
        except TimeoutError:
            return [PreflightCheck("reachable", False,
                                   f"{destination} did not answer within {_PREFLIGHT_TIMEOUT_S:.0f}s")]

    def _preflight_sync(self, current: _Connection, domain: str, destination: str) -> list[PreflightCheck]:
        conn = current.conn
        dom = self._lookup(current, domain)
        mem_kib = dom.info()[2]
        config = parse_domain_xml(dom.XMLDesc(0))
        try:
            dconn = libvirt.openReadOnly(destination)
        except libvirt.libvirtError as error:
            return [PreflightCheck("reachable", False, f"cannot connect to {destination}: {_message(error)}")]
        checks = []
        try:
            checks.append(PreflightCheck("reachable", True, f"{dconn.getHostname()} answers at {destination}"))
            theirs = parse_capabilities(dconn.getCapabilities())
            if theirs.uuid and theirs.uuid == current.caps.uuid:
                checks.append(PreflightCheck("another host", False,
                                             f"{destination} is this host (same host UUID {theirs.uuid})"))
            mine_v, theirs_v = current.hv_version, dconn.getVersion()
            driver = dconn.getType()
            checks.append(PreflightCheck(
                "hypervisor version", driver == current.driver and theirs_v >= mine_v,
                f"{driver} {parse_version(theirs_v)} there, {current.driver} {parse_version(mine_v)} here"
                + ("" if theirs_v >= mine_v else ": a guest cannot move to an older hypervisor"),
            ))
            checks.append(self._cpu_check(dconn, current.caps))
            free = dconn.getFreeMemory() // 1024
            checks.append(PreflightCheck("free memory", free >= mem_kib,
                                         f"{format_kib(free)} free there, {domain} needs {format_kib(mem_kib)}"))
            try:
                there = dconn.lookupByUUIDString(dom.UUIDString())
                checks.append(PreflightCheck("name", not there.isActive(),
                                             f"{there.name()} is already {'running' if there.isActive() else 'defined'}"
                                             " there"))
            except libvirt.libvirtError:
                checks.append(PreflightCheck("name", True, f"no domain with {domain}'s UUID there"))
            checks.append(self._storage_check(dconn, config))
            checks.append(PreflightCheck("libvirt", None, f"libvirt {parse_version(dconn.getLibVersion())} there, "
                                                          f"{parse_version(conn.getLibVersion())} here"))
        except libvirt.libvirtError as error:
            checks.append(PreflightCheck("target", False, f"{destination}: {_message(error)}"))
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                dconn.close()
        return checks

    @staticmethod
    def _cpu_check(dconn: Any, caps: HostCaps) -> PreflightCheck:
        if not caps.cpu_xml:
            return PreflightCheck("CPU", None, "this host's CPU is not known")
        try:
            result = dconn.compareCPU(caps.cpu_xml, 0)
        except libvirt.libvirtError as error:
            return PreflightCheck("CPU", None, f"cannot compare: {_message(error)}")
        if result in (libvirt.VIR_CPU_COMPARE_IDENTICAL, libvirt.VIR_CPU_COMPARE_SUPERSET):
            return PreflightCheck("CPU", True, "the target's CPU has every feature of this one")
        return PreflightCheck("CPU", False, "the target's CPU lacks features of this one that the guest may use")

    @staticmethod
    def _storage_check(dconn: Any, config: DomainConfig) -> PreflightCheck:
        paths = [disk.path for disk in config.disks if disk.path]
        if not paths:
            return PreflightCheck("storage", True, "no disks to reach")
        unseen = []
        for path in paths:
            try:
                dconn.storageVolLookupByPath(path)
            except libvirt.libvirtError:
                unseen.append(path)
        if not unseen:
            return PreflightCheck("storage", True, "every disk is a volume the target knows")
        return PreflightCheck("storage", None, f"not known as volumes there (shared storage?): {', '.join(unseen)}")

    async def migrate(self, domain: str, target: str, *, live: bool = True) -> AsyncIterator[MigrateProgress]:
        """migrateToURI3, peer to peer; progress from jobStats. Closing this iterator aborts the job."""
        what = f"migrate {domain}"
        self._writable(what, Action.MIGRATE)
        destination = self._destination(target)
        yield MigrateProgress(MigratePhase.PREFLIGHT, 0.0, f"migrating {domain} to {destination}")
        dom, persistent = await self._run(what, lambda current: self._migrate_prepare(current, domain))
        flags = libvirt.VIR_MIGRATE_PEER2PEER
        if live:
            flags |= libvirt.VIR_MIGRATE_LIVE
        if persistent:  # the definition moves with the guest, as a Xen domain does
            flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        params: dict[str, Any] = dict(self.migrate_params)
        if self.migrate_data_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = self.migrate_data_uri
        job = asyncio.ensure_future(self._run(
            what, lambda _current: dom.migrateToURI3(destination, params, flags), Action.MIGRATE))
        try:
            while True:
                done, _ = await asyncio.wait({job}, timeout=_MIGRATE_POLL_S)
                if done:
                    break
                progress = await asyncio.to_thread(self._job_progress, dom, domain)
                if progress is not None:
                    yield progress
            try:
                job.result()
            except BackendError as error:
                raise type(error)(f"{error.message}; {domain} keeps running here", detail=error.detail) from error
            self._forget()
            yield MigrateProgress(MigratePhase.DONE, 1.0, f"{domain} now runs at {destination}")
        finally:
            if not job.done():  # closed or cancelled while it runs: ask libvirt to stop it
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(dom.abortJob)
                with contextlib.suppress(BaseException):
                    await asyncio.shield(job)

    @staticmethod
    def _migrate_prepare(current: _Connection, domain: str) -> tuple[Any, bool]:
        dom = current.conn.lookupByName(domain)
        if dom.ID() == 0:
            raise InvalidArgument("migrate refused: Domain-0 is the control domain; that would take the host down")
        if not dom.isActive():
            raise InvalidArgument(f"migrate refused: {domain} is not running")
        return dom, bool(dom.isPersistent())

    @staticmethod
    def _job_progress(dom: Any, domain: str) -> MigrateProgress | None:
        try:
            stats = dom.jobStats()
            state, reason = dom.state()
        except libvirt.libvirtError:
            return None  # the job is ending, or has not started yet
        total = int(stats.get("data_total") or stats.get("memory_total") or 0)
        sent = int(stats.get("data_processed") or stats.get("memory_processed") or 0)
        if not total:
            return None
        fraction = min(0.95, sent / total)
        rounds = stats.get("memory_iteration")
        if state == _PAUSED and reason == _PAUSED_MIGRATION:
            remaining = int(stats.get("data_remaining") or 0)
            return MigrateProgress(MigratePhase.STOP_AND_COPY, max(fraction, 0.96),
                                   f"{domain} paused; copying the last {format_kib(max(remaining // 1024, 1))}",
                                   sent, total)
        round_text = f"round {rounds}: " if rounds is not None else ""
        return MigrateProgress(MigratePhase.COPYING, fraction,
                               f"{round_text}{format_kib(max(sent // 1024, 1))} of {format_kib(max(total // 1024, 1))}"
                               " sent", sent, total)
