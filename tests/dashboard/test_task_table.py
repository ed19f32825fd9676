"""The task list's table: the same tasks in the same order update in place, others rebuild."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult

from dashboard.task_table import TaskTable


class CountingTable(TaskTable):
    updated: list[tuple[str, str]]

    def update_cell(self, row_key: str, column_key: str, value: Any) -> None:
        self.updated.append((row_key, column_key))
        super().update_cell(row_key, column_key, value)


class OneTable(App[None]):
    def compose(self) -> ComposeResult:
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
