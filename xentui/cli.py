"""Command line: choose a backend, then either the interactive screen or batch output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NoReturn

from xentui import __version__
from xentui.backends.base import Backend, BackendError, BackendUnavailable, InvalidArgument
from xentui.backends.readonly import ReadOnlyBackend
from xentui.backends.registry import BACKENDS as REGISTERED
from xentui.backends.registry import BackendOptions, picking_options
from xentui.backends.sim import MAX_DOMAINS, MAX_HOSTS
from xentui.batch import BatchFormat, BatchOptions, run_batch
from xentui.cli_docs import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    bash_completion,
    exit_codes_text,
    man_page,
)
from xentui.textsafe import printable
from xentui.themefiles import load_theme_specs
from xentui.validate import MAX_DELAY_S, MIN_DELAY_S, check_libvirt_uri, parse_seconds


def _delay(text: str) -> float:
    try:
        return parse_seconds(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None


MIN_SPEED, MAX_SPEED = 0.01, 1000.0
"""--replay-speed is a factor of the recorded pace: 1 as recorded, 2 twice as fast, 0.5 half as fast."""


def _speed(text: str) -> float:
    shown = text.strip()
    try:
        value = float(shown)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{shown!r} is not a factor: {MIN_SPEED:g} to {MAX_SPEED:g}")
    if value < MIN_SPEED:
        raise argparse.ArgumentTypeError(f"{shown} is too slow: at least {MIN_SPEED:g}")
    if value > MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{shown} is too fast: at most {MAX_SPEED:g}")
    return value


def _ssh_destination(text: str) -> str:
    from xentui.backends.ssh import check_destination

    try:
        return check_destination(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _libvirt_uri(text: str) -> str:
    """-c: a libvirt URI, checked before libvirt (or the ssh it runs) sees it."""
    try:
        return check_libvirt_uri(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _ssh_option(text: str) -> str:
    if not text.strip() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"not an ssh option: {text!r} (one line, as ssh -o takes it)")
    return text


def _shown_config_path() -> str:
    from xentui.config import config_path

    return printable(str(config_path()))


def _int_in(low: int, high: int | None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")  # after "argument --sim-domains: "
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse echoes what it did not understand, and an argument pasted from a log may carry escapes."""

    def error(self, message: str) -> NoReturn:
        super().error(printable(message))


