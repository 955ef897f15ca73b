"""Command line: choose a backend, then either the interactive screen or batch output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xentui import __version__
from xentui.backends.base import Backend, BackendError, BackendUnavailable, InvalidArgument
from xentui.backends.readonly import ReadOnlyBackend
from xentui.backends.sim import MAX_DOMAINS, SimBackend, SimCluster
from xentui.batch import BatchFormat, BatchOptions, run_batch
from xentui.themefiles import load_theme_specs
from xentui.validate import parse_seconds

BACKENDS = ("auto", "xl", "libvirt", "sim", "replay")


def _delay(text: str) -> float:
    try:
        return parse_seconds(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{what} must be {bounds}, not {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xentui",
        description="A terminal dashboard for Xen and libvirt hosts: xentop's live table, one you can act from.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"xentui {__version__}")
    source = parser.add_argument_group("what to watch")
    source.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="where the domains come from (default: auto: xl in a Xen dom0, else libvirt)")
    source.add_argument("--demo", action="store_true", help="the simulated Xen host (same as --backend sim)")
    source.add_argument("-c", "--connect", default=None, metavar="URI",
                        help="libvirt URI, as virsh -c (e.g. xen:///system, qemu+ssh://host/system)")
    source.add_argument("--xl-stats", choices=("auto", "xenstat", "xentop"), default="auto",
                        help="xl backend statistics: libxenstat (auto, when it loads) or one `xentop -b` process")
    source.add_argument("--migrate-ssh", default=None, metavar="CMD",
                        help="xl backend: the command xl migrate runs instead of ssh (xl migrate -s)")
    source.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="play a recorded `xentop -b` log as if live (same as --backend replay)")
    source.add_argument("--replay-interval", type=_delay, default=3.0, metavar="SEC",
                        help="the -d the log was recorded with (default 3, xentop's own)")
    source.add_argument("--replay-speed", type=_delay, default=1.0, metavar="X",
                        help="play faster (2 = twice the recorded pace)")
    source.add_argument("--sim-domains", type=_int_in(0, MAX_DOMAINS, "the simulated domain count"), default=12,
                        metavar="N",
                        help=f"domUs on the simulated host, 0..{MAX_DOMAINS} (default 12)")
    source.add_argument("--seed", type=int, default=None,
                        help="seed for the simulation: the same seed gives the same host")
    source.add_argument("--read-only", action="store_true", help="watch only: every action is refused")
    source.add_argument("--save-dir", type=Path, default=None, metavar="DIR",
                        help="where save writes images and restore looks (default: $XDG_STATE_HOME/xentui/saves)")
    source.add_argument("--audit-log", type=Path, default=None, metavar="PATH",
                        help="every action attempted, one JSON line each (default: $XDG_STATE_HOME/xentui/audit.log)")
    source.add_argument("--theme", default=None,
                        help="xentui-dark (default), xentui-light, xentui-plain (the default with NO_COLOR)")

    batch = parser.add_argument_group("batch mode (like xentop -b)")
    batch.add_argument("-b", "--batch", action="store_true", help="print to stdout instead of the screen")
    batch.add_argument("-i", "--iterations", type=_int_in(1, None, "iterations"), default=None, metavar="N",
                       help="stop after N iterations (default: run until interrupted)")
    batch.add_argument("-d", "--delay", type=_delay, default=3.0, metavar="SEC",
                       help="seconds between updates, fractions allowed (default 3)")
    batch.add_argument("--format", choices=[f.value for f in BatchFormat], default=BatchFormat.XENTOP.value,
                       help="xentop: exactly xentop -b's layout; csv; json: one object per line")
    batch.add_argument("-n", "--networks", action="store_true", help="per-vif rows / data")
    batch.add_argument("-x", "--vbds", action="store_true", help="per-vbd rows / data")
    batch.add_argument("-v", "--vcpus", action="store_true", help="per-vCPU rows / data")
    batch.add_argument("-f", "--full-name", action="store_true", help="do not cut names to 10 characters")
    batch.add_argument("-r", "--repeat-header", action="store_true", help="header before every domain")
    batch.add_argument("-z", "--dom0-first", action="store_true", help="Domain-0 first, the rest sorted")
    return parser


def _choose_backend(args: argparse.Namespace) -> str:
    if args.replay is not None or args.backend == "replay":
        return "replay"
    if args.demo:
        return "sim"
    if args.backend == "auto":
        if args.connect is not None:
            return "libvirt"
        from xentui.backends.detect import detect_backend

        return detect_backend()
    return args.backend


def make_backend(args: argparse.Namespace) -> Backend:
    backend: Backend
    choice = _choose_backend(args)
    if choice == "replay":
        if args.replay is None:
            raise InvalidArgument("--backend replay needs --replay FILE")
        from xentui.backends.replay import ReplayBackend  # only here: its parser is not needed otherwise

        backend = ReplayBackend(args.replay, interval=args.replay_interval)
        # one recorded iteration per poll, at the recorded pace times the speed
        args.delay = args.replay_interval / args.replay_speed
        if args.iterations is None:
            args.iterations = backend.iterations
    elif choice == "xl":
        from xentui.backends.xl import XlBackend

        backend = XlBackend(stats=args.xl_stats, delay=args.delay, migrate_ssh=args.migrate_ssh)
        backend.check_environment()
    elif choice == "libvirt":
        try:
            from xentui.backends.libvirt import LibvirtBackend
        except ImportError as error:
            raise BackendUnavailable(f"the libvirt backend cannot load: {error}") from error
        backend = LibvirtBackend(args.connect, read_only=args.read_only)
    else:
        seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
        backend = SimBackend(SimCluster(seed=seed, domains=args.sim_domains))
    if args.read_only:
        backend = ReadOnlyBackend(backend)
    return backend


def _batch_options(args: argparse.Namespace) -> BatchOptions:
    return BatchOptions(
        format=BatchFormat(args.format), iterations=args.iterations, delay=args.delay,
        networks=args.networks, vbds=args.vbds, vcpus=args.vcpus, full_name=args.full_name,
        repeat_header=args.repeat_header, dom0_first=args.dom0_first,
    )


async def _run_batch_until_signal(backend: Backend, options: BatchOptions) -> None:
    """Run batch mode; SIGTERM ends it like Ctrl-C: what was printed stays printed."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run_batch(backend, options, sys.stdout)
    except asyncio.CancelledError:
        pass
    finally:
        await backend.close()


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush does not complain."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    themes = load_theme_specs()
    if args.theme is not None and args.theme not in themes:
        parser.error(f"no theme named {args.theme!r}; available: {', '.join(sorted(themes))}")
    try:
        backend = make_backend(args)
    except BackendError as error:
        print(f"xentui: {error}", file=sys.stderr)
        return 2
    if not args.batch:
        # textual loads only when the screen is wanted: batch mode starts fast and stays small
        from xentui.audit import AuditLog
        from xentui.ui.app import StartOptions, run_app
        from xentui.ui.table import ViewOptions

        view = ViewOptions(networks=args.networks, vbds=args.vbds, vcpus=args.vcpus,
                           repeat_header=args.repeat_header, dom0_first=args.dom0_first)
        options = StartOptions(delay=args.delay, theme=args.theme, view=view, tune_gc=True, save_dir=args.save_dir,
                               audit=AuditLog(args.audit_log))
        return run_app(backend, options)
    gc.enable()  # the screen turns it back on after its first frame; batch mode has none
    try:
        asyncio.run(_run_batch_until_signal(backend, _batch_options(args)))
    except KeyboardInterrupt:
        pass
    except BackendError as error:
        print(f"xentui: {error}", file=sys.stderr)
        return 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 0
