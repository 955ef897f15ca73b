"""``--log-file`` and ``--debug``: what went wrong, for reading after the fact (the screen owns the terminal).

Every module logs under the ``xentui`` logger: a poll that failed and when it came back, each action's result,
a pool's host that went down or came back, and with ``--debug`` each sample's cost and each command run on a
host. Without ``--log-file`` nothing is written, unless ``--debug`` asks (then to ``$XDG_STATE_HOME/xentui/
xentui.log``). The file is reopened when logrotate moves it (a WatchedFileHandler): no signal needed.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from xentui.audit import state_dir

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def default_log_path() -> Path:
    return state_dir() / "xentui.log"


def setup(path: Path | None, *, debug: bool) -> Path | None:
    """Send xentui's log to ``path`` (made with its directory, owner-only); None and not debug: nowhere.
    Returns the file used. OSError when it cannot be opened: the caller says so."""
    logger = logging.getLogger("xentui")
    logger.propagate = False  # never to the terminal under the screen
    if path is None and not debug:
        logger.addHandler(logging.NullHandler())
        return None
    path = Path(path) if path is not None else default_log_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8", delay=False)
    path.chmod(0o600)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    return path
