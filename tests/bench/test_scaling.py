"""The scale-out measurement, tiny: 1 server process, 1 client, about a second per rpc."""

from __future__ import annotations

import json
from pathlib import Path

from allocation_engine.bench.scaling import run_scaling, write_report


def test_a_tiny_scaling_run_reports_sane_figures(tmp_path: Path) -> None:
    report = run_scaling(servers=(1,), clients=1, duration=1.0, nodes=50, skus=100)
    assert {p["rpc"] for p in report["points"]} == {"allocate", "reserve"}
    for point in report["points"]:
        assert point["calls"] > 0
        assert point["errors"] == {}
        assert point["server_cpu_ms_per_call"] > 0
        assert point["redis_cpu_ms_per_call"] >= 0
        assert point["p99_ms"] >= point["p50_ms"] > 0
    path = write_report(report, tmp_path, "test")
    assert "server_cpu_ms_per_call" in path.read_text()
    assert json.loads((tmp_path / "scaling.json").read_text())["points"]
