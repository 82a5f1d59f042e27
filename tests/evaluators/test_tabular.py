"""Tabular evaluator: lookups match the CSV, cost, clear errors; the real NAS-Bench-201 table if present."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from evaluators import Infeasible
from evaluators._tabular import NotInTable, TabularEvaluator, find_nb201

TABLE = """arch_str,arch_index,acc,params,note,seconds
a|b,0,91.5,1.25,good,10
b|c,1,80.0,0.5,bad,4.5
c|a,2,,2.0,empty acc,7
"""


def _key(arch: dict) -> str:
    return f"{arch['x']}|{arch['y']}"


def _cost(row: dict) -> float:
    return 2.0 * row["seconds"]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "bench.csv"
    path.write_text(TABLE)
    return path


def test_lookup_returns_the_numeric_columns_and_the_cost(table: Path) -> None:
    ev = TabularEvaluator(table, to_key=_key, cost=_cost)
    assert ev.metrics == ("arch_index", "acc", "params", "seconds")  # "note" is text
    assert ev({"x": "a", "y": "b"}) == {"arch_index": 0, "acc": 91.5, "params": 1.25, "seconds": 10, "cost": 20.0}
    assert ev({"x": "c", "y": "a"})["acc"] is None  # an empty cell
    assert ev.row({"x": "b", "y": "c"})["note"] == "bad"


def test_chosen_metrics_and_no_cost(table: Path) -> None:
    ev = TabularEvaluator(table, to_key=_key, metrics=["acc", "note"])
    assert ev({"x": "b", "y": "c"}) == {"acc": 80.0, "note": "bad"}


def test_default_key_is_canonical_json(tmp_path: Path) -> None:
    path = tmp_path / "json.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["arch", "acc"], ['{"depth":2,"op":"conv"}', "0.5"]])
    ev = TabularEvaluator(path, arch_column="arch")
    assert ev({"op": "conv", "depth": 2}) == {"acc": 0.5}


def test_an_architecture_not_in_the_table_is_infeasible_with_a_clear_message(table: Path) -> None:
    ev = TabularEvaluator(table, to_key=_key)
    with pytest.raises(NotInTable, match=r"key 'z\|z'.*not in table.*3 rows keyed by column 'arch_str'"):
        ev({"x": "z", "y": "z"})
    assert issubclass(NotInTable, Infeasible) and issubclass(NotInTable, LookupError)


def test_bad_tables_and_options(table: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TabularEvaluator(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="no column 'arch'"):
        TabularEvaluator(table, arch_column="arch").metrics  # noqa: B018
    with pytest.raises(ValueError, match=r"no column\(s\) \['accuracy'\]"):
        TabularEvaluator(table, to_key=_key, metrics=["accuracy"]).metrics  # noqa: B018
    with pytest.raises(TypeError, match="list of column names"):
        TabularEvaluator(table, metrics="acc")  # type: ignore[arg-type]
    dup = tmp_path / "dup.csv"
    dup.write_text("arch_str,acc\na,1\na,2\n")
    with pytest.raises(ValueError, match="line 3: arch_str 'a' appears twice"):
        TabularEvaluator(dup).metrics  # noqa: B018


def test_pickles_without_its_table(table: Path) -> None:
    ev = TabularEvaluator(table, to_key=_key, cost=_cost)
    ev.metrics  # noqa: B018 - loaded
    copy = pickle.loads(pickle.dumps(ev))
    assert copy._table is None
    assert copy({"x": "a", "y": "b"}) == ev({"x": "a", "y": "b"})
    assert ev.describe()["evaluator"] == "TabularEvaluator"


# -- the real NAS-Bench-201 table ------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb201_path() -> Path:
    try:
        return find_nb201()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def nb201_rows(nb201_path: Path) -> list[dict[str, str]]:
    with open(nb201_path, newline="") as f:
        return list(csv.DictReader(f))


def test_nb201_lookups_match_the_csv(nb201_path: Path, nb201_rows: list[dict[str, str]]) -> None:
    from search_spaces.nb201 import from_arch_str

    ev = TabularEvaluator.nb201(nb201_path)
    assert len(ev.table) == 15_625
    for i in (0, 1, 4_321, 15_624):
        row = nb201_rows[i]
        metrics = ev(from_arch_str(row["arch_str"]))
        assert metrics["arch_index"] == int(row["arch_index"])
        for column in ("params_m", "valid_acc_12ep", "valid_acc_200ep", "test_acc_200ep"):
            assert metrics[column] == float(row[column])
        assert metrics["cost"] == pytest.approx(12 * float(row["train_seconds_per_epoch"]))
    # The cell of the docs' examples is arch 1; its figures are read from ../shared, never kept here.
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert nb201_rows[1]["arch_str"] == cell
    assert ev(from_arch_str(cell))["test_acc_200ep"] == float(nb201_rows[1]["test_acc_200ep"])


def test_nb201_default_path_and_wrong_architecture(nb201_path: Path) -> None:
    from search_spaces import InvalidArchitecture

    ev = TabularEvaluator.nb201()
    assert ev.path.resolve() == nb201_path.resolve()  # CI reaches shared/ through a symlink
    with pytest.raises(InvalidArchitecture, match="1<-0"):
        ev({"1<-0": "conv_7x7", "2<-0": "none", "2<-1": "none", "3<-0": "none", "3<-1": "none", "3<-2": "none"})


def test_find_nb201_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluators._tabular as tabular

    # A machine may hold shared/ at / or /tmp (CI does), so look for a name nothing above tmp_path has.
    monkeypatch.delenv("AUTOML_NB201_TABLE", raising=False)
    monkeypatch.setattr(tabular, "NB201_RELATIVE", Path(tmp_path.name + "-absent", "cifar10.csv"))
    monkeypatch.setattr(tabular, "__file__", str(tmp_path / "evaluators" / "_tabular.py"))
    with pytest.raises(FileNotFoundError, match=f"was not found above {tmp_path.resolve()} or "):
        find_nb201(tmp_path)
