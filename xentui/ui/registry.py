"""Every action on domains the screen offers, declared once.

The key bindings (and so the footer, the help screen and a user's keymap, by binding id) and the command
palette's entries are built from this table. To add a domain action: an entry here; its form, if it has one
(`xentui.ui.modals`); its validator (`xentui.validate`); the `Action` it needs and the backends that do it
(every other backend refuses by default, with the reason its capabilities give).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.binding import Binding

from xentui.backends.base import Action

Group = Literal["domain", "console"]


@dataclass(frozen=True)
class ScreenAction:
    """One thing the operator can do to domains (or the host, or an image), by key, palette, or both."""

    id: str
    """The binding id: what a keymap names. Unique."""
    method: str
    """The app's ``action_<method>``."""
    label: str
    """The footer's and the help screen's word for it."""
    keys: str | None = None
    """Textual key names, comma-separated; None: from the palette only."""
    command: str | None = None
    """The palette's title; None: by key only."""
    help: str = ""
    """The palette's line: what it does, and its key."""
    needs: Action | None = None
    """The backend action it needs; the palette says why it is unavailable when the backend lacks it."""
    footer: bool = False
    priority: bool = False
    destructive: bool = False
    """It can stop a guest or throw away its state: its key is never one an xentop user types by habit, and it
    asks before it acts (a confirmation, the save form, typing the domain's name)."""
    group: Group = "domain"

    def binding(self) -> Binding:
        assert self.keys is not None
        return Binding(self.keys, self.method, self.label, id=self.id, show=self.footer, priority=self.priority)


# Keys that change or stop a guest are never a letter an xentop user types by habit: xentop reads its keys
# case-insensitively (D delay, N nets, B vbds, V vcpus, R repeat header, S sort, Q quit), and so does xentui.
# Save, restore, reboot and destroy take a Ctrl key; each asks before it acts.
SCREEN_ACTIONS: tuple[ScreenAction, ...] = (
    ScreenAction("mem-set", "mem_set", "Mem", "m", "domain: mem-set", "set the memory target (m)",
                 Action.MEM_SET, footer=True),
    ScreenAction("mem-max", "mem_max", "Maxmem", "M", "domain: mem-max", "set the memory ceiling (M)",
                 Action.MEM_MAX),
    ScreenAction("vcpu-set", "vcpu_set", "vCPU set", "C", "domain: vcpu-set", "set the vCPUs online (C)",
                 Action.VCPU_SET),
    ScreenAction("sched", "sched", "Weight/cap", "w", "domain: scheduler weight/cap", "credit weight and cap (w)",
                 Action.SCHED),
    ScreenAction("pause", "pause_toggle", "Pause", "p", help="pause the selected or marked domains; unpause them "
                 "when all are paused (p)", footer=True),  # pauses, or unpauses if all are paused
    ScreenAction("pause-only", "pause", "Pause", None, "domain: pause", "pause the selected or marked domains",
                 Action.PAUSE),
    ScreenAction("unpause", "unpause", "Unpause", None, "domain: unpause", "unpause the selected or marked domains",
                 Action.UNPAUSE),
    ScreenAction("save", "save", "Save", "ctrl+s", "domain: save", "save to a file, stop or keep running (Ctrl+S)",
                 Action.SAVE, destructive=True),
    ScreenAction("restore", "restore", "Restore", "ctrl+r", "domain: restore",
                 "restore from the save directory (Ctrl+R)", Action.RESTORE),
    ScreenAction("sysrq", "sysrq", "SysRq", "X", "domain: sysrq", "send a SysRq key (X)", Action.SYSRQ,
                 footer=True, destructive=True),
    ScreenAction("migrate", "migrate", "Migrate", "g", "domain: migrate",
                 "move it to another host, with checks first (g)", Action.MIGRATE, footer=True),
    ScreenAction("evacuate", "evacuate", "Evacuate host", "E", "host: evacuate", "migrate every domU to one host (E)",
                 Action.MIGRATE, destructive=True),
    ScreenAction("disks", "disks", "Disks", "A", "domain: disks",
                 "the guest's disks: attach one, detach one (A)"),
    ScreenAction("nics", "nics", "NICs", "I", "domain: network interfaces",
                 "the guest's NICs: attach one to a bridge, detach one (I)"),
    ScreenAction("snapshot", "snapshot", "Snapshot", "P", "domain: snapshot while paused",
                 "pause, snapshot each disk (LVM, or a copy), unpause; list and remove snapshots (P)"),
    ScreenAction("create", "create", "Create", "ctrl+n", "host: create a guest",
                 "start a guest from one of the host's configs, or a config path (Ctrl+N)", Action.CREATE),
    ScreenAction("shutdown", "shutdown", "Shutdown", "h", "domain: shutdown", "ask the guest to power off (h)",
                 Action.SHUTDOWN, destructive=True),
    ScreenAction("reboot", "reboot", "Reboot", "ctrl+t", "domain: reboot", "ask the guest to reboot (Ctrl+T)",
                 Action.REBOOT, destructive=True),
    ScreenAction("destroy", "destroy", "Destroy", "ctrl+k", "domain: destroy", "pull the plug (Ctrl+K)",
                 Action.DESTROY, destructive=True),
    ScreenAction("mark", "mark", "Mark or unmark, then move down", "space", "domain: mark",
                 "mark or unmark for a bulk action, then move down (Space)"),
    ScreenAction("unmark-all", "unmark_all", "Unmark all", "U", "domain: unmark all", "clear every mark (U)"),
    ScreenAction("action-log", "action_log", "Action log", "l", "view: action log",
                 "every action and its result (l)"),
    # The console. Not priority keys: in a console they belong to the guest (^C, ^Q); Ctrl-] leaves first.
    ScreenAction("console", "console", "Console", "t", "domain: console",
                 "the guest's serial console under the table (t); Ctrl-] leaves", Action.CONSOLE, footer=True,
                 group="console"),
    # priority, like '/': the keys queued behind Ctrl-] (a 'q' typed at once) must reach the table, not the guest
    ScreenAction("console-leave", "leave_console", "Leave console", "ctrl+right_square_bracket",
                 help="back to the table, the console kept open (as xl console's Ctrl-])", priority=True,
                 group="console"),
    ScreenAction("console-maximise", "console_maximise", "Maximise console", "f", "console: maximise",
                 "the console takes the whole screen, or gives it back (f)", group="console"),
    ScreenAction("console-close", "console_close", "Close console", "x", "console: close",
                 "close the console shown (x)", group="console"),
    ScreenAction("console-save-log", "console_save_log", "Save console log", "L", "console: save log",
                 "write the console's scrollback to a file (L)", group="console"),
)


ACTIONS_BY_ID = {action.id: action for action in SCREEN_ACTIONS}


def bindings(group: Group) -> list[Binding]:
    """The group's key bindings, in the table's order (the footer's and the help screen's)."""
    return [action.binding() for action in SCREEN_ACTIONS if action.group == group and action.keys is not None]


def palette_commands() -> list[ScreenAction]:
    """The actions the command palette offers, in the table's order."""
    return [action for action in SCREEN_ACTIONS if action.command is not None]
