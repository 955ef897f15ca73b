"""--log-file and --debug: what went wrong, written where an operator can read it after the fact."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from xentui.logfile import setup


@pytest.fixture(autouse=True)
def fresh_logger():
    logger = logging.getLogger("xentui")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers.clear()
    yield
    for handler in logger.handlers:
        handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved


def test_without_a_log_file_nothing_is_written_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert setup(None, debug=False) is None
    logging.getLogger("xentui.ui").warning("something")
    assert not (tmp_path / "xentui").exists()


def test_the_log_file_is_private_and_reopened_after_logrotate_moves_it(tmp_path):
    path = tmp_path / "logs" / "xentui.log"
    assert setup(path, debug=False) == path
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    log = logging.getLogger("xentui.actions")
    log.info("pause guest1: done")
    log.debug("not without --debug")
    path.rename(tmp_path / "logs" / "xentui.log.1")
    log.warning("destroy guest2 failed: no such domain")
    assert "pause guest1: done" in (tmp_path / "logs" / "xentui.log.1").read_text()
    moved_on = path.read_text()
    assert "WARNING xentui.actions: destroy guest2 failed" in moved_on and "not without" not in moved_on


def test_debug_alone_logs_to_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    path = setup(None, debug=True)
    assert path == tmp_path / "xentui" / "xentui.log"
    logging.getLogger("xentui.run").debug("run: xl list")
    assert "DEBUG xentui.run: run: xl list" in path.read_text()


def test_a_failing_batch_run_leaves_its_reason_in_the_log(tmp_path):
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh installs it)")
    log = tmp_path / "x.log"
    done = subprocess.run([sys.executable, "-m", "xentui", "-c", "qemu+tcp://127.0.0.1:1/system", "-b", "-i", "1",
                           "--log-file", str(log)], capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.returncode == 3
    text = log.read_text()
    assert "started: -c qemu+tcp://127.0.0.1:1/system" in text
    assert "ERROR xentui: cannot connect to libvirt at qemu+tcp://127.0.0.1:1/system" in text


def test_an_unwritable_log_file_is_a_usage_error(tmp_path):
    (tmp_path / "dir").mkdir()
    done = subprocess.run([sys.executable, "-m", "xentui", "--demo", "-b", "-i", "1", "--log-file",
                           str(tmp_path / "dir")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--log-file" in done.stderr
