"""``interlock bench --json``: one JSON object with every benchmark's numbers (tiny runs)."""

from __future__ import annotations

import json

import pytest

from tests.interlock.cli.conftest import run_cli


@pytest.mark.slow
def test_bench_json_prints_one_object_with_the_numbers() -> None:
    result = run_cli(
        "bench",
        "--json",
        "--only",
        "engine",
        "--only",
        "services",
        "--only",
        "registration",
        "--sequential",
        "20",
        "--parallel",
        "200",
        "--requests",
        "300",
        "--registrations",
        "40",
    )
    assert result.returncode == 0, result.stderr
    both = json.loads(result.stdout)
    services = both["services"]
    assert services["requests_each"] == 300
    assert services["with_fault_layer_rps"] > 0 and services["without_fault_layer_rps"] > 0
    assert both["registration"]["registrations_per_s"] > 0
    assert both["registration"]["engine_cpu_ms_per_registration"] > 0
    assert both["registration"]["services_cpu_ms_per_registration"] > 0
    data = both["engine"]
    for key in ("concurrency_1", "concurrency_100"):
        run = data[key]
        assert run["workflows_per_s"] > 0
        assert run["p99_ms"] >= run["p50_ms"] > 0
    assert data["concurrency_100"]["workflows"] == 200
    assert data["peak_rss_mb"] > 0
    assert both["machine"]["python_ms"] > 0 and both["machine"]["fdatasync_us"] > 0
    assert all(
        both[name]["other_processes_cores"] >= 0 for name in ("engine", "services", "registration")
    )