def _listen(text: str) -> tuple[str, int]:
    from xentui.metrics import parse_listen

    try:
        return parse_listen(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xentui",
        description="A terminal dashboard for Xen and libvirt hosts: xentop's live table, one you can act from.",
        epilog=f"config file: {_shown_config_path()}\n\n{exit_codes_text()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"xentui {__version__}")
    parser.add_argument("--man-page", action="store_true", help="print xentui's man page (roff), made from these "
                        "options, and exit: xentui --man-page > /usr/local/share/man/man1/xentui.1")
    parser.add_argument("--completion", choices=("bash", "zsh"), default=None,
                        help="print the shell completion script and exit (zsh: run bashcompinit first)")
    source = parser.add_argument_group(
        "what to watch", "--backend, --demo, -c and --replay each pick a backend: give one of them, or none (auto)")
    source.add_argument("--backend", choices=("auto", *REGISTERED), default="auto",
                        help="where the domains come from (default: auto: xl in a Xen dom0, else libvirt)")
    source.add_argument("--demo", action="store_true", help="the simulated Xen host (same as --backend sim)")
    source.add_argument("-c", "--connect", default=None, metavar="URI", action="append", type=_libvirt_uri,
                        help="libvirt URI, as virsh -c (e.g. xen:///system, qemu+ssh://host/system); "
                             "several: a pool, one table")
    source.add_argument("--host", default=None, metavar="DEST", type=_ssh_destination, action="append",
                        help="a dom0 to watch with xl over the system ssh (e.g. root@dom0a; your ~/.ssh/config, "
                             "agent and ProxyJump apply; no password prompts: BatchMode); several: a pool")
    source.add_argument("--ssh-option", action="append", default=[], metavar="OPT", type=_ssh_option,
                        help="one more ssh argument for --host, as ssh -o takes it (e.g. Port=2222); repeatable")
    source.add_argument("--xl-stats", choices=("auto", "xenstat", "xentop"), default="auto",
                        help="xl backend statistics: libxenstat (auto, when it loads) or one `xentop -b` process")
    source.add_argument("--migrate-ssh", default=None, metavar="CMD",
                        help="xl backend: the command xl migrate runs instead of ssh (xl migrate -s)")
    source.add_argument("--sim-domains", type=_int_in(0, MAX_DOMAINS), default=12,
                        metavar="N",
                        help=f"domUs on the simulated host, 0..{MAX_DOMAINS} (default 12)")
    source.add_argument("--pool", nargs="?", const="", default=None, metavar="FILE",
                        help="the hosts a config file names, in one table (default file: "
                             f"{_shown_config_path()}; same as --backend pool)")
    source.add_argument("--sim-hosts", type=_int_in(1, MAX_HOSTS), default=None, metavar="N",
                        help=f"a simulated pool of N hosts, 1..{MAX_HOSTS}, each with --sim-domains domUs "
                             "(default: the demo's three hosts, the first with --sim-domains; 1: the first alone)")
    source.add_argument("--seed", type=int, default=None, metavar="N",
                        help="seed for the simulation: the same seed gives the same host")

    replay = parser.add_argument_group("replay a recorded `xentop -b` log")
    replay.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="play the log as if live (same as --backend replay): `xentop -b` output, or xentui's "
                             "JSON Lines (--record, -b --format json)")
    replay.add_argument("--replay-interval", type=_delay, default=3.0, metavar="SEC",
                        help=f"the -d the log was recorded with, {MIN_DELAY_S:g}..{MAX_DELAY_S:g} "
                             "(default 3, xentop's own)")
    replay.add_argument("--replay-speed", type=_speed, default=1.0, metavar="X",
                        help=f"a factor: 2 plays twice as fast, 0.5 half ({MIN_SPEED:g}..{MAX_SPEED:g}, default 1); "
                             f"the pace, interval / speed, is kept within {MIN_DELAY_S:g}..{MAX_DELAY_S:g} s")

    show = parser.add_argument_group("what to show (the screen and batch mode)")
    show.add_argument("-d", "--delay", type=_delay, default=3.0, metavar="SEC",
                      help=f"seconds between updates, {MIN_DELAY_S:g}..{MAX_DELAY_S:g}, fractions allowed "
                           "(default 3; d changes it on the screen)")
    show.add_argument("-n", "--networks", action="store_true", help="per-vif rows (json: data); n on the screen")
    show.add_argument("-x", "--vbds", action="store_true", help="per-vbd rows (json: data); b on the screen")
    show.add_argument("-v", "--vcpus", action="store_true", help="per-vCPU rows (json: data); v on the screen")
    show.add_argument("-r", "--repeat-header", action="store_true",
                      help="header before every domain; r on the screen")
    show.add_argument("-z", "--dom0-first", action="store_true",
                      help="Domain-0 first, the rest sorted; z on the screen")

    screen = parser.add_argument_group("actions and looks (the screen)")
    screen.add_argument("--read-only", action="store_true", help="watch only: every action is refused")
    screen.add_argument("--save-dir", type=Path, default=None, metavar="DIR",
                        help="where save writes images and restore looks (default: $XDG_STATE_HOME/xentui/saves)")
    screen.add_argument("--audit-log", type=Path, default=None, metavar="PATH",
                        help="every action attempted, one JSON line each (default: $XDG_STATE_HOME/xentui/audit.log)")
    screen.add_argument("--audit-syslog", nargs="?", const="/dev/log", default=None, metavar="SOCKET",
                        help="send each audit line to syslog too (authpriv, ident xentui; default socket /dev/log)")
    screen.add_argument("--require-audit", action="store_true",
                        help="refuse actions while the audit log cannot be written (default: act, and say so)")
    screen.add_argument("--record", type=Path, default=None, metavar="FILE",
                        help="append every sample the screen shows to FILE (JSON Lines, every vif, vbd and vCPU), "
                             "for --replay FILE after the incident")
    screen.add_argument("--log-file", type=Path, default=None, metavar="PATH",
                        help="write what went wrong (failed polls, actions, hosts down and back) to PATH, for "
                             "reading after the fact; reopened when logrotate moves it")
    screen.add_argument("--debug", action="store_true",
                        help="log more: each sample's cost, each command run on a host (to --log-file, default "
                             "$XDG_STATE_HOME/xentui/xentui.log)")
    screen.add_argument("--theme", default=None, metavar="NAME",
                        help="xentui-dark (default), xentui-light, xentui-plain (default if NO_COLOR is not empty)")

    batch = parser.add_argument_group("batch mode (like xentop -b)")
    batch.add_argument("-b", "--batch", action="store_true", help="print to stdout instead of the screen")
    batch.add_argument("-i", "--iterations", type=_int_in(1, None), default=None, metavar="N",
                       help="stop after N iterations (default: run until interrupted)")
    batch.add_argument("--format", choices=[f.value for f in BatchFormat], default=BatchFormat.XENTOP.value,
                       help="xentop: exactly xentop -b's layout; csv; json: one object per line; openmetrics; "
                            "prometheus: Prometheus' text format (node_exporter's textfile collector)")
    batch.add_argument("-f", "--full-name", action="store_true", help="do not cut names to 10 characters")
    batch.add_argument("--listen", default=None, metavar="ADDR:PORT", type=_listen,
                       help="serve the metrics over HTTP at ADDR:PORT while sampling every -d seconds (OpenMetrics, "
                            "or Prometheus' text to a scraper that does not ask for it); `xentui export --listen "
                            "ADDR:PORT` is -b --format openmetrics --listen ADDR:PORT")
    return parser


