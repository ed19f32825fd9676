"""The ``interlock`` command's own errors: one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import pytest

from interlock.cli.main import main


def test_bad_arguments_exit_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["submit", "--fake", "0"])
    assert info.value.code == 2
    assert "expected a number >= 1" in capsys.readouterr().err
