"""Mutation testing of the engine core with mutmut 3, one module at a time (``scripts/mutation``).

Each core module is mutated on its own and run only against the tests that reach it
(:data:`TESTS_BY_MODULE`), so a run of every module takes minutes, not hours. mutmut 3 reads its
configuration from ``pyproject.toml`` and copies the tree to ``mutants/`` under its working
directory; so each module gets a scratch directory, ``mutants/<module>/``, holding links to the
packages and the tests and a copy of ``pyproject.toml`` with a ``[tool.mutmut]`` table of its own.
The checked-in ``pyproject.toml`` has none, and the scratch directory is removed afterwards
(``--keep`` leaves it, for ``mutmut browse`` / ``mutmut show`` in it).

Not part of ``scripts/test``: it is slow, and its scores are recorded in docs/mutation.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
#: What a mutated module's tests may import: copied (the one module mutated) into mutants/.
PACKAGES = ("orchestrator", "mock_services", "interlock", "dashboard")

#: Each core module, and the tests that reach it: a mutant is run against these only.
TESTS_BY_MODULE: dict[str, list[str]] = {
    "orchestrator/breaker.py": [
        "tests/orchestrator/test_breaker.py",
    ],
    "orchestrator/retry.py": [
        "tests/orchestrator/test_retry_dag.py",
        "tests/orchestrator/test_templates.py",
        "tests/orchestrator/test_engine.py",
    ],
    "orchestrator/templates.py": [
        "tests/orchestrator/test_templates.py",
        "tests/interlock/registration/test_template.py",
    ],
    "orchestrator/lifecycle.py": [
        "tests/orchestrator/test_lifecycle.py",
        "tests/orchestrator/test_summary.py",
    ],
    "orchestrator/http/classify.py": [
        "tests/orchestrator/http/test_classify.py",
        "tests/orchestrator/http/test_adapter.py",
    ],
    "orchestrator/dag.py": [
        "tests/orchestrator/test_retry_dag.py",
        "tests/orchestrator/test_templates.py",
        "tests/orchestrator/test_lifecycle.py",
    ],
    "mock_services/faults.py": [
        "tests/mock_services/test_faults.py",
    ],
    "orchestrator/store/transitions.py": [
        "tests/orchestrator/store/test_transitions.py",
        "tests/orchestrator/test_engine.py",
        "tests/orchestrator/test_degradation.py",
    ],
}
#: Modules of which only some functions are mutated (the rest is run but not mutated): of the
#: store's transitions, the failure transition; the rest of the file is SQL plumbing that only
#: the slow engine tests reach.
FUNCTIONS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "orchestrator/store/transitions.py": ("fail_step", "_record_failure"),
}


@dataclass(frozen=True, slots=True)
class Score:
    """What mutmut made of one module's mutants."""

    module: str
    counts: Counter[str]  #: mutmut's status name → mutants
    seconds: float
    survivors: list[str]  #: names of the mutants that survived

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def killed_pct(self) -> float:
        return 100.0 * self.counts["killed"] / self.total if self.total else 0.0

    def line(self) -> str:
        c = self.counts
        other = self.total - c["killed"] - c["survived"] - c["timeout"]
        return (
            f"{self.module:32} killed {c['killed']:4}  survived {c['survived']:4}  "
            f"timed out {c['timeout']:3}  other {other:3}  total {self.total:4}  "
            f"score {self.killed_pct:5.1f} %  ({self.seconds:.0f} s)"
        )


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def mutant_patterns(module: str) -> list[str]:
    """mutmut's names for the mutants of the functions mutated (none: all of the module's)."""
    return [f"{slug(module)}.x_{name}__mutmut_*" for name in FUNCTIONS_BY_MODULE.get(module, ())]


def label(module: str) -> str:
    functions = FUNCTIONS_BY_MODULE.get(module)
    return f"{module} ({', '.join(functions)})" if functions else module


def mutmut_table(module: str, tests: list[str]) -> str:
    """The ``[tool.mutmut]`` table for one module's run."""
    table = {
        "source_paths": list(PACKAGES),
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        # the scratch directory is not a git work tree of its own
        "use_git_change_detection": False,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def prepare(scratch: Path, module: str, tests: list[str]) -> None:
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for name in (*PACKAGES, "tests"):
        (scratch / name).symlink_to(ROOT / name, target_is_directory=True)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (scratch / "pyproject.toml").write_text(pyproject + mutmut_table(module, tests), "utf-8")


def run_module(module: str, workers: int, *, show: bool, keep: bool) -> Score:
    """Mutate ``module``, run its tests against each mutant, and read mutmut's verdicts."""
    scratch = ROOT / "mutants" / slug(module)
    prepare(scratch, module, TESTS_BY_MODULE[module])
    started = time.monotonic()
    try:
        run_mutmut(module, scratch, workers)
        meta = json.loads((scratch / "mutants" / f"{module}.meta").read_text())
        patterns = mutant_patterns(module)
        status = {
            name: status_by_exit_code[code]
            for name, code in meta["exit_code_by_key"].items()
            if not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)
        }
        survivors = sorted(name for name, s in status.items() if s == "survived")
        if show:
            for name in survivors:
                print(mutmut(["show", name], scratch).stdout.rstrip())
        return Score(label(module), Counter(status.values()), time.monotonic() - started, survivors)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)


def run_mutmut(module: str, scratch: Path, workers: int) -> None:
    """``mutmut run`` at the lowest priority; its output goes to ``mutants/<module>.log``."""
    log = scratch.parent / f"{slug(module)}.log"
    command = ["nice", "-n", "19", str(VENV_BIN / "mutmut"), "run", "--max-children", str(workers)]
    command += mutant_patterns(module)
    with log.open("w") as out:
        done = subprocess.run(command, cwd=scratch, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        sys.exit(f"mutation: mutmut failed on {module} (exit {done.returncode}):\n{tail}")


def mutmut(args: list[str], scratch: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "mutmut"), *args], cwd=scratch, capture_output=True, text=True
    )


def resolve(names: list[str]) -> list[str]:
    """Module paths for the names given (a path, or a short name: ``breaker``, ``classify``)."""
    if not names:
        return list(TESTS_BY_MODULE)
    modules = []
    for name in names:
        found = [m for m in TESTS_BY_MODULE if name in (m, slug(m), Path(m).stem)]
        if not found:
            sys.exit(f"mutation: unknown module {name!r} (known: {', '.join(TESTS_BY_MODULE)})")
        modules.extend(found)
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all), e.g. breaker")
    parser.add_argument("--workers", type=int, default=2, help="mutmut's workers (default 2)")
    parser.add_argument("--survivors", action="store_true", help="show each survivor's diff")
    parser.add_argument("--keep", action="store_true", help="keep mutants/<module>/ afterwards")
    parser.add_argument(
        "--fail-under", type=float, default=None, help="exit 1 if a module scores below this %%"
    )
    args = parser.parse_args()
    os.chdir(ROOT)
    scores = []
    for module in resolve(args.modules):
        score = run_module(module, args.workers, show=args.survivors, keep=args.keep)
        print(score.line(), flush=True)
        scores.append(score)
    if args.fail_under is not None and any(s.killed_pct < args.fail_under for s in scores):
        sys.exit(1)


if __name__ == "__main__":
    main()
