"""``interlock bench --only dashboard``, tiny: the sandbox as child processes, one pair of bursts
(one with a dashboard probe attached and pressing keys), a top-up and the task list's opening."""

from __future__ import annotations

import json

import pytest

from interlock.bench.dashboard import format_dashboard_report
from tests.interlock.cli.conftest import run_cli


@pytest.mark.slow
def test_the_dashboard_benchmark_runs_end_to_end_and_reports_every_number() -> None:
    result = run_cli(
        *("bench", "--json", "--only", "dashboard"),
        *("--burst", "20", "--pairs", "1", "--open-tasks", "200"),
    )
    assert result.returncode == 0, result.stderr
    bench = json.loads(result.stdout)["dashboard"]
    (pair,) = bench["pairs"]
    assert pair["order"] == "AB"
    a, b = pair["a"], pair["b"]
    assert a["registrations"] == b["registrations"] == 20
    assert a["registrations_per_s"] > 0 and b["registrations_per_s"] > 0
    assert pair["b_over_a_pct"] == pytest.approx(
        b["registrations_per_s"] / a["registrations_per_s"] * 100, abs=0.1
    )
    assert a["cpu_s"]["orchestrator"] > 0 and a["cpu_s"]["dashboard"] is None
    dashboard = b["dashboard"]
    assert dashboard["finished"] and dashboard["lost_presses"] == 0
    assert dashboard["presses"] == bench["key_presses"] >= 1
    assert 0 < bench["key_p50_ms"] <= bench["key_p99_ms"] <= bench["key_max_ms"]
    assert dashboard["cpu_s"] > 0 and dashboard["peak_rss_mb"] > 0
    assert dashboard["events"] > 20  # every registration's events reached it
    # 100 warm-up registrations and the pair's 40 were there; the top-up made the rest.
    assert bench["topped_up"] == 60
    opened = bench["open"]
    assert opened["tasks"] >= 200 and opened["rows"] > 0
    assert 0 < opened["open_s"] < opened["launch_to_open_s"]
    assert isinstance(bench["pass_ratio"], bool) and isinstance(bench["pass_key_p99"], bool)
    report = format_dashboard_report(bench)
    assert "median B/A" in report and "task list open on" in report
    assert ("PASS" in report) or ("FAIL" in report)
