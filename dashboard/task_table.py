"""The task list: a header, fixed columns, one line per task, a row cursor.

A ``DataTable`` did this job first, and during a burst it was most of the dashboard's drawing:
each cell rendered through Rich on its own, a rebuild measured every cell again, a changed row
count re-laid the screen out (docs/benchmarks.md, "Dashboard"). This widget draws a row as one
line of segments, cached until a cell of that row changes, and the cursor is a style laid over
the cached line, so moving it, scrolling or redrawing costs only the lines on screen. It keeps
the small part of ``DataTable``'s interface the dashboard uses (``add_column``, ``rows``,
``row_count``, ``cursor_row``, ``move_cursor``, ``get_cell``, ``update_cell``) and says when the
cursor moved (``RowHighlighted``), a row was chosen (``RowSelected``) and when the operator, not
a redraw, moved it (``UserMoved``).

The dashboard follows the newest task while the cursor is on the top row: a burst shows its
latest registration on the DAG without a key press. Moving down stops following; going back to
the top starts it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from dashboard.scrollbar import kept_vertical_scrollbar

Cell = str | Text
#: What a blank line below the rows is painted from (the same for every one).
_BLANK: Final = Strip([])
#: Rows drawn and kept beyond those shown (a few filters' worth), before the others are forgotten.
LINES_KEPT: Final = 1_000


# ``Widget.virtual_size`` asks for a layout of the whole screen when it changes, and a layout
# repaints every pane: at 200x60 during a burst those frames took 15-46 ms, against 7 ms for a
# frame that repaints what changed, and the task list (a filter key changes its row count) and
# the event log (every write adds lines) changed theirs at every redraw. Nothing outside either
# widget depends on how much it holds, so for them the size repaints only the widget, and its
# watcher tells the scrollbars what a layout would have told them (Textual's own
# ``_scroll_update``). ``tests/dashboard/test_task_table.py`` checks that the scrollbar and the
# scroll limits still follow the content, so a Textual that changes this fails there.
def quiet_virtual_size() -> Reactive[Size]:
    """A ``virtual_size`` for a widget whose content size concerns it alone (one per class:
    a reactive belongs to the class it is set on)."""
    return Reactive(Size(0, 0), layout=False)


@dataclass(slots=True)
class _Column:
    key: str
    label: str
    width: int | None  #: None: what the fixed columns leave


class TaskTable(ScrollView, can_focus=True):
    """One task per line under a header; ``show`` replaces the rows."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "up", show=False),
        Binding("down", "cursor(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "to(0)", "top", show=False),
        Binding("end", "to(-1)", "bottom", show=False),
        Binding("enter", "select", "select", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"task-table--header", "task-table--cursor"}
    DEFAULT_CSS = """
    TaskTable {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;  /* always there: a scrollbar that came and went re-laid the screen */
        & > .task-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .task-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            /* lighter, not tinted: a tint recolours every cell at every paint (12 % of a key) */
            background: $surface-lighten-1;
            & > .task-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    #: A changed row count repaints this widget, not the screen (:func:`quiet_virtual_size`).
    virtual_size = quiet_virtual_size()

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """A scrollbar that keeps the bars it drew: a filter cycled shows the same few again."""
        return kept_vertical_scrollbar(self)

    class _RowMessage(Message):
        def __init__(self, table: TaskTable, cursor_row: int, row_key: str) -> None:
            super().__init__()
            self.table, self.cursor_row, self.row_key = table, cursor_row, row_key

        @property
        def control(self) -> TaskTable:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor is on another row (a key, a click, or :meth:`move_cursor`)."""

    class RowSelected(_RowMessage):
        """Enter, or a click on the row under the cursor."""

    class UserMoved(Message):
        """The operator moved the cursor (not a redraw)."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._columns: list[_Column] = []
        self._keys: list[str] = []
        self._cells: dict[str, list[Cell]] = {}
        #: each row drawn at :attr:`_drawn_width`, with the cells it was drawn from: kept when
        #: other rows are shown (a filter cycled back shows the same tasks again) and used
        #: while the row's cells are the same
        self._lines: dict[str, tuple[list[Cell], Strip]] = {}
        self._base = Style()  #: the widget's style, read once per paint
        self._paint_width: int | None = None  #: the content width while a paint is under way
        self._header_drawn: tuple[tuple[int, Style], Strip] | None = None
        #: each line as painted last (Textual's styles and the app's filters applied), by what
        #: it showed: a row's key -> (the row's drawn line, under the cursor?, the painted line);
        #: valid while :attr:`_painted_setting` is the paint's (:meth:`_paint_setting`)
        self._painted: dict[str | None, tuple[Strip | None, bool, Strip]] = {}
        self._painted_setting: tuple[object, ...] | None = None
        self._drawn_width = -1
        self.cursor_row = 0

    # --- the interface the dashboard uses ---------------------------------------------------

    def add_column(self, label: str, *, key: str, width: int | None = None) -> None:
        self._columns.append(_Column(key, label, width))
        self._forget_lines()

    @property
    def columns(self) -> list[str]:
        return [c.key for c in self._columns]

    @property
    def rows(self) -> list[str]:
        """The row keys, top to bottom."""
        return list(self._keys)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def show(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Show these rows, ``(key, cells)`` in order. When the keys are the ones shown, in the
        same order, only the rows whose cells changed are drawn again. Other keys replace the
        rows; the cursor stays on its task if that task is still listed, and a scrolled view
        moves with it (a new task on top moves both down one row: what the operator was looking
        at stays where it was on screen; a view at the top stays at the top), otherwise both go
        to the top."""
        rows = list(rows)
        keys = [key for key, _ in rows]
        if keys != self._keys:
            was = self._keys[self.cursor_row] if self._keys else None
            top = round(self.scroll_offset.y)
            self._keys = keys
            self._cells = {key: list(cells) for key, cells in rows}
            if len(self._lines) > LINES_KEPT:
                self._lines = {k: v for k, v in self._lines.items() if k in self._cells}
                self._painted = {k: v for k, v in self._painted.items() if k in self._lines}
            self._resize()
            if was in self._cells:
                screen_row = self.cursor_row - top
                self.cursor_row = keys.index(was)
                # a view at the top stays there: the newest tasks are what it is for
                y = max(0, self.cursor_row - screen_row) if top else 0
                self.scroll_to(y=y, animate=False, immediate=True)
                self._scroll_to_cursor()
            else:
                self.cursor_row = 0
                self.scroll_to(y=0, animate=False, immediate=True)
                if keys:  # the cursor is on another task now, as after any move
                    self.post_message(self.RowHighlighted(self, 0, keys[0]))
            self._refresh_rows()
            return
        for key, cells in rows:
            for column, cell in zip(self.columns, cells, strict=True):
                if not _same_cell(self.get_cell(key, column), cell):
                    self.update_cell(key, column, cell)

    def get_cell(self, row_key: str, column_key: str) -> Cell:
        return self._cells[row_key][self.columns.index(column_key)]

    def update_cell(self, row_key: str, column_key: str, value: Cell) -> None:
        self._cells[row_key][self.columns.index(column_key)] = value
        self._lines.pop(row_key, None)
        self.refresh_line(self._keys.index(row_key))

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        """Put the cursor on ``row`` (kept within the rows); ``scroll`` brings it into view."""
        del animate  # the interface DataTable had; this table never animates
        row = max(0, min(row, len(self._keys) - 1))
        if not self._keys:
            return
        before, self.cursor_row = self.cursor_row, row
        if scroll:
            self._scroll_to_cursor()  # also when it stays: the view may have scrolled away
        if row == before:
            return
        self.refresh_line(before)
        self.refresh_line(row)
        self.post_message(self.RowHighlighted(self, row, self._keys[row]))

    def refresh_line(self, index: int) -> None:
        """Repaint the row at ``index`` alone, if it is on screen. (Not ``refresh_lines``,
        which takes a line of the content and would subtract the scroll a second time.)"""
        y = index - round(self.scroll_offset.y) + 1
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.scrollable_content_region.width, 1))

    def _refresh_rows(self) -> None:
        """Repaint the header and the rows, not the scrollbar: a scrollbar repaint cost as much
        as a third of the rows' (its position and size tell it when it must repaint)."""
        self.refresh(self.scrollable_content_region.reset_offset)

    # --- drawing ----------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # the widget's style walks the DOM (75 us at 200x60), and Textual forgets it at every
        # refresh; the content region is computed anew at each call (half of what a drawn row
        # cost): both once per paint, not once per line
        self._base = self.rich_style
        self._paint_width = self.scrollable_content_region.width
        try:
            return self._paint(crop)
        finally:
            self._paint_width = None

    def _paint(self, crop: Region) -> list[Strip]:
        """The lines of ``crop``: each one painted before as it is now is used again; the others
        go through Textual (its styles and the app's filters), a run of them at a time.

        A filter key repaints the whole list, and Textual styles every line of it anew (the
        widget's refresh forgets what it styled): about 60 % of what the list's paint cost,
        where most of a cycled filter's rows are ones it painted before (docs/benchmarks.md,
        "A key costs less"). A row painted before is the same line wherever it is on screen, as
        long as the widget has no border or padding (else each line is styled each time)."""
        setting = self._paint_setting(crop)
        if setting is None:
            return super().render_lines(crop)
        if setting != self._painted_setting:
            self._painted.clear()
            self._painted_setting = setting
        top = round(self.scroll_offset.y)
        lines: list[Strip] = []
        missing: list[int] = []  # a run of lines to paint, then theirs filled in
        for y in crop.line_range:
            what, drawn, cursor = self._line_source(y, top)
            painted = self._painted.get(what) if drawn is not None else None
            if painted is not None and painted[0] is drawn and painted[1] == cursor:
                if missing:
                    lines += self._paint_run(crop, missing, top)
                    missing = []
                lines.append(painted[2])
            else:
                missing.append(y)
        if missing:
            lines += self._paint_run(crop, missing, top)
        return lines

    def _paint_run(self, crop: Region, ys: list[int], top: int) -> list[Strip]:
        """Lines ``ys`` (consecutive) through Textual, and what they were painted from kept."""
        lines = super().render_lines(Region(crop.x, ys[0], crop.width, len(ys)))
        for y, line in zip(ys, lines, strict=True):
            what, drawn, cursor = self._line_source(y, top, check=False)  # drawn for this paint
            self._painted[what] = (drawn, cursor, line)
        return lines

    def _line_source(
        self, y: int, top: int, *, check: bool = True
    ) -> tuple[str | None, Strip | None, bool]:
        """What screen line ``y`` shows (a row's key; None for the header, ``""`` for a blank
        line), the line drawn for it if it is drawn and still true (None: not yet; without
        ``check``, the row's cells are taken to be the ones drawn), and whether the cursor is
        on it."""
        if y == 0:
            return None, self._header_drawn[1] if self._header_drawn else None, False
        index = top + y - 1
        if index >= len(self._keys):
            return "", _BLANK, False
        key = self._keys[index]
        cursor = index == self.cursor_row
        drawn = self._lines.get(key)
        if drawn is None or (check and not _same_cells(drawn[0], self._cells[key])):
            return key, None, cursor
        return key, drawn[1], cursor

    def _paint_setting(self, crop: Region) -> tuple[object, ...] | None:
        """Everything a painted line depends on but what it shows; None when a line depends on
        where it is (a border or padding)."""
        styles = self.styles
        if any(styles.gutter) or any(styles.outline.spacing):
            return None
        return (
            crop.column_span,
            self.size,
            self._base,
            self._drawn_width,
            self.get_component_rich_style("task-table--cursor"),
            self.get_component_rich_style("task-table--header"),
            self.background_colors,
            tuple(self.get_line_filters()),
            self.opacity,
            self.app.ansi_theme,
            self.app.native_ansi_color,
        )

    def render_line(self, y: int) -> Strip:
        width = self._paint_width
        if width is None:
            width = self.scrollable_content_region.width
        if width != self._drawn_width:
            self._forget_lines()
            self._drawn_width = width
        if y == 0:
            return self._header(width)
        index = round(self.scroll_offset.y) + y - 1
        base = self._base
        if index >= len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[index]
        cells = self._cells[key]
        drawn = self._lines.get(key)
        if drawn is not None and _same_cells(drawn[0], cells):
            line = drawn[1]
        else:  # cached without the widget's own style, which focus and themes change
            line = self._draw(cells, width, Style())
            self._lines[key] = (list(cells), line)
        line = line.apply_style(base)
        if index == self.cursor_row:
            cursor = self.get_component_rich_style("task-table--cursor")
            line = Strip(list(Segment.apply_style(line, post_style=cursor)), line.cell_length)
        return line

    def _header(self, width: int) -> Strip:
        style = self.get_component_rich_style("task-table--header")
        if self._header_drawn is None or self._header_drawn[0] != (width, style):
            line = self._draw([c.label for c in self._columns], width, style)
            self._header_drawn = ((width, style), line)
        return self._header_drawn[1]

    def _draw(self, cells: Sequence[Cell], width: int, style: Style) -> Strip:
        """One row as segments: each cell cut with an ellipsis at its column's width."""
        widths = self._widths(width)
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        for cell, cell_width in zip(cells, widths, strict=False):
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(max(cell_width, 0), overflow="ellipsis", pad=True)
            line.append(" ")
            line.append_text(text)
            line.append(" ")
        segments = list(line.render(self.app.console))
        segments = list(Segment.apply_style(segments, style))
        return Strip(segments).crop_extend(0, width, style)

    def _widths(self, width: int) -> list[int]:
        fixed = sum(c.width for c in self._columns if c.width is not None)
        flexible = [c for c in self._columns if c.width is None]
        left = max(1, width - fixed - 2 * len(self._columns))
        share = left // max(1, len(flexible))
        return [c.width if c.width is not None else share for c in self._columns]

    def _forget_lines(self) -> None:
        self._lines.clear()
        self._painted.clear()
        self._header_drawn = None

    def _resize(self) -> None:
        region = self.scrollable_content_region
        self.virtual_size = Size(region.width, len(self._keys) + 1)

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)  # what a layout would do (quiet_virtual_size)

    def on_resize(self, event: events.Resize) -> None:
        self._resize()
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    # --- the operator -----------------------------------------------------------------------

    def _moved_to(self, row: int) -> None:
        self.move_cursor(row=row)
        self.post_message(self.UserMoved(self.cursor_row))

    def action_cursor(self, delta: int) -> None:
        self._moved_to(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        page = max(1, self.scrollable_content_region.height - 1)  # the rows a screen shows
        self._moved_to(self.cursor_row + direction * page)

    def action_to(self, row: int) -> None:
        self._moved_to(row if row >= 0 else len(self._keys) - 1)

    def action_select(self) -> None:
        if self._keys:
            self.post_message(self.RowSelected(self, self.cursor_row, self._keys[self.cursor_row]))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = round(self.scroll_offset.y) + offset.y - 1
        if offset.y < 1 or index >= len(self._keys):
            return
        chosen = index == self.cursor_row
        self._moved_to(index)
        if chosen:
            self.action_select()


def _same_cells(a: Sequence[Cell], b: Sequence[Cell]) -> bool:
    return len(a) == len(b) and all(_same_cell(x, y) for x, y in zip(a, b, strict=True))


def _same_cell(a: Cell, b: Cell) -> bool:
    """Equal text and equal style: ``Text.__eq__`` looks at the spans, not the base style."""
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return a == b
