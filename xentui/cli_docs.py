"""The man page and the shell completion, made from the argument parser itself so they never drift from it:
``xentui --man-page > xentui.1``, ``xentui --completion bash > /etc/bash_completion.d/xentui`` (zsh: the same
script after ``autoload -U bashcompinit && bashcompinit``)."""

from __future__ import annotations

import argparse
import datetime
import re
import textwrap

EXIT_OK = 0
EXIT_FAILURE = 1  # the backend failed while running (batch mode), or the screen ended on an error
EXIT_USAGE = 2  # a bad option or argument, a config file or log that cannot be used: nothing was watched
EXIT_UNAVAILABLE = 3  # nothing to watch: no hypervisor here, a host that does not answer, a daemon down

EXIT_CODES = (
    (EXIT_OK, "success; in batch mode, every iteration asked for was printed (or Ctrl-C ended it)"),
    (EXIT_FAILURE, "the backend failed while running (batch mode: what was printed stays printed)"),
    (EXIT_USAGE, "a bad option or argument: the usage line and the reason are printed; nothing was watched"),
    (EXIT_UNAVAILABLE, "nothing to watch: no Xen toolstack or libvirt here, a host ssh cannot reach, a daemon "
                       "that does not answer; the message says what was looked for"),
)


def exit_codes_text() -> str:
    return "exit status:\n" + "\n".join(
        textwrap.fill(text, 78, initial_indent=f"  {code}  ", subsequent_indent="     ") for code, text in EXIT_CODES)


def _actions(parser: argparse.ArgumentParser) -> list[tuple[str | None, list[argparse.Action]]]:
    groups = []
    for group in parser._action_groups:  # argparse keeps them only here; its own help reads them the same way
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if actions:
            groups.append((group.title, actions))
    return groups


def _roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    text = action.help or ""
    if "%(" in text:
        text = text % {"default": action.default, "prog": parser.prog}
    if action.choices and not action.metavar:
        text += f" (one of: {', '.join(map(str, action.choices))})"
    return text


def _spelling(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest  # type: ignore[return-value]
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices else action.dest.upper())
    if action.nargs == "?":
        metavar = f"[{metavar}]"
    return ", ".join(f"{option} {metavar}" for option in action.option_strings)


def man_page(parser: argparse.ArgumentParser, version: str, config: str) -> str:
    date = datetime.date.today().isoformat()
    lines = [
        f'.TH XENTUI 1 "{date}" "xentui {_roff(version)}" "User Commands"',
        ".SH NAME",
        f"xentui \\- {_roff(parser.description or '')}",
        ".SH SYNOPSIS",
        ".B xentui",
        "[\\fIoptions\\fR]",
        ".SH DESCRIPTION",
        _roff("xentop's columns as rates, sortable and filterable, with per-vCPU, per-vif and per-vbd detail, a "
              "guest's serial console under the table, and the actions an operator takes from the keyboard: "
              "mem-set, vcpu-set, pause, save and restore, SysRq, migrate, shutdown, reboot, destroy, scheduler "
              "weight and cap, disks and NICs on a running guest, snapshots while paused, create. Press ? on the "
              "screen for every key."),
    ]
    for title, actions in _actions(parser):
        lines.append(f".SH {_roff((title or 'options').upper())}")
        for action in actions:
            lines += [".TP", f".B {_roff(_spelling(action))}", _roff(_help(action, parser))]
    lines += [".SH FILES", ".TP", f".I {_roff(config)}",
              _roff("the settings and the pool's hosts (TOML); ? on the screen shows its path")]
    lines.append(".SH EXIT STATUS")
    for code, text in EXIT_CODES:
        lines += [".TP", f".B {code}", _roff(text)]
    lines += [".SH ENVIRONMENT", ".TP", ".B NO_COLOR",
              _roff("when set and not empty, no colour: the plain theme, every state told by a word or a glyph"),
              ".TP", ".B XDG_CONFIG_HOME, XDG_STATE_HOME",
              _roff("where the config file, the save directory and the audit log are"),
              ".SH SEE ALSO", "xentop(1), xl(1), virsh(1)"]
    return "\n".join(lines) + "\n"


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion function for xentui: its options, the choices of those that have them, files and
    directories where an option takes a path, ssh hosts for --host."""
    options = sorted(o for _, actions in _actions(parser) for a in actions for o in a.option_strings)
    cases = []
    for _, actions in _actions(parser):
        for action in actions:
            if not action.option_strings or action.nargs == 0:
                continue
            pattern = "|".join(action.option_strings)
            if action.choices:
                words = " ".join(map(str, action.choices))
                cases.append(f'        {pattern}) COMPREPLY=($(compgen -W "{words}" -- "$cur")); return;;')
            elif action.metavar in ("FILE", "PATH"):
                cases.append(f'        {pattern}) COMPREPLY=($(compgen -f -- "$cur")); return;;')
            elif action.metavar == "DIR":
                cases.append(f'        {pattern}) COMPREPLY=($(compgen -d -- "$cur")); return;;')
            elif action.metavar == "DEST":
                cases.append(f'        {pattern}) COMPREPLY=($(compgen -A hostname -- "$cur")); return;;')
            else:
                cases.append(f"        {pattern}) return;;")
    return "\n".join([
        "# bash completion for xentui, made by `xentui --completion bash` from its own options",
        "_xentui() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    case "$prev" in',
        *cases,
        "    esac",
        f'    COMPREPLY=($(compgen -W "{" ".join(options)}" -- "$cur"))',
        "}",
        "complete -F _xentui xentui",
    ]) + "\n"
