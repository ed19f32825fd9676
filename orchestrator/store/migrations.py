"""One migration mechanism for every store: numbered SQL scripts and a ``schema_version`` table.

Script N brings a database from version N - 1 to N; a store applies the pending ones in one
transaction, under its write lock, and records each version it reached. A database newer than
this Interlock is refused, never written. Each database has its own scripts (the dialects
differ), numbered alike: version N means the same tables on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from orchestrator.errors import StoreError

#: Creates the version table; every dialect runs it before reading the version.
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


@dataclass(frozen=True, slots=True)
class Migrations:
    """The schema scripts of one database, in order."""

    scripts: tuple[str, ...]

    @classmethod
    def load(cls, *names: str) -> Migrations:
        """The scripts of ``orchestrator/store`` with these file names, in this order."""
        package = resources.files("orchestrator.store")
        return cls(tuple(package.joinpath(n).read_text(encoding="utf-8") for n in names))

    @property
    def version(self) -> int:
        """The version a database has once every script ran."""
        return len(self.scripts)

    def pending(self, current: int) -> list[tuple[int, list[str]]]:
        """(version, statements) for each script a database at ``current`` still needs."""
        if current > self.version:
            raise StoreError(self.newer(current))
        return [
            (version, statements(self.scripts[version - 1]))
            for version in range(current + 1, self.version + 1)
        ]

    def newer(self, version: int) -> str:
        return (
            f"database schema version {version} is newer than this "
            f"Interlock understands ({self.version}); upgrade Interlock"
        )


def statements(script: str) -> list[str]:
    """The statements of a script: ``--`` comments dropped, split at ``;``."""
    lines = [ln.split("--", 1)[0] for ln in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
