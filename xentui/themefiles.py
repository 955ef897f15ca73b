"""Theme files shipped in the package (``themes/`` in the repository, ``xentui/themes`` when installed).

Read here as plain data so any layer can list them; the TUI turns them into Textual themes.
"""

from __future__ import annotations

import contextlib
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


def theme_dir() -> Traversable:
    return resources.files("xentui.themes")


def load_theme_specs(errors: dict[str, str] | None = None, user_dir: Path | None = None) -> dict[str, dict]:
    """Every ``*.toml`` theme by its ``name``: the shipped ones, then the operator's from ``user_dir`` (``themes/``
    beside the config file; one of the same name replaces the shipped one). A broken file (not TOML, not UTF-8,
    no name) is skipped, and what is wrong with it goes into ``errors`` (file -> reason) for the caller to say."""
    specs: dict[str, dict] = {}
    entries: list[tuple[str, Traversable | Path]] = [
        (entry.name, entry) for entry in sorted(theme_dir().iterdir(), key=lambda item: item.name)]
    if user_dir is not None:
        with contextlib.suppress(OSError):  # no such directory (the usual case), or unreadable: no user themes
            entries += [(str(entry), entry) for entry in sorted(user_dir.iterdir(), key=lambda item: item.name)]
    for shown, entry in entries:  # shown: a shipped theme by its file's name, the operator's by its path
        if not entry.name.endswith(".toml"):
            continue
        try:
            spec = tomllib.loads(entry.read_text(encoding="utf-8"))
            name = spec["name"]
            if not isinstance(name, str) or not name:
                raise ValueError("its name is not a word")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, ValueError) as error:
            if errors is not None:
                errors[shown] = f"no name in it ({error})" if isinstance(error, KeyError) else str(error)
            continue
        specs[name] = spec
    return specs
