"""What the lab tests ask of dom0: one backend operation through in_dom0.py, `xl list`, and waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from xentui.backends.xl_parsers import XlListEntry, parse_xl_list

PY = "/root/venv/bin/python"
IN_DOM0 = "/root/xentui/tests/xenlab/in_dom0.py"


def in_dom0(xenlab, *args: str, timeout: float = 300, file_size_limit: int | None = None) -> dict:
    """in_dom0.py's one JSON line for ARGS (the xl backend; `--libvirt URI` first for the libvirt one).
    With ``file_size_limit`` (bytes), it and the tools it runs cannot write a file bigger (prlimit --fsize)."""
    limit = ["prlimit", f"--fsize={file_size_limit}"] if file_size_limit is not None else []
    result = xenlab.ssh([*limit, PY, IN_DOM0, *args], timeout=timeout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def xl_list(xenlab) -> dict[str, XlListEntry]:
    return {entry.name: entry for entry in parse_xl_list(xenlab.ssh(["xl", "list"]).stdout)}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)
