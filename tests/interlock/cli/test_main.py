"""The ``interlock`` command's own errors: one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from interlock.cli.main import main

#: The installed console script (``[project.scripts]``), beside this interpreter.
INTERLOCK = shutil.which("interlock", path=str(Path(sys.executable).parent))


def test_bad_arguments_exit_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["submit", "--fake", "0"])
    assert info.value.code == 2
    assert "expected a number >= 1" in capsys.readouterr().err


def test_a_negative_key_pace_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "--only", "dashboard", "--press-every-ms", "-5"])
    assert info.value.code == 2
    assert "--press-every-ms: expected a number >= 0, got -5" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "INTERLOCK_API_PORT",
            "abc",
            "INTERLOCK_API_PORT must be a port number 1-65535, got 'abc'",
        ),
        (
            "INTERLOCK_BILLING_PORT",
            "70000",
            "INTERLOCK_BILLING_PORT must be a port number 1-65535, got '70000'",
        ),
        (
            "INTERLOCK_API_URL",
            "localhost:8700",
            "INTERLOCK_API_URL must be an http:// or https:// URL, got 'localhost:8700'",
        ),
        ("INTERLOCK_UVLOOP", "yes", "INTERLOCK_UVLOOP must be 0 or 1, got 'yes'"),
    ],
)
def test_a_bad_environment_value_is_named_in_one_line(
    variable: str, value: str, message: str
) -> None:
    assert INTERLOCK is not None, (
        "the interlock console script is not installed (scripts/bootstrap)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    result = subprocess.run(
        [INTERLOCK, "tasks"],
        env={**env, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr, result.stdout) == (2, f"interlock: {message}\n", "")
