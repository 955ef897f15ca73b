"""The frame every action dialog shares: its CSS, a form (fields, an error line, Enter submits, Escape cancels),
a y/N question, and how long each kind of field may be."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from xentui.textsafe import printable

# The longest text each kind of field takes: a paste of 10 KB is cut there, never echoed whole in a message.
SHORT_INPUT = 32  # sizes and counts
NAME_INPUT = 512  # host names, URIs, domain names
PATH_INPUT = 4096  # PATH_MAX

ResultT = TypeVar("ResultT")


class DialogScreen(ModalScreen[ResultT]):
    """Every action dialog's frame: centred, a panel of 76 columns at most, title, facts, problem, buttons."""

    DEFAULT_CSS = """
    DialogScreen { align: center middle; }
    DialogScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        background: $panel; border: round $primary; padding: 0 1;
    }
    DialogScreen .title { text-style: bold; width: 100%; }
    DialogScreen .problem { color: $error; height: auto; width: 100%; }
    DialogScreen .facts { color: $text-muted; height: auto; width: 100%; }
    DialogScreen .buttons { height: auto; align-horizontal: right; }
    DialogScreen Button { margin-left: 1; min-width: 10; }
    DialogScreen Input { margin: 0; }
    """


def _facts(*pairs: tuple[str, str]) -> Text:
    text = Text()
    for index, (label, value) in enumerate(pairs):
        if index:
            text.append("   ")
        text.append(f"{label} ", style="bold")
        text.append(value)
    return text


class FormScreen(DialogScreen[object]):
    """A small form: facts, inputs, an error line; Enter submits, Escape cancels and changes nothing."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, message: str) -> None:
        """The reason, often a tool's or libvirt's words: made printable line by line."""
        self.query_one(".problem", Label).update(Text("\n".join(printable(line) for line in message.split("\n"))))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "ok":
            self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def submit(self) -> None:  # pragma: no cover - every form overrides it
        raise NotImplementedError

    @staticmethod
    def buttons(ok: str = "Apply") -> Horizontal:
        return Horizontal(Button("Cancel", id="cancel"), Button(ok, id="ok", variant="primary"),
                          classes="buttons")


class ConfirmScreen(DialogScreen[bool]):
    """y/N. Anything but y (or the Yes button) is a no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), classes="title")
            yield Label("y: yes   n or Escape: no")
            yield Horizontal(Button("No", id="no", variant="primary"), Button("Yes", id="yes", variant="error"),
                             classes="buttons")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
