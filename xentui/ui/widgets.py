"""Small widgets of xentui's own: Textual's, changed so that no state is told by colour alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.style import Style
from textual.widget import Widget
from textual.widgets import Checkbox, OptionList

GLYPHS_VARIABLE = "toggle-glyphs"
"""A theme variable: ``"brackets"`` draws a box as ``[X]``/``[ ]`` (themes/xentui-plain.toml sets it)."""

REVERSE = Style(reverse=True)

# KeepsReverse is a plain mixin, not a Widget subclass: that would stop the widget's COMPONENT_CLASSES merging.
_MixinBase = Widget if TYPE_CHECKING else object


def colour_free(widget: Widget) -> bool:
    """True where colour cannot tell a state apart: NO_COLOR, or a theme that asks for bracketed boxes."""
    app = widget.app
    return app.no_color or app.current_theme.variables.get(GLYPHS_VARIABLE) == "brackets"


class KeepsReverse(_MixinBase):
    """Honours ``text-style: reverse`` on a component class (a highlight, a focused label); mix into a Widget.

    Textual 8.2's ``Widget.get_visual_style`` keeps bold, dim, italic, underline and strike from the CSS,
    not reverse, so without this a reverse-video highlight (the plain theme, NO_COLOR) draws as nothing.
    """

    def get_visual_style(self, *component_classes: str, partial: bool = False) -> Style:
        style = super().get_visual_style(*component_classes, partial=partial)
        if any(self.get_component_styles(name).text_style.reverse for name in component_classes):
            style += REVERSE
        return style


class TickBox(KeepsReverse, Checkbox):
    """A Checkbox whose box shows its state by its glyph, not only by its colour.

    Textual's box is ``▐X▌`` ticked or not, only coloured differently. Here an unticked box is empty
    (``▐ ▌``), and without colour (NO_COLOR, the plain theme) the box is ``[X]`` or ``[ ]``.
    """

    @property
    def _button(self) -> Content:
        button_style = self.get_visual_style("toggle--button")
        inner = self.BUTTON_INNER if self.value else " "
        if colour_free(self):
            # The brackets take the label's colour: the box's own background may not show at all.
            return Content.assemble("[", (inner, button_style + Style(bold=True)), "]")
        # Textual's own drawing (ToggleButton._button), with the inside left blank when unticked.
        side_style = Style(foreground=button_style.background, background=self.background_colors[1])
        return Content.assemble(
            (self.BUTTON_LEFT, side_style),
            (inner, button_style),
            (self.BUTTON_RIGHT, side_style),
        )


class PickList(KeepsReverse, OptionList):
    """An OptionList whose highlighted option can be reverse video (the sort picker, the restore list...)."""
