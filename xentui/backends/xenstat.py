"""libxenstat through ctypes: the statistics xentop itself reads, without a subprocess per refresh.

libxenstat ships with Xen's tools (``libxenstat.so.4.17`` in Debian 12's Xen packages). It needs
dom0 and root: it opens privcmd, xenstore and reads /proc/net/dev and
sysfs. The calls block, so `XenstatReader.read` is meant to run in a thread; one reader must not be
used from two threads at once (the library keeps one handle).

Units as libxenstat gives them: memory in bytes (max_mem all ones for "no limit"), CPU time in ns.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass, field

from xentui.errors import BackendUnavailable

__all__ = [
    "NO_LIMIT",
    "XENSTAT_ALL",
    "XENSTAT_NETWORK",
    "XENSTAT_VBD",
    "XENSTAT_VCPU",
    "XenstatDomain",
    "XenstatNetwork",
    "XenstatNode",
    "XenstatReader",
    "XenstatVbd",
    "load_library",
]

XENSTAT_VCPU = 0x1
XENSTAT_NETWORK = 0x2
XENSTAT_XEN_VERSION = 0x4
XENSTAT_VBD = 0x8
XENSTAT_ALL = XENSTAT_VCPU | XENSTAT_NETWORK | XENSTAT_XEN_VERSION | XENSTAT_VBD
NO_LIMIT = (1 << 64) - 1  # max_mem when the domain has no memory limit
VBD_TYPES = {0: "unidentified", 1: "blkback", 2: "blktap"}

# Sonames tried in order: the one Debian 12 ships first, then any other version.
_CANDIDATES = ("libxenstat.so.4.17", "libxenstat.so.4", "libxenstat.so")

_ULL = ctypes.c_ulonglong
_UINT = ctypes.c_uint
_PTR = ctypes.c_void_p

# name: (result type, argument types)
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "xenstat_init": (_PTR, []),
    "xenstat_uninit": (None, [_PTR]),
    "xenstat_get_node": (_PTR, [_PTR, _UINT]),
    "xenstat_free_node": (None, [_PTR]),
    "xenstat_node_domain_by_index": (_PTR, [_PTR, _UINT]),
    "xenstat_node_xen_version": (ctypes.c_char_p, [_PTR]),
    "xenstat_node_tot_mem": (_ULL, [_PTR]),
    "xenstat_node_free_mem": (_ULL, [_PTR]),
    "xenstat_node_num_domains": (_UINT, [_PTR]),
    "xenstat_node_num_cpus": (_UINT, [_PTR]),
    "xenstat_node_cpu_hz": (_ULL, [_PTR]),
    "xenstat_domain_id": (_UINT, [_PTR]),
    "xenstat_domain_name": (ctypes.c_char_p, [_PTR]),
    "xenstat_domain_cpu_ns": (_ULL, [_PTR]),
    "xenstat_domain_num_vcpus": (_UINT, [_PTR]),
    "xenstat_domain_vcpu": (_PTR, [_PTR, _UINT]),
    "xenstat_domain_cur_mem": (_ULL, [_PTR]),
    "xenstat_domain_max_mem": (_ULL, [_PTR]),
    "xenstat_domain_ssid": (_UINT, [_PTR]),
    "xenstat_domain_dying": (_UINT, [_PTR]),
    "xenstat_domain_crashed": (_UINT, [_PTR]),
    "xenstat_domain_shutdown": (_UINT, [_PTR]),
    "xenstat_domain_paused": (_UINT, [_PTR]),
    "xenstat_domain_blocked": (_UINT, [_PTR]),
    "xenstat_domain_running": (_UINT, [_PTR]),
    "xenstat_domain_num_networks": (_UINT, [_PTR]),
    "xenstat_domain_network": (_PTR, [_PTR, _UINT]),
    "xenstat_domain_num_vbds": (_UINT, [_PTR]),
    "xenstat_domain_vbd": (_PTR, [_PTR, _UINT]),
    "xenstat_vcpu_online": (_UINT, [_PTR]),
    "xenstat_vcpu_ns": (_ULL, [_PTR]),
    "xenstat_network_id": (_UINT, [_PTR]),
    "xenstat_network_rbytes": (_ULL, [_PTR]),
    "xenstat_network_rpackets": (_ULL, [_PTR]),
    "xenstat_network_rerrs": (_ULL, [_PTR]),
    "xenstat_network_rdrop": (_ULL, [_PTR]),
    "xenstat_network_tbytes": (_ULL, [_PTR]),
    "xenstat_network_tpackets": (_ULL, [_PTR]),
    "xenstat_network_terrs": (_ULL, [_PTR]),
    "xenstat_network_tdrop": (_ULL, [_PTR]),
    "xenstat_vbd_type": (_UINT, [_PTR]),
    "xenstat_vbd_dev": (_UINT, [_PTR]),
    "xenstat_vbd_oo_reqs": (_ULL, [_PTR]),
    "xenstat_vbd_rd_reqs": (_ULL, [_PTR]),
    "xenstat_vbd_wr_reqs": (_ULL, [_PTR]),
    "xenstat_vbd_rd_sects": (_ULL, [_PTR]),
    "xenstat_vbd_wr_sects": (_ULL, [_PTR]),
}
# Added in Xen 4.11; older libraries lack it and every vbd then counts as readable.
_OPTIONAL = {"xenstat_vbd_error": (ctypes.c_bool, [_PTR])}


@dataclass(frozen=True, slots=True)
class XenstatNetwork:
    """Counted from the guest's side (rx: received by the guest). libxenstat counts at dom0's end of the vif, as
    /proc/net/dev does, the other way round (its rbytes: what dom0 received from the guest; seen in the Xen 4.17
    lab): `XenstatReader` swaps them on reading."""

    id: int
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_drops: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_drops: int


@dataclass(frozen=True, slots=True)
class XenstatVbd:
    type: str  # blkback, blktap, unidentified
    dev: int
    oo_reqs: int
    rd_reqs: int
    wr_reqs: int
    rd_sectors: int
    wr_sectors: int
    error: bool


@dataclass(frozen=True, slots=True)
class XenstatDomain:
    id: int
    name: str
    cpu_ns: int
    cur_mem: int  # bytes
    max_mem: int  # bytes; NO_LIMIT when unlimited
    ssid: int
    dying: bool
    crashed: bool
    shutdown: bool
    paused: bool
    blocked: bool
    running: bool
    vcpus: list[tuple[bool, int]] = field(default_factory=list)  # (online, ns) for vCPU 0..max_vcpu_id
    networks: list[XenstatNetwork] = field(default_factory=list)
    vbds: list[XenstatVbd] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class XenstatNode:
    num_cpus: int
    cpu_hz: int
    tot_mem: int  # bytes
    free_mem: int
    xen_version: str
    domains: list[XenstatDomain]


def load_library(path: str | None = None) -> ctypes.CDLL:
    """The library with every function typed; BackendUnavailable naming what was looked for."""
    candidates = [path] if path else [*_CANDIDATES, ctypes.util.find_library("xenstat")]
    errors = []
    for candidate in filter(None, candidates):
        try:
            library = ctypes.CDLL(candidate)
        except OSError as error:
            errors.append(str(error))
            continue
        try:
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(library, name)
                function.restype, function.argtypes = restype, argtypes
        except AttributeError as error:
            errors.append(f"{candidate}: {error}")
            continue
        for name, (restype, argtypes) in _OPTIONAL.items():
            if hasattr(library, name):
                function = getattr(library, name)
                function.restype, function.argtypes = restype, argtypes
        return library
    raise BackendUnavailable(
        "libxenstat is not installed (looked for " + ", ".join(filter(None, candidates)) + ")",
        detail="; ".join(errors),
    )


class XenstatReader:
    """One libxenstat handle. `read` blocks: call it from a thread, never two at once."""

    def __init__(self, library: ctypes.CDLL | None = None) -> None:
        self._lib = library if library is not None else load_library()
        self._has_vbd_error = hasattr(self._lib, "xenstat_vbd_error")
        self._handle = self._lib.xenstat_init()
        if not self._handle:
            reason = "run xentui as root" if os.geteuid() != 0 else "is this dom0 with xenfs mounted on /proc/xen?"
            raise BackendUnavailable(f"libxenstat could not open the hypervisor: {reason}")

    def read(self, what: int = XENSTAT_ALL) -> XenstatNode:
        """The node, with what ``what`` asks for (XENSTAT_* flags): each kind costs libxenstat reads per domain
        (networks: a parse of /proc/net/dev per domain, the costliest)."""
        lib = self._lib
        if not self._handle:
            raise BackendUnavailable("libxenstat handle already closed")
        node = lib.xenstat_get_node(self._handle, what)
        if not node:
            raise BackendUnavailable(
                "libxenstat could not read the host's statistics (xenstored down? /proc/xen not mounted?)"
            )
        try:
            domains = [
                self._domain(lib.xenstat_node_domain_by_index(node, index))
                for index in range(lib.xenstat_node_num_domains(node))
            ]
            version = lib.xenstat_node_xen_version(node) or b""
            return XenstatNode(
                num_cpus=lib.xenstat_node_num_cpus(node), cpu_hz=lib.xenstat_node_cpu_hz(node),
                tot_mem=lib.xenstat_node_tot_mem(node), free_mem=lib.xenstat_node_free_mem(node),
                xen_version=version.decode("ascii", "replace"), domains=[d for d in domains if d is not None],
            )
        finally:
            lib.xenstat_free_node(node)

    def _domain(self, domain: int | None) -> XenstatDomain | None:
        if not domain:
            return None
        lib = self._lib
        raw_name = lib.xenstat_domain_name(domain) or b""
        vcpus = []
        for index in range(lib.xenstat_domain_num_vcpus(domain)):
            vcpu = lib.xenstat_domain_vcpu(domain, index)
            vcpus.append((bool(lib.xenstat_vcpu_online(vcpu)), lib.xenstat_vcpu_ns(vcpu)) if vcpu else (False, 0))
        networks = []
        for index in range(lib.xenstat_domain_num_networks(domain)):
            net = lib.xenstat_domain_network(domain, index)
            if net:
                networks.append(XenstatNetwork(  # dom0 transmitted what the guest received
                    lib.xenstat_network_id(net),
                    lib.xenstat_network_tbytes(net), lib.xenstat_network_tpackets(net),
                    lib.xenstat_network_terrs(net), lib.xenstat_network_tdrop(net),
                    lib.xenstat_network_rbytes(net), lib.xenstat_network_rpackets(net),
                    lib.xenstat_network_rerrs(net), lib.xenstat_network_rdrop(net),
                ))
        vbds = []
        for index in range(lib.xenstat_domain_num_vbds(domain)):
            vbd = lib.xenstat_domain_vbd(domain, index)
            if vbd:
                vbds.append(XenstatVbd(
                    VBD_TYPES.get(lib.xenstat_vbd_type(vbd), "unidentified"), lib.xenstat_vbd_dev(vbd),
                    lib.xenstat_vbd_oo_reqs(vbd), lib.xenstat_vbd_rd_reqs(vbd), lib.xenstat_vbd_wr_reqs(vbd),
                    lib.xenstat_vbd_rd_sects(vbd), lib.xenstat_vbd_wr_sects(vbd),
                    bool(lib.xenstat_vbd_error(vbd)) if self._has_vbd_error else False,
                ))
        return XenstatDomain(
            id=lib.xenstat_domain_id(domain), name=raw_name.decode("utf-8", "surrogateescape"),
            cpu_ns=lib.xenstat_domain_cpu_ns(domain), cur_mem=lib.xenstat_domain_cur_mem(domain),
            max_mem=lib.xenstat_domain_max_mem(domain), ssid=lib.xenstat_domain_ssid(domain),
            dying=bool(lib.xenstat_domain_dying(domain)), crashed=bool(lib.xenstat_domain_crashed(domain)),
            shutdown=bool(lib.xenstat_domain_shutdown(domain)), paused=bool(lib.xenstat_domain_paused(domain)),
            blocked=bool(lib.xenstat_domain_blocked(domain)), running=bool(lib.xenstat_domain_running(domain)),
            vcpus=vcpus, networks=networks, vbds=vbds,
        )

    def close(self) -> None:
        if self._handle:
            self._lib.xenstat_uninit(self._handle)
            self._handle = None
