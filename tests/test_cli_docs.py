"""The man page, the completion and the exit codes: made from the parser, so every option is in them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from xentui.cli import build_parser, main
from xentui.cli_docs import EXIT_UNAVAILABLE, EXIT_USAGE


def options() -> list[str]:
    return [o for a in build_parser()._actions for o in a.option_strings]


def test_the_man_page_has_every_option_and_the_exit_codes(capsys):
    assert main(["--man-page"]) == 0
    page = capsys.readouterr().out
    for option in options():
        assert f".B {option.replace('-', chr(92) + '-')}" in page or option.replace("-", "\\-") in page, option
    assert ".SH EXIT STATUS" in page and "\n.B 3\n" in page and "config.toml" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (apt-get install groff-base)")
def test_the_man_page_renders_without_a_warning(capsys):
    main(["--man-page"])
    page = capsys.readouterr().out
    done = subprocess.run(["groff", "-man", "-ww", "-z"], input=page, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""


def complete(script: str, *words: str) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    program = (f"{script}\nCOMP_WORDS=(xentui {line}); COMP_CWORD={len(words)}; _xentui; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_every_option_and_the_choices_of_one(capsys):
    main(["--completion", "bash"])
    script = capsys.readouterr().out
    assert complete(script, "--back") == ["--backend"]
    assert set(complete(script, "--")) == {o for o in options() if o.startswith("--")}
    backends = next(a.choices for a in build_parser()._actions if "--backend" in a.option_strings)
    assert set(complete(script, "--backend", "")) == set(backends) and "xl" in backends
    assert complete(script, "--format", "j") == ["json"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xentui", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "80"})


def test_exit_codes_tell_a_usage_error_from_nothing_to_watch(tmp_path):
    assert run("--delay", "0").returncode == EXIT_USAGE
    assert run("--replay", str(tmp_path / "missing.log"), "-b").returncode == EXIT_USAGE
    unreachable = run("--host", "root@127.0.0.1", "--ssh-option", "Port=1", "--ssh-option", "ConnectTimeout=5",
                      "-b", "-i", "1")
    assert unreachable.returncode == EXIT_UNAVAILABLE, unreachable.stderr
    assert "exit status:" in run("--help").stdout


def test_a_libvirt_daemon_that_does_not_answer_is_nothing_to_watch():
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (tests/libvirtlab/setup.sh installs it)")
    refused = run("-c", "qemu+tcp://127.0.0.1:1/system", "-b", "-i", "1")
    assert refused.returncode == EXIT_UNAVAILABLE and "cannot connect to libvirt" in refused.stderr
