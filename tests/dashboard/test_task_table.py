"""The task list's table: the same tasks in the same order update in place, others rebuild."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widgets import RichLog, Static

from dashboard.scrollbar import KeptScrollBar
from dashboard.task_table import TaskTable
from dashboard.widgets import DagPane, EventLog, TimelinePane
from tests.dashboard.factories import T0, diamond_retrying


class CountingTable(TaskTable):
    updated: list[tuple[str, str]]

    def update_cell(self, row_key: str, column_key: str, value: Any) -> None:
        self.updated.append((row_key, column_key))
        super().update_cell(row_key, column_key, value)


class OneTable(App[None]):
    seen: list[str]

    def on_task_table_row_highlighted(self) -> None:
        self.seen.append("RowHighlighted")

    def on_task_table_row_selected(self) -> None:
        self.seen.append("RowSelected")

    def on_task_table_user_moved(self) -> None:
        self.seen.append("UserMoved")

    def compose(self) -> ComposeResult:
        self.seen = []
        table = CountingTable(id="tasks")
        table.updated = []
        for column in ("state", "task", "who", "age"):
            table.add_column(column, key=column)
        yield table


def row(key: str, state: str, age: str) -> tuple[str, tuple[Text, str, str, str]]:
    return key, (Text(state, "green" if state == "complete" else "blue"), key[-3:], "ada", age)


async def test_same_keys_update_only_the_changed_cells_and_keep_the_scroll() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1.0s") for n in range(30))
        await pilot.pause()
        table.scroll_y = 10
        table.show(
            row(f"task-{n:03}", "complete" if n == 3 else "running", "1.0s") for n in range(30)
        )
        await pilot.pause()
        assert table.updated == [("task-003", "state")]
        state = table.get_cell("task-003", "state")
        assert isinstance(state, Text) and state.plain == "complete" and state.style == "green"
        assert table.scroll_y == 10 and table.row_count == 30


async def test_a_style_alone_is_a_change_and_other_keys_rebuild_the_table() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show([("a", (Text("x", "blue"), "a", "ada", "1s"))])
        table.show([("a", (Text("x", "red"), "a", "ada", "1s"))])
        assert getattr(table.get_cell("a", "state"), "style", None) == "red"
        table.show([row("b", "running", "2s"), row("a", "running", "1s")])
        await pilot.pause()
        assert table.rows == ["b", "a"]
        assert table.get_cell("a", "age") == "1s"


async def test_the_scrollbar_and_the_scroll_limit_follow_the_row_count() -> None:
    # The row count is set without a layout of the screen (quiet_virtual_size): the scrollbar
    # must still learn it, or a Textual upgrade broke that trick.
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1.0s") for n in range(30))
        await pilot.pause()
        height = table.scrollable_content_region.height
        assert table.max_scroll_y == 31 - height
        assert table.vertical_scrollbar.window_virtual_size == 31
        table.show([row("a", "running", "1s"), row("b", "running", "1s")])
        await pilot.pause()
        assert table.max_scroll_y == 0 and table.vertical_scrollbar.window_virtual_size == 3


async def test_the_scrollbar_paints_what_textual_draws_and_draws_each_bar_once() -> None:
    """The list's scrollbar keeps the bars it drew (a filter cycled shows the same few):
    each paint must be what Textual's own scrollbar draws for the bar as it is now, through
    a changed row count, scroll position, focus and theme."""
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        bar = table.vertical_scrollbar
        assert isinstance(bar, KeptScrollBar)
        drawn: list[object] = []
        draw = ScrollBar.render_lines

        def counted(self: ScrollBar, crop: Region) -> list[Strip]:
            drawn.append(crop)
            return draw(self, crop)

        async def painted() -> list[Strip]:
            await pilot.pause()  # the screen painted, the bar through KeptScrollBar
            crop = bar.size.region
            kept = bar.render_lines(crop)
            assert kept == draw(bar, crop)  # Textual's own drawing, now
            return kept

        long = [row(f"task-{n:03}", "running", "1s") for n in range(30)]
        short = long[:2]
        with patch.object(ScrollBar, "render_lines", counted):
            first = await painted()
            table.show(long)
            full = await painted()
            table.show(short)
            assert await painted() != full
            drawn.clear()
            table.show(long)  # a bar drawn before: painted from what was kept
            assert await painted() == full and not drawn
            table.scroll_to(y=10, animate=False, immediate=True)
            assert await painted() != full and drawn
            table.scroll_to(y=0, animate=False, immediate=True)
            table.focus()
            await painted()
            table.styles.scrollbar_color = "red"
            table.styles.scrollbar_background = "blue"
            red = await painted()
            assert red != full
            app.theme = "textual-light"
            assert await painted() != red
            assert first != full


async def test_the_list_paints_what_textual_paints_and_styles_a_row_once() -> None:
    """The list keeps each line as it painted it (Textual's styles and filters applied) and
    uses it again while the row, the cursor and the setting are the same: every paint must
    be Textual's own, through new rows, a changed cell, the cursor, a scroll, focus and a
    theme, and a row painted before is not styled again."""
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        styled: list[int] = []
        style = ScrollView.render_lines

        def counted(self: ScrollView, crop: Region) -> list[Strip]:
            styled.append(crop.height)
            return style(self, crop)

        async def painted() -> list[Strip]:
            await pilot.pause()
            crop = table.size.region
            lines = table.render_lines(crop)
            table._styles_cache.clear()  # Textual's own paint, from nothing
            table._base, table._paint_width = table.rich_style, None
            assert lines == style(table, crop)
            return lines

        many = [row(f"task-{n:03}", "running", "1s") for n in range(30)]
        with patch.object(ScrollView, "render_lines", counted):
            table.show(many)
            first = await painted()
            table.show(many[:1] + many[10:])  # other keys (the cursor's task still on top)
            await painted()
            styled.clear()
            table.show(many)  # back: every row painted before, nothing styled again
            table.refresh()
            assert await painted() == first and styled == []
            table.show(
                [row(f"task-{n:03}", "complete" if n == 2 else "running", "1s") for n in range(30)]
            )
            await painted()
            assert styled == [1]  # the changed row alone
            table.move_cursor(row=4)
            await painted()
            table.scroll_to(y=5, animate=False, immediate=True)
            await painted()
            table.blur()
            await painted()
            app.theme = "textual-light"
            await painted()
            table.styles.padding = (1, 0)  # a line now depends on where it is: styled each time
            await painted()
            table.scroll_to(y=0, animate=False, immediate=True)
            await painted()


async def test_the_cursor_scrolls_into_view_and_says_where_it_went() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1.0s") for n in range(30))
        table.focus()
        await pilot.pause()
        seen = app.seen
        seen.clear()
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == 29 and table.scroll_y == table.max_scroll_y
        assert "RowHighlighted" in seen and "UserMoved" in seen
        await pilot.press("home", "down", "enter")
        await pilot.pause()
        assert table.cursor_row == 1 and table.scroll_y == 0 and "RowSelected" in seen


async def test_the_event_log_scrolls_to_its_end_as_it_grows() -> None:
    class OneLog(App[None]):
        def compose(self) -> ComposeResult:
            yield EventLog(max_lines=100)

    app = OneLog()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(EventLog)
        for n in range(30):
            log.write(f"line {n}")
        await pilot.pause()
        assert log.max_scroll_y == 30 - log.scrollable_content_region.height
        assert log.scroll_y == log.max_scroll_y
        assert log.vertical_scrollbar.window_virtual_size == 30


async def test_the_event_log_paints_what_a_rich_log_paints() -> None:
    # EventLog reads its style and width once a paint instead of once a line: the lines must be
    # those RichLog draws, scrolled in both directions, and follow a change of style
    class StyledLog(App[None]):
        CSS = "EventLog { background: #202020; color: #e0e0e0; }"

        def compose(self) -> ComposeResult:
            yield EventLog(max_lines=100, wrap=False)

    app = StyledLog()
    async with app.run_test(size=(30, 8)) as pilot:
        log = app.query_one(EventLog)
        for n in range(40):
            log.write(f"line {n} " + "x" * n)
        await pilot.pause()

        def both() -> tuple[list[Strip], list[Strip]]:
            region = log.size.region
            mine = log.render_lines(region)
            assert log._paint is None  # the paint's style and width are not kept past it
            log._styles_cache.clear()
            theirs = RichLog.render_lines(log, region)  # RichLog's render_line, line by line
            return mine, theirs

        for x, y in ((0, 0), (0, 17), (12, 30)):
            log.scroll_to(x=x, y=y, animate=False, immediate=True)
            await pilot.pause()
            log._styles_cache.clear()
            mine, theirs = both()
            assert mine == theirs
            written = f"line {y} " + "x" * y  # the line at the top, cut where it is scrolled to
            assert mine[0].text.startswith(written[x : x + 8])
        log.styles.background = "darkred"
        await pilot.pause()
        log._styles_cache.clear()
        mine, theirs = both()
        assert mine == theirs


async def test_the_event_log_keeps_its_newest_line_in_view_when_it_gets_shorter() -> None:
    # A taller pane above it (the timeline of a loaded task) shrinks the log after it scrolled
    # to its end: the newest lines must stay in view, not wait below the pane for the next write.
    class PaneAndLog(App[None]):
        CSS = "#above { height: 3; } EventLog { height: 1fr; }"

        def compose(self) -> ComposeResult:
            yield Static(id="above")
            yield EventLog(max_lines=100)

    app = PaneAndLog()
    async with app.run_test(size=(40, 20)) as pilot:
        log, above = app.query_one(EventLog), app.query_one("#above")
        for n in range(50):
            log.write(f"line {n}")
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y == 50 - 17
        above.styles.height = 8
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y == 50 - 12
        log.scroll_to(y=5, animate=False, immediate=True)  # the operator reads older lines
        above.styles.height = 10
        await pilot.pause()
        assert log.scroll_y == 5


async def test_a_new_task_on_top_keeps_the_cursor_on_its_task_and_in_view() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(CountingTable)
        rows = [row(f"task-{n:03}", "running", "1s") for n in range(50)]
        table.show(rows)
        table.focus()
        await pilot.pause()
        table.move_cursor(row=30)  # scrolled down to it
        await pilot.pause()
        top = table.scroll_y
        assert top > 0
        table.show([row("task-new", "running", "0s"), *rows])
        await pilot.pause()
        assert table.rows[table.cursor_row] == "task-030"
        assert table.scroll_y == top + 1  # what was on screen stays where it was
        # a view at the top stays at the top when the newest task arrives
        table.move_cursor(row=0)
        await pilot.pause()
        table.show([row("task-newer", "running", "0s"), *table_rows(table)])
        await pilot.pause()
        assert table.scroll_y == 0 and table.rows[table.cursor_row] == "task-new"


def table_rows(table: TaskTable) -> list[tuple[str, tuple[Text, str, str, str]]]:
    return [row(key, "running", "1s") for key in table.rows]


async def test_home_brings_the_cursor_back_into_view_after_a_scroll() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1s") for n in range(30))
        table.focus()
        await pilot.pause()
        table.scroll_to(y=20, animate=False)  # the mouse wheel: the cursor (row 0) off screen
        await pilot.pause()
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_y == 0


async def test_rows_drawn_before_a_focus_change_take_the_new_background() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1s") for n in range(5))
        table.focus()
        await pilot.pause()
        focused = table.render_line(3)
        table.blur()
        await pilot.pause()
        blurred = table.render_line(3)
        table._lines.clear()  # drawn afresh: what every row must look like now
        assert [s.style for s in blurred] == [s.style for s in table.render_line(3)]
        assert [s.style for s in focused] != [s.style for s in blurred]


async def test_a_cursor_move_in_a_scrolled_list_repaints_the_two_rows_on_screen() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1s") for n in range(30))
        table.focus()
        table.scroll_to(y=10, animate=False)
        table.move_cursor(row=12)
        await pilot.pause()
        table._repaint_regions.clear()
        table.move_cursor(row=13)
        # the header is screen line 0, so rows 12 and 13 are lines 3 and 4 from the top
        assert sorted(r.y for r in table._repaint_regions) == [3, 4]


async def test_new_rows_repaint_the_rows_and_leave_the_scrollbar_alone() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        table.show(row(f"task-{n:03}", "running", "1s") for n in range(30))
        await pilot.pause()
        table._repaint_regions.clear()
        table.show(row(f"task-{n:03}", "complete", "1s") for n in range(5, 35))
        rows = table.scrollable_content_region
        assert list(table._repaint_regions) == [rows.reset_offset]


class Panes(App[None]):
    CSS = "DagPane, TimelinePane { height: 20; }"

    def compose(self) -> ComposeResult:
        yield DagPane(lambda: T0 + 0.5, id="dag")
        yield TimelinePane(lambda: T0 + 0.5, id="timeline")


async def test_a_pane_whose_drawing_did_not_change_is_not_repainted() -> None:
    app = Panes()
    async with app.run_test(size=(100, 40)) as pilot:
        for pane in (app.query_one(DagPane), app.query_one(TimelinePane)):
            model, script = diamond_retrying()
            pane.show(model)
            await pilot.pause()
            pane._repaint_regions.clear()
            pane.show(model)  # the same task at the same moment: nothing to paint
            assert not pane._repaint_regions, type(pane).__name__
            script.run(0.4, "setup_billing_profile", took=0.02, service="billing")
            model.apply_all(script.events)
            pane.show(model)  # a step ended: painted
            assert pane._repaint_regions, type(pane).__name__


async def test_rows_shown_again_are_not_drawn_again_unless_their_cells_changed() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(CountingTable)
        drawn: list[str] = []
        draw = table._draw

        def counted(cells: Any, width: int, style: Any) -> Any:
            drawn.append(str(cells[1]))
            return draw(cells, width, style)

        table._draw = counted  # type: ignore[method-assign]
        first = [row(f"task-{n:03}", "running", "1s") for n in range(3)]
        table.show(first)
        await pilot.pause()
        table.show([row("task-009", "running", "1s")])  # another filter
        await pilot.pause()
        drawn.clear()
        table.show(first)  # and back: the same cells, nothing drawn
        await pilot.pause()
        assert drawn == []
        table.show([row("task-009", "running", "1s")])
        await pilot.pause()
        table.show([*first[:2], row("task-002", "complete", "1s")])  # changed meanwhile
        await pilot.pause()
        assert "002" in drawn
        assert "complete" in table.render_line(3).text
