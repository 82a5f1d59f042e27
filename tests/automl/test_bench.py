"""The NAS-Bench-201 harness: protocol arithmetic on hand-made inputs, and a small real run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from automl import _bench as bench

TABLE = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "nb201" / "cifar10.csv"


def test_curve_tracks_the_test_accuracy_of_the_best_cell_by_search_signal():
    # (cost, valid_acc_12ep, test_acc_200ep): the 2nd cell has the best 12-epoch signal, so its
    # 200-epoch test accuracy (90) is reported even though the 3rd cell tests better (95).
    history = [(150.0, 60.0, 80.0), (150.0, 70.0, 90.0), (150.0, 65.0, 95.0), (11_600.0, 99.0, 85.0)]
    curve = bench._curve(history, budget=12_000)
    # grid points every 200 s: at 0 nothing is done; at 200 the 1st; at 400 the 1st, 2nd (300 s) ...
    assert math.isnan(curve[0])
    assert curve[1] == 80.0
    assert curve[2] == 90.0  # 300 s spent: first two done
    assert curve[3] == 90.0  # 450 s: the third does not change the choice
    assert curve[-2] == 90.0
    assert curve[-1] == 85.0  # the last one started before the budget and overran it: it counts


def test_summary_orders_by_test_accuracy_and_measures_gaps():
    runs = [
        bench.RunResult("random", 0, 90.0, 93.5, 100, 1.0, ()),
        bench.RunResult("random", 1, 90.2, 93.7, 100, 1.0, ()),
        bench.RunResult("tpe", 0, 91.0, 94.2, 90, 2.0, ()),
    ]
    rows = bench.summary_rows(bench.BenchResult(12_000, runs))
    assert [r["strategy"] for r in rows] == ["tpe", "random"]
    rnd = rows[1]
    assert rnd["test_mean"] == pytest.approx(93.6)
    assert rnd["test_std"] == pytest.approx(0.1)
    assert rnd["vs_tpe"] == pytest.approx(-0.6)
    assert rnd["vs_best_cell"] == pytest.approx(93.6 - 94.37)
    assert rnd["paper_test"] == 93.70
    assert rnd["trials_per_second"] == pytest.approx(100.0)


@pytest.mark.skipif(not TABLE.is_file(), reason="NAS-Bench-201 table not beside the project")
def test_small_real_bench_through_the_store(tmp_path):
    result = bench.run_bench(["random", "optuna"], 2, table=str(TABLE), processes=2)
    assert len(result.runs) == 4
    for r in result.runs:
        # the protocol: about 100 evaluations in 12,000 simulated seconds, chosen cells are real
        assert 60 <= r.evals <= 160
        assert 80.0 < r.test <= 94.3733  # the best cell of the table
        assert r.curve[-1] == r.test
    png = bench.plot(result, tmp_path / "curve.png")
    assert png.stat().st_size > 10_000
