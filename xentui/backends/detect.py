"""Which backend `xentui` with no backend option should use on this machine.

xl when this is a Xen control domain (``/proc/xen/capabilities`` says ``control_d``) with ``xl``
on PATH; otherwise libvirt when libvirt-python is installed and a daemon answers at the default
URI; otherwise nothing, with a message saying what was looked for and suggesting ``--demo``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from xentui.errors import BackendUnavailable

__all__ = ["detect_backend", "libvirt_answers"]

XEN_CAPABILITIES = Path("/proc/xen/capabilities")


def libvirt_answers(uri: str | None = None) -> tuple[bool, str]:
    """(True, uri) when libvirt-python can open a read-only connection; (False, why) otherwise."""
    try:
        import libvirt  # type: ignore[import-not-found]
    except ImportError:
        return False, "libvirt-python is not installed (pip install 'xentui[libvirt]')"
    libvirt.registerErrorHandler(lambda *_: None, None)  # keep libvirt from printing to our terminal
    try:
        connection = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as error:
        return False, f"no libvirt daemon answered ({error.get_error_message()})"
    try:
        return True, connection.getURI()
    finally:
        connection.close()


def detect_backend(
    capabilities: Path = XEN_CAPABILITIES,
    which: Callable[[str], str | None] = shutil.which,
    libvirt_probe: Callable[[], tuple[bool, str]] = libvirt_answers,
) -> str:
    """"xl" or "libvirt"; BackendUnavailable listing what was looked for when neither fits."""
    looked: list[str] = []
    try:
        caps = capabilities.read_text(errors="replace").split()
    except OSError:
        caps = None
    xl = which("xl")
    if caps is not None and "control_d" in caps and xl:
        return "xl"
    if caps is None:
        looked.append(f"{capabilities}: absent (not running on Xen, or xenfs not mounted)")
    elif "control_d" not in caps:
        looked.append(f"{capabilities}: no control_d (this is a guest, not dom0)")
    else:
        looked.append("dom0, but `xl` is not on PATH (install xen-utils)")
    found, why = libvirt_probe()
    if found:
        return "libvirt"
    looked.append(f"libvirt: {why}")
    raise BackendUnavailable(
        "no hypervisor to watch here. Looked for: " + "; ".join(looked)
        + ". Try `xentui --demo` for a simulated Xen host, or --replay FILE for a recorded xentop log."
    )
