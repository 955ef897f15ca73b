"""Pure functions from libvirt's XML and tuples to xentui's model: no libvirt import, no I/O.

The libvirt backend calls these on what the daemon returned (domain XML, capabilities XML,
``getInfo()``), so they are tested against captured documents without a daemon.
Every element is optional: a document that lacks one yields the default, never an exception.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import xmltodict

from xentui.model import DomainType, Host, VbdBackend

__all__ = [
    "DiskConfig",
    "DomainConfig",
    "HostCaps",
    "InterfaceConfig",
    "device_xml",
    "disk_bus",
    "disk_devid",
    "disk_xml",
    "host_from",
    "interface_type",
    "interface_xml",
    "parse_capabilities",
    "parse_domain_xml",
    "parse_domain_xmls",
    "parse_version",
    "saved_image_name",
]

_LISTS = ("disk", "interface", "feature", "vcpu")
_UNITS_KIB = {
    "b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024, "mib": 1024,
    "mb": 1000**2 / 1024, "g": 1024**2, "gib": 1024**2, "gb": 1000**3 / 1024, "t": 1024**3, "tib": 1024**3,
    "tb": 1000**4 / 1024,
}


@dataclass(frozen=True, slots=True)
class InterfaceConfig:
    devid: int  # position among the domain's interfaces
    target: str  # host side (vnet0, vif3.0); "" when libvirt has not named it (inactive domain)
    mac: str = ""
    bridge: str | None = None  # the bridge, or the network name for type='network'
    kind: str = ""  # bridge, network, user, ...
    model: str | None = None  # <model type=...>: virtio, e1000, netfront; None when not said


@dataclass(frozen=True, slots=True)
class DiskConfig:
    devid: int
    target: str  # guest side: vda, xvda, hdc
    path: str = ""  # a file, a block device, pool/volume, or a network source
    device: str = "disk"  # disk, cdrom, floppy, lun
    backend: VbdBackend = VbdBackend.UNKNOWN
    driver: str = ""  # <driver name=...>: qemu, phy, tap...; "" when not said
    format: str = ""  # <driver type=...>: raw, qcow2...; "" when not said
    readonly: bool = False  # <readonly/>
    shareable: bool = False  # <shareable/>: meant to be written by several guests at once (a cluster disk)


@dataclass(frozen=True, slots=True)
class DomainConfig:
    """What the domain XML says, parsed once per change of the domain."""

    name: str = ""
    uuid: str = ""
    hypervisor: str = ""  # <domain type=...>: qemu, kvm, xen, test
    type: DomainType = DomainType.UNKNOWN
    max_memory_kib: int | None = None  # <memory>: the ceiling the balloon may reach
    current_memory_kib: int | None = None  # <currentMemory>
    vcpus_max: int | None = None
    vcpus_current: int | None = None
    interfaces: tuple[InterfaceConfig, ...] = ()
    disks: tuple[DiskConfig, ...] = ()
    balloon: bool | None = None  # a memballoon device other than model='none' (None: not said)
    consoles: tuple[str, ...] = field(default=())  # the types of <console>/<serial>: pty, file, ...


@dataclass(frozen=True, slots=True)
class HostCaps:
    """The host part of the capabilities XML."""

    uuid: str = ""
    arch: str = ""
    cpu_vendor: str = ""
    cpu_model: str = ""
    cpu_features: frozenset[str] = frozenset()
    cpu_xml: str = ""  # the <cpu> element, for compareCPU on a migration target
    migration_transports: tuple[str, ...] = ()


def _parse(xml: str) -> dict[str, Any]:
    return xmltodict.parse(xml, force_list=_LISTS, process_namespaces=False, disable_entities=True)


def _text(node: Any) -> str:
    """The text of an element that may have attributes (then xmltodict gives a dict)."""
    if node is None:
        return ""
    if isinstance(node, dict):
        return str(node.get("#text") or "").strip()
    return str(node).strip()


def _attr(node: Any, name: str) -> str:
    return str(node.get(f"@{name}") or "") if isinstance(node, dict) else ""


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _element_text(node: ET.Element | None) -> str:
    return "" if node is None else (node.text or "").strip()


def _element_attr(node: ET.Element | None, name: str) -> str:
    return "" if node is None else node.get(name) or ""


def _element_kib(node: ET.Element | None) -> int | None:
    """A libvirt memory element (``<memory unit='KiB'>1048576</memory>``) in KiB."""
    value = _int(_element_text(node))
    if value is None or node is None:
        return None
    factor = _UNITS_KIB.get((node.get("unit") or "KiB").lower())
    return None if factor is None else int(value * factor)


_OS_TYPES = {
    "hvm": DomainType.HVM,
    "xen": DomainType.PV,
    "linux": DomainType.PV,  # what old Xen drivers called PV
    "xenpvh": DomainType.PVH,
}

_DISK_BACKENDS = {
    "phy": VbdBackend.BLKBACK,
    "tap": VbdBackend.BLKTAP,
    "tap2": VbdBackend.BLKTAP,
    "qemu": VbdBackend.QDISK,
}


def _disk_path(disk: ET.Element) -> str:
    source = disk.find("source")
    if source is None:
        return ""
    for key in ("file", "dev", "dir"):
        if source.get(key):
            return str(source.get(key))
    pool, volume = source.get("pool"), source.get("volume")
    if pool or volume:
        return f"{pool or ''}/{volume or ''}"
    name = source.get("name")
    if name:  # network disks: protocol and name
        protocol = disk.get("type") == "network" and source.get("protocol")
        return f"{protocol}:{name}" if protocol else name
    return ""


_XEN_MAJORS = {"xvd": 202, "sd": 8}
_HD_DEVIDS = (768, 832, 5632, 5696)  # hda hdb hdc hdd: IDE majors 3 and 22


def _disk_index(letters: str) -> int:
    """xvda -> 0, xvdz -> 25, xvdaa -> 26 (Linux's bijective base-26 disk names)."""
    index = 0
    for char in letters:
        index = index * 26 + (ord(char) - ord("a") + 1)
    return index - 1


def disk_devid(target: str, position: int) -> int:
    """A stable number for a disk: Xen's vdev number where the name has one (xvda = 51712), else a position.

    Rates pair a disk across two samples by this number, so it must not change while the disk stays.
    """
    match = re.fullmatch(r"(xvd|sd|hd|vd)([a-z]+)", target)
    if match:
        prefix, letters = match.groups()
        index = _disk_index(letters)
        if prefix == "hd" and index < len(_HD_DEVIDS):
            return _HD_DEVIDS[index]
        if prefix in _XEN_MAJORS and index < 16:
            return (_XEN_MAJORS[prefix] << 8) | (index << 4)
        if prefix == "xvd":  # xvdq and beyond: Xen's extended form
            return (1 << 28) | (index << 8)
    return 0x10000 + position  # out of the range of any Xen vdev


def parse_domain_xml(xml: str) -> DomainConfig:
    """Type, memory, vCPUs, interfaces and disks of a domain, from ``XMLDesc()``. Raises ET.ParseError on a
    document that is not XML."""
    return _domain_config(ET.fromstring(xml))


def parse_domain_xmls(xmls: list[str]) -> list[DomainConfig | ET.ParseError]:
    """`parse_domain_xml` of many documents (a host's domains, when the screen opens), in one pass of the parser
    where they allow it: a parser made per document costs more than the parsing. A document that is not XML
    gives its ParseError in its place, the others their configurations."""
    configs: list[DomainConfig | ET.ParseError] = []
    for start in range(0, len(xmls), _PARSED_TOGETHER):
        chunk = xmls[start:start + _PARSED_TOGETHER]
        try:
            # libvirt writes no XML declaration, and one would stop the joined document (then: one by one)
            roots = list(ET.fromstring("<domains>" + "".join(chunk) + "</domains>"))
        except ET.ParseError:
            roots = []
        if len(roots) == len(chunk):
            configs.extend(_domain_config(root) for root in roots)
            continue
        for xml in chunk:
            try:
                configs.append(parse_domain_xml(xml))
            except ET.ParseError as error:
                configs.append(error)
    return configs


_PARSED_TOGETHER = 50  # documents a parser reads at once: most of the gain, without a host's whole tree in memory


def _domain_config(root: ET.Element) -> DomainConfig:
    if root.tag != "domain":
        return DomainConfig()
    os_type = _element_text(root.find("os/type")).lower()
    vcpu = root.find("vcpu")
    vcpus_max = _int(_element_text(vcpu)) if vcpu is not None else None
    current = _int(vcpu.get("current") or "") if vcpu is not None else None
    devices = root.find("devices")
    interfaces = []
    disks = []
    balloon = None
    consoles = []
    if devices is not None:
        for index, nic in enumerate(devices.iterfind("interface")):
            source = nic.find("source")
            interfaces.append(InterfaceConfig(
                devid=index,
                target=_element_attr(nic.find("target"), "dev"),
                mac=_element_attr(nic.find("mac"), "address").lower(),
                bridge=(source.get("bridge") or source.get("network") or None) if source is not None else None,
                kind=nic.get("type") or "",
                model=_element_attr(nic.find("model"), "type") or None,
            ))
        for index, disk in enumerate(devices.iterfind("disk")):
            target = _element_attr(disk.find("target"), "dev")
            driver_node = disk.find("driver")
            driver = _element_attr(driver_node, "name").lower()
            disks.append(DiskConfig(
                devid=disk_devid(target, index),
                target=target,
                path=_disk_path(disk),
                device=disk.get("device") or "disk",
                backend=_DISK_BACKENDS.get(driver, VbdBackend.UNKNOWN),
                driver=driver,
                format=_element_attr(driver_node, "type").lower(),
                readonly=disk.find("readonly") is not None,
                shareable=disk.find("shareable") is not None,
            ))
        balloon_node = devices.find("memballoon")
        balloon = None if balloon_node is None else balloon_node.get("model") != "none"
        for kind in ("console", "serial"):
            consoles.extend(node.get("type") or "pty" for node in devices.iterfind(kind))
    return DomainConfig(
        name=_element_text(root.find("name")),
        uuid=_element_text(root.find("uuid")),
        hypervisor=root.get("type") or "",
        type=_OS_TYPES.get(os_type, DomainType.UNKNOWN),
        max_memory_kib=_element_kib(root.find("memory")),
        current_memory_kib=_element_kib(root.find("currentMemory")),
        vcpus_max=vcpus_max,
        vcpus_current=current if current is not None else vcpus_max,
        interfaces=tuple(interfaces),
        disks=tuple(disks),
        balloon=balloon,
        consoles=tuple(consoles),
    )


def saved_image_name(xml: str) -> str:
    """The domain name inside a save image's XML (``saveImageGetXMLDesc``)."""
    return _text((_parse(xml).get("domain") or {}).get("name"))


def parse_capabilities(xml: str) -> HostCaps:
    """Host UUID, CPU vendor, model and features, from ``getCapabilities()``."""
    host = (_parse(xml).get("capabilities") or {}).get("host") or {}
    if not isinstance(host, dict):
        return HostCaps()
    cpu = host.get("cpu") if isinstance(host.get("cpu"), dict) else {}
    features = frozenset(
        _attr(feature, "name") for feature in cpu.get("feature") or [] if _attr(feature, "name")
    )
    cpu_xml = xmltodict.unparse({"cpu": cpu}, full_document=False) if cpu else ""
    migration = host.get("migration_features") if isinstance(host.get("migration_features"), dict) else {}
    transports = (migration.get("uri_transports") or {}) if migration else {}
    uris = transports.get("uri_transport") if isinstance(transports, dict) else None
    uris = uris if isinstance(uris, list) else [uris] if uris else []
    return HostCaps(
        uuid=_text(host.get("uuid")),
        arch=_text(cpu.get("arch")),
        cpu_vendor=_text(cpu.get("vendor")),
        cpu_model=_text(cpu.get("model")),
        cpu_features=features,
        cpu_xml=cpu_xml,
        migration_transports=tuple(_text(uri) for uri in uris),
    )


def parse_version(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + release) as text: 9000000 -> '9.0.0'."""
    if number <= 0:
        return "unknown"
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


_VENDORS = {"intel": "GenuineIntel", "amd": "AuthenticAMD"}


def host_from(
    *, hostname: str, driver: str, hypervisor_version: int, info: list[Any], free_bytes: int | None,
    caps: HostCaps, scheduler: str = "",
) -> Host:
    """The model's Host from ``getHostname()``, ``getType()``, ``getVersion()``, ``getInfo()`` and
    ``getFreeMemory()``.

    ``info`` is ``[model, memory MiB, cpus, MHz, nodes, sockets, cores, threads]``.
    """
    total_kib = int(info[1]) * 1024 if len(info) > 1 else 0
    free_kib = total_kib if free_bytes is None else min(total_kib, free_bytes // 1024)
    vendor = caps.cpu_vendor
    return Host(
        hostname=hostname,
        hypervisor=driver,
        version=parse_version(hypervisor_version),
        nr_cpus=int(info[2]) if len(info) > 2 else 0,
        cpu_mhz=int(info[3]) if len(info) > 3 else 0,
        total_kib=total_kib,
        free_kib=free_kib,
        scheduler=scheduler,
        cpu_vendor=_VENDORS.get(vendor.lower(), vendor),
        cpu_features=caps.cpu_features,
    )


# --- the device XML given to attachDeviceFlags / detachDeviceFlags ----------------------------------
# Built with ElementTree, never by formatting strings: a path or a bridge is operator input, and ElementTree
# escapes quotes, '<' and '&' in every attribute it writes.

_BUSES = (("xvd", "xen"), ("vd", "virtio"), ("sd", "scsi"), ("hd", "ide"))
# libvirt's names for the image formats (xl says vhd; libvirt and QEMU say vpc)
_LIBVIRT_FORMATS = {"vhd": "vpc"}


def disk_bus(vdev: str) -> str:
    """The bus a guest disk name implies: vd -> virtio, sd -> scsi, hd -> ide, xvd -> xen."""
    for prefix, bus in _BUSES:
        if vdev.startswith(prefix):
            return bus
    raise ValueError(f"no bus for disk name {vdev!r}")


def disk_xml(path: str, vdev: str, *, block: bool, readonly: bool = False, fmt: str = "raw",
             driver: str | None = "qemu") -> str:
    """A ``<disk>`` for a file (``block`` False) or a block device, named ``vdev`` in the guest on the bus its
    prefix implies. ``driver``: the ``<driver name=...>`` (qemu for the QEMU driver; None leaves it to libvirt)."""
    disk = ET.Element("disk", {"type": "block" if block else "file", "device": "disk"})
    attrs = {"type": _LIBVIRT_FORMATS.get(fmt, fmt)}
    if driver:
        attrs = {"name": driver, **attrs}
    ET.SubElement(disk, "driver", attrs)
    ET.SubElement(disk, "source", {"dev" if block else "file": path})
    ET.SubElement(disk, "target", {"dev": vdev, "bus": disk_bus(vdev)})
    if readonly:
        ET.SubElement(disk, "readonly")
    return ET.tostring(disk, encoding="unicode")


def interface_xml(kind: str, source: str, *, mac: str | None = None, model: str | None = None) -> str:
    """An ``<interface>`` on a host bridge (``kind`` 'bridge') or a libvirt network (``kind`` 'network')."""
    if kind not in ("bridge", "network"):
        raise ValueError(f"interface kind {kind!r}")
    nic = ET.Element("interface", {"type": kind})
    if mac:
        ET.SubElement(nic, "mac", {"address": mac})
    ET.SubElement(nic, "source", {kind: source})
    if model:
        ET.SubElement(nic, "model", {"type": model})
    return ET.tostring(nic, encoding="unicode")


def interface_type(xml: str) -> str:
    """The type of a host interface (``virInterface.XMLDesc``): ethernet, bridge, bond, vlan; "" if unreadable."""
    try:
        return ET.fromstring(xml).get("type") or ""
    except ET.ParseError:
        return ""


def device_xml(domain_xml: str, kind: str, key: str) -> str | None:
    """The whole ``<disk>`` whose target is ``key`` (kind 'disk'), or the ``<interface>`` whose MAC is ``key``
    (kind 'interface'), as the domain XML has it: what detachDeviceFlags matches best (virsh detach-disk and
    detach-interface pass the same). None when the domain has no such device."""
    root = ET.fromstring(domain_xml)
    for node in root.findall(f"./devices/{kind}"):
        if kind == "disk":
            target = node.find("target")
            found = target is not None and target.get("dev") == key
        else:
            mac = node.find("mac")
            found = mac is not None and (mac.get("address") or "").lower() == key.lower()
        if found:
            node.tail = None
            return ET.tostring(node, encoding="unicode")
    return None
