"""A vertical scrollbar that keeps the lines it drew: the task list's.

A scrollbar repaints whenever its widget's content size changes, and the task list's changes at
every filter key (100 rows, then 3, then none...). Textual draws the bar anew each time, through
Rich, a line at a time: about a millisecond at 200x60, as much as a sixth of what the key's
frame cost (docs/benchmarks.md, "A key costs less"). Yet a filter cycled shows a handful of
bars again and again (the full list, a short one, an empty one), so :class:`KeptScrollBar`
keeps the lines of the last few it drew, keyed by everything the drawing reads: the bar's
geometry, position and colours (Textual's own renderable carries those), its size, the
backgrounds under it, the app's line filters and the theme. A change of any of them draws it
anew.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget

#: Bars kept (a filter cycled shows about three).
BARS_KEPT: Final = 8


class KeptScrollBar(ScrollBar):
    """A :class:`~textual.scrollbar.ScrollBar` that paints a bar it drew before from its lines."""

    def __init__(self, vertical: bool = True, name: str | None = None, *, thickness: int = 1):
        super().__init__(vertical, name, thickness=thickness)
        self._kept: OrderedDict[tuple[Any, ...], list[Strip]] = OrderedDict()

    def render_lines(self, crop: Region) -> list[Strip]:
        key = self._drawing_key(crop)
        if key is None:
            return super().render_lines(crop)
        lines = self._kept.get(key)
        if lines is None:
            lines = self._kept[key] = super().render_lines(crop)
            if len(self._kept) > BARS_KEPT:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(key)
        return list(lines)

    def _drawing_key(self, crop: Region) -> tuple[Any, ...] | None:
        """What the drawing depends on, or None for a bar this class does not know (another
        renderer, set on the class or the instance): that one is drawn each time."""
        bar = self.render()
        if type(bar) is not ScrollBarRender:
            return None
        return (
            crop,
            self.region.size,
            bar.virtual_size,
            bar.window_size,
            bar.position,
            bar.thickness,
            bar.vertical,
            bar.style,
            self.background_colors,
            tuple(self.get_line_filters()),
            self.opacity,
            self.app.ansi_theme,
            self.app.native_ansi_color,
        )


def kept_vertical_scrollbar(widget: Widget) -> ScrollBar:
    """``widget``'s vertical scrollbar, made a :class:`KeptScrollBar` the first time: what
    ``Widget.vertical_scrollbar`` does, with the class changed (Textual names no class to use)."""
    bar = widget._vertical_scrollbar
    if bar is None:
        bar = widget._vertical_scrollbar = KeptScrollBar(
            vertical=True, name="vertical", thickness=widget.scrollbar_size_vertical
        )
        bar.display = False
        widget.app._start_widget(widget, bar)
    return bar