def _backend_choices(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Each option given that picks a backend: (the option, named for a message, and the backend it picks)."""
    chosen = []
    if args.backend != "auto":
        chosen.append((f"--backend {args.backend}", args.backend))
    for spec in picking_options():
        value = getattr(args, spec.dest or "")
        if value is not None and value is not False:
            chosen.append((spec.option or spec.name, spec.name))
    return chosen


def check_backend_choice(args: argparse.Namespace) -> None:
    """Refuse options that pick different backends (--demo with --replay, --backend xl with -c...)."""
    chosen = _backend_choices(args)
    first, first_backend = chosen[0] if chosen else ("", "")
    for option, backend in chosen[1:]:
        if backend != first_backend:
            raise InvalidArgument(f"{first} and {option} pick two backends: give one")
    if args.backend == "replay" and args.replay is None:
        raise InvalidArgument("--backend replay needs --replay FILE")


def _choose_backend(args: argparse.Namespace) -> str:
    chosen = _backend_choices(args)
    if chosen:
        return chosen[0][1]  # check_backend_choice: every option given picks the same one
    from xentui.backends.detect import detect_backend

    return detect_backend()


def replay_pace(interval: float, speed: float) -> tuple[float, str | None]:
    """The delay between replayed iterations, kept within -d's bounds, and a note when it was kept."""
    wanted = interval / speed
    delay = min(max(wanted, MIN_DELAY_S), MAX_DELAY_S)
    if delay == wanted:
        return delay, None
    how, bound = ("faster", "floor") if wanted < delay else ("slower", "ceiling")
    return delay, f"--replay-speed {speed:g}: {how} than the {delay:g} s {bound}; playing at speed {interval / delay:g}"


def make_backend(args: argparse.Namespace) -> Backend:
    check_backend_choice(args)
    choice = _choose_backend(args)
    backend = REGISTERED[choice].build(BackendOptions(
        connect=args.connect[0] if args.connect else None, host=args.host[0] if args.host else None,
        connects=tuple(args.connect or ()), hosts=tuple(args.host or ()), sim_hosts=args.sim_hosts, pool=args.pool,
        ssh_options=tuple(f"-o{option}" for option in args.ssh_option),
        xl_stats=args.xl_stats, migrate_ssh=args.migrate_ssh, delay=args.delay,
        sim_domains=args.sim_domains, seed=args.seed, replay=args.replay, replay_interval=args.replay_interval,
        read_only=args.read_only))
    if choice == "replay":
        # one recorded iteration per poll, at the recorded pace times the speed, never below the floor
        args.delay, note = replay_pace(args.replay_interval, args.replay_speed)
        if note is not None:
            print(f"xentui: {printable(note)}", file=sys.stderr)
        if args.iterations is None:
            args.iterations = backend.iterations  # type: ignore[attr-defined]
        from xentui.audit import default_audit_path

        backend.load_actions(args.audit_log or default_audit_path())  # type: ignore[attr-defined]
    if args.read_only:
        backend = ReadOnlyBackend(backend)
    return backend


def _batch_options(args: argparse.Namespace) -> BatchOptions:
    return BatchOptions(
        format=BatchFormat(args.format), iterations=args.iterations, delay=args.delay,
        networks=args.networks, vbds=args.vbds, vcpus=args.vcpus, full_name=args.full_name,
        repeat_header=args.repeat_header, dom0_first=args.dom0_first,
    )


async def _until_signal(backend: Backend, work: Awaitable[object]) -> None:
    """Run ``work`` until it ends or SIGTERM comes (which ends it like Ctrl-C: what was printed stays printed),
    then close the backend."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await work
    except asyncio.CancelledError:
        pass
    finally:
        await backend.close()


def _failed(error: BaseException, status: int) -> int:
    """Say why xentui stops, on stderr and in the log; its exit status."""
    logging.getLogger("xentui").error("%s", error)
    print(f"xentui: {printable(str(error))}", file=sys.stderr)
    return status


def _export(backend: Backend, args: argparse.Namespace) -> int:
    """The exporter: until Ctrl-C or SIGTERM. One that cannot listen (the port taken) is a usage error."""
    from xentui.metrics import serve

    try:
        asyncio.run(_until_signal(backend, serve(backend, args.listen, args.delay)))
    except KeyboardInterrupt:
        pass
    except InvalidArgument as error:
        return _failed(error, EXIT_USAGE)
    return EXIT_OK


def _settings_as_defaults(parser: argparse.ArgumentParser, settings: object) -> None:
    """The config file's [settings] as the options' defaults: what is typed on the command line wins."""
    defaults: dict[str, object] = {}
    for key in ("delay", "theme", "networks", "vbds", "vcpus", "dom0_first"):
        value = getattr(settings, key)
        if value not in (None, False):
            defaults[key] = float(value) if key == "delay" else value  # type: ignore[arg-type]
    for key, option in (("save_dir", "save_dir"), ("audit_log", "audit_log")):
        value = getattr(settings, key)
        if value:
            defaults[option] = Path(value).expanduser()
    parser.set_defaults(**defaults)


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush does not complain."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    from xentui.config import load_settings

    settings, config_problems = load_settings()
    _settings_as_defaults(parser, settings)  # the command line wins over the config file
    argv = list(sys.argv[1:] if argv is None else argv)
    exporting = bool(argv) and argv[0] == "export"
    if exporting:  # `xentui export --listen ADDR:PORT [options]`: the long-running exporter
        argv = ["-b", "--format", "openmetrics", *argv[1:]]
    args = parser.parse_args(argv)
    if exporting and args.listen is None:
        parser.error("export needs --listen ADDR:PORT (e.g. 127.0.0.1:9731)")
    if args.listen is not None and args.format not in ("openmetrics", "prometheus"):
        parser.error("--listen serves metrics: use it with --format openmetrics (or xentui export)")
    if args.man_page:
        print(man_page(parser, __version__, _shown_config_path()), end="")
        return EXIT_OK
    if args.completion:
        print(bash_completion(parser), end="")
        return EXIT_OK
    try:
        from xentui.logfile import setup

        log_path = setup(args.log_file, debug=args.debug)
    except OSError as error:
        parser.error(f"--log-file {printable(str(args.log_file))}: {error.strerror or error}")
    if log_path is not None:
        logging.getLogger("xentui").info("xentui %s started: %s", __version__, " ".join(map(printable, argv)))
    from xentui.config import config_dir

    themes = load_theme_specs(user_dir=config_dir() / "themes")
    if args.theme is not None and args.theme not in themes:
        parser.error(f"no theme {args.theme!r}: {', '.join(sorted(themes))}")
    try:
        check_backend_choice(args)
    except InvalidArgument as error:
        parser.error(str(error))  # a usage error: the usage line, the reason, status 2
    try:
        backend = make_backend(args)
    except InvalidArgument as error:  # a URI, a config file, a log that cannot be used: the operator's to fix
        return _failed(error, EXIT_USAGE)
    except BackendError as error:  # no hypervisor here, a host that does not answer, a daemon down
        return _failed(error, EXIT_UNAVAILABLE)
    backend.warm_up()  # a connection opens while the rest starts
    if not args.batch:
        # textual loads only when the screen is wanted: batch mode starts fast and stays small
        from xentui.audit import AuditLog
        from xentui.ui.app import StartOptions, run_app
        from xentui.ui.table import ViewOptions

        view = ViewOptions(networks=args.networks, vbds=args.vbds, vcpus=args.vcpus,
                           repeat_header=args.repeat_header, dom0_first=args.dom0_first,
                           sort_column=settings.sort or "cpu_pct", sort_reverse=settings.reverse,
                           order=settings.columns or (), name_width=settings.name_width)
        if settings.columns:
            from xentui.config import COLUMN_IDS

            view.hidden = set(COLUMN_IDS) - set(settings.columns)
        options = StartOptions(delay=args.delay, theme=args.theme, view=view, tune_gc=True, save_dir=args.save_dir,
                               audit=AuditLog(args.audit_log, syslog=args.audit_syslog),
                               require_audit=args.require_audit, keymap=settings.keymap,
                               config_problems=config_problems, record=args.record)
        return run_app(backend, options)
    gc.enable()  # the screen turns it back on after its first frame; batch mode has none
    if args.listen is not None:
        return _export(backend, args)
    try:
        asyncio.run(_until_signal(backend, run_batch(backend, _batch_options(args), sys.stdout)))
    except KeyboardInterrupt:
        pass
    except BackendUnavailable as error:  # the first connection, or a daemon that went away: nothing to watch
        return _failed(error, EXIT_UNAVAILABLE)
    except BackendError as error:
        return _failed(error, EXIT_FAILURE)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return EXIT_OK
