"""The store conformance suite runs every test on each backend: a SQLite file and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from store import SearchConfig, SearchRecord, Store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'automl.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as s:
        yield s


@pytest.fixture
def search(store: Store) -> SearchRecord:
    return store.create_search(
        "s1", SearchConfig(space="toy", strategy="random", objectives=("accuracy", "-params"), trials=10)
    )
