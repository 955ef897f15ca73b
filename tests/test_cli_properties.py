"""Every option that takes a value, given generated text: xentui either runs or refuses with a usage error (status 2,
one line naming the option, nothing raw from the input on the terminal); nothing raises out of `main`."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xentui import cli

# every option with a value, except -c (a generated URI could reach a real host: tests/ui/test_terminal_bytes.py
# gives it hostile URIs instead); --host and --pool are given with --demo, which they conflict with, so no ssh ever
# runs and no config file is read
OPTIONS = ["--backend", "--host", "--ssh-option", "--xl-stats", "--migrate-ssh", "--sim-domains", "--sim-hosts",
           "--seed", "--pool",
           "--replay", "--replay-interval", "--replay-speed", "--delay", "--save-dir", "--audit-log", "--require-audit",
           "--theme", "--iterations", "--format", "--completion", "--record", "--audit-syslog"]
# not generated: --log-file (it would write a file at whatever relative path came up: tests/test_logfile.py
# covers it) and --listen (a valid address would serve metrics until stopped: tests/test_metrics.py covers it)
NOT_GENERATED = {"--connect", "--log-file", "--listen"}
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # what may not reach the terminal unescaped (a newline may)

generated = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
                    max_size=30)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
    return status, out.getvalue(), err.getvalue()


def test_every_option_with_a_value_is_covered():
    parser = cli.build_parser()
    taking = {max(action.option_strings, key=len) for action in parser._actions
              if action.option_strings and action.nargs != 0 and action.dest != "help"}
    assert taking - NOT_GENERATED == set(OPTIONS) - {"--require-audit"}


@pytest.mark.parametrize("option", OPTIONS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=generated)
@example(value="\x1b]0;title\x07")
@example(value="-1")
@example(value="nan")
@example(value="1e309")
@example(value="[bold]x[/]")
@example(value="0x10")
def test_a_generated_value_runs_or_is_refused_with_a_clear_message(option, value):
    # the generated option first: a later `-i 1` keeps batch mode to one iteration whatever -i was given
    source = [] if option in ("--backend", "--replay") else ["--demo"]
    status, out, err = run_main([f"{option}={value}", *source, "-b", "-i", "1"])
    assert status in (0, 2), (status, err)
    assert "Traceback" not in err
    if status == 2:
        message = err.strip().splitlines()[-1]
        assert message.startswith("xentui: ") and not RAW.search(err), err
    else:  # it ran: any note on stderr is printable too (no domains at all prints nothing, as xentop does)
        assert not RAW.search(err), err
        assert out.strip() or option == "--backend"
