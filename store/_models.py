"""SQLAlchemy 2.x models: one declarative class per table.

These classes never leave the store: ``to_record()`` turns a row into a frozen record. Finders
are classmethods that take the session; nothing here commits (the session scope in
``store._engine`` does). The schema itself is owned by the Alembic migrations in
``store/_migrations/versions``; a test checks that these models and the migrations agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from store._config import SearchConfig
from store._records import FinalRecord, SearchRecord, TrialRecord, TrialStatus

__all__ = ["Base", "CheckpointModel", "SearchModel", "StepModel", "TrialModel", "UTCDateTime"]

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes in and out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the UTC wall time is stored
    and the zone is put back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class SearchModel(Base):
    __tablename__ = "searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    space: Mapped[str] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(String(255))
    objectives: Mapped[list[str]]
    config: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    driver: Mapped[str | None] = mapped_column(String(255))  # "host:pid" holding the search
    driver_heartbeat_at: Mapped[dt.datetime | None]
    # Wall-clock seconds drivers have spent running the search, summed over resumes (--time).
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Counters handed out atomically (UPDATE ... SET n = n + 1 RETURNING n): trial numbers and
    # result sequence numbers never collide, whatever the number of processes.
    trial_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @classmethod
    def find(cls, session: Session, search_id: int, *, for_update: bool = False) -> SearchModel | None:
        stmt = select(cls).where(cls.id == search_id)
        if for_update:
            stmt = stmt.with_for_update()
        return session.scalars(stmt).one_or_none()

    @classmethod
    def find_by_name(cls, session: Session, name: str) -> SearchModel | None:
        return session.scalars(select(cls).where(cls.name == name)).one_or_none()

    @classmethod
    def bump_counter(cls, session: Session, search_id: int, counter: str) -> int | None:
        """Add one to ``trial_count`` or ``result_count`` and return the new value (None: no such
        search). The UPDATE takes the row's write lock, so concurrent callers get distinct values.
        """
        table = cls.__table__
        column = table.c[counter]
        stmt = update(table).where(table.c.id == search_id).values({counter: column + 1})
        if session.get_bind().dialect.update_returning:
            return session.execute(stmt.returning(column)).scalar_one_or_none()
        if session.execute(stmt).rowcount == 0:
            return None
        return session.execute(select(column).where(table.c.id == search_id)).scalar_one()

    def to_record(self) -> SearchRecord:
        return SearchRecord(
            id=self.id,
            name=self.name,
            config=SearchConfig.from_dict(self.config),
            created_at=self.created_at,
            driver=self.driver,
            driver_heartbeat_at=self.driver_heartbeat_at,
            elapsed_seconds=self.elapsed_seconds or 0.0,
        )


class TrialModel(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("search_id", "number"),
        UniqueConstraint("search_id", "result_seq"),
        Index(None, "search_id", "status"),
        Index(None, "search_id", "value"),
        Index(None, "arch_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    arch: Mapped[dict[str, Any]]
    arch_key: Mapped[str] = mapped_column(String(255))
    proposer: Mapped[str] = mapped_column(String(255))
    parent: Mapped[int | None] = mapped_column(Integer)  # number of the parent trial
    info: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    value: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]

    @classmethod
    def find(cls, session: Session, search_id: int, number: int, *, for_update: bool = False) -> TrialModel | None:
        stmt = select(cls).where(cls.search_id == search_id, cls.number == number)
        if for_update:
            stmt = stmt.with_for_update()
        return session.scalars(stmt).one_or_none()

    def to_record(self) -> TrialRecord:
        return TrialRecord(
            search_id=self.search_id,
            number=self.number,
            status=TrialStatus(self.status),
            arch=dict(self.arch),
            arch_key=self.arch_key,
            proposer=self.proposer,
            parent=self.parent,
            info=dict(self.info or {}),
            metrics=dict(self.metrics or {}),
            value=self.value,
            error=self.error,
            worker=self.worker,
            attempts=self.attempts,
            result_seq=self.result_seq,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            heartbeat_at=self.heartbeat_at,
        )


class StepModel(Base):
    __tablename__ = "trial_steps"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    metrics: Mapped[dict[str, Any]]
    value: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime]


class CheckpointModel(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (Index(None, "search_id", "result_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    result_seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]


class FinalModel(Base):
    """A final training of one architecture (a trial's) on train+val, scored on the test split."""

    __tablename__ = "finals"
    __table_args__ = (UniqueConstraint("search_id", "number", "seed", "epochs"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # the trial whose architecture was retrained
    seed: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]]  # test_accuracy, test_loss, train_seconds, weights, ...
    created_at: Mapped[dt.datetime]

    def to_record(self) -> FinalRecord:
        return FinalRecord(self.search_id, self.number, self.seed, self.epochs, dict(self.metrics), self.created_at)
