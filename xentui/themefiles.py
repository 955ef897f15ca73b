"""Theme files shipped in the package (``themes/`` in the repository, ``xentui/themes`` when installed).

Read here as plain data so any layer can list them; the TUI turns them into Textual themes.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable


def theme_dir() -> Traversable:
    return resources.files("xentui.themes")


def load_theme_specs(errors: dict[str, str] | None = None) -> dict[str, dict]:
    """Every ``*.toml`` theme by its ``name``. A broken file (not TOML, not UTF-8, no name) is skipped, and
    what is wrong with it goes into ``errors`` (file name -> reason) for the caller to say."""
    specs: dict[str, dict] = {}
    for entry in sorted(theme_dir().iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            spec = tomllib.loads(entry.read_text(encoding="utf-8"))
            name = spec["name"]
            if not isinstance(name, str) or not name:
                raise ValueError("its name is not a word")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError) as error:
            if errors is not None:
                errors[entry.name] = f"no name in it ({error})" if isinstance(error, KeyError) else str(error)
            continue
        specs[name] = spec
    return specs
