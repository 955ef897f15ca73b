"""Theme files shipped in the package (``themes/`` in the repository, ``xentui/themes`` when installed).

Read here as plain data so any layer can list them; the TUI turns them into Textual themes.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable


def theme_dir() -> Traversable:
    return resources.files("xentui.themes")


def load_theme_specs() -> dict[str, dict]:
    """Every ``*.toml`` theme by its ``name``; a broken file is skipped with its error recorded."""
    specs: dict[str, dict] = {}
    for entry in sorted(theme_dir().iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".toml"):
            continue
        spec = tomllib.loads(entry.read_text(encoding="utf-8"))
        specs[spec["name"]] = spec
    return specs
