"""Background jobs: one interface to enqueue work and declare schedules.

A job is a row of the `jobs` table written in the caller's transaction (so a rolled-back change
never runs its jobs, and a committed one always does), then handed to Huey after commit:
in-process threads on a SQLite queue in the embedded mode, `doorstep worker` processes on Redis
in production. A sweeper re-sends rows that Huey never ran (a crash between commit and hand-off),
so delivery is at least once; handlers are idempotent and rows carry an idempotency key.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlalchemy import ForeignKey, Integer, Select, String, Text, event, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from doorstep.config import Settings, get_settings
from doorstep.platform.db import Base, utcnow

log = logging.getLogger("doorstep.jobs")
RUNNER_KEY = "doorstep.jobs"
_PENDING_KEY = "doorstep.pending_jobs"

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("tenants.id", ondelete="CASCADE"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(64), index=True)
    args: Mapped[dict[str, Any]]
    key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(12), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


Handler = Callable[..., None]


@dataclass(frozen=True)
class JobSpec:
    handler: Handler
    max_attempts: int
    backoff_seconds: float


_handlers: dict[str, JobSpec] = {}
_schedules: list[tuple[str, crontab, dict[str, Any]]] = []


def job(
    name: str, *, max_attempts: int = 5, backoff_seconds: float = 2.0
) -> Callable[[Handler], Handler]:
    """Register `handler(session, **args)`: runs in its own transaction; must be idempotent."""

    def register(handler: Handler) -> Handler:
        _handlers[name] = JobSpec(handler, max_attempts, backoff_seconds)
        return handler

    return register


def every(name: str, schedule: crontab, **args: Any) -> None:
    """Run job `name` on a schedule (a Huey crontab). Each tick runs once, however many workers."""
    _schedules.append((name, schedule, args))


def backoff(spec: JobSpec, attempts: int) -> timedelta:
    return timedelta(seconds=spec.backoff_seconds * 2 ** max(0, attempts - 1))


def enqueue(
    session: Session,
    name: str,
    *,
    args: dict[str, Any] | None = None,
    key: str | None = None,
    tenant_id: int | None = None,
    delay: timedelta | None = None,
) -> Job:
    """Ask for `name(session, **args)` to run after this transaction commits (never on rollback).

    With `key`, enqueueing the same key again returns the first job instead of a second one."""
    if name not in _handlers:
        raise KeyError(f"no job named {name!r}")
    if key is not None:
        existing = session.scalar(select(Job).where(Job.key == key))
        if existing is not None:
            return existing
    row = Job(
        name=name,
        args=args or {},
        key=key,
        tenant_id=tenant_id,
        max_attempts=_handlers[name].max_attempts,
        run_after=utcnow() + (delay or timedelta()),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same key, enqueued concurrently
        existing = session.scalar(select(Job).where(Job.key == key))
        if existing is None:
            raise
        return existing
    session.info.setdefault(_PENDING_KEY, []).append((row.id, delay))
    return row


def settings_of(session: Session) -> Settings:
    """The settings of the process a session works for: the runner (request or job) knows them,
    so tests that hand in their own settings reach services too; else the environment's."""
    runner = session.info.get(RUNNER_KEY)
    return runner.settings if runner is not None else get_settings()


@event.listens_for(Session, "after_commit")
def _hand_off(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released, not committed: hand the jobs over at the commit
    pending = session.info.pop(_PENDING_KEY, [])
    runner: JobRunner | None = session.info.get(RUNNER_KEY)
    if runner is None:
        return  # the sweeper sends them
    for job_id, delay in pending:
        try:
            runner.send(job_id, delay)
        except Exception:
            log.exception("could not hand job %s to the queue; the sweeper will", job_id)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT rolled back; a job lost with it is skipped when it is run
    session.info.pop(_PENDING_KEY, None)


class _QuietConsumer(Consumer):
    # Inside the web server, uvicorn owns SIGTERM/SIGINT; Huey must not replace its handlers.
    def _set_signal_handlers(self) -> None:
        pass


class JobRunner:
    """Binds the job table to a Huey queue for one process (server or worker)."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        *,
        sweep_grace: timedelta = timedelta(seconds=30),
    ) -> None:
        self.factory = factory
        self.settings = settings
        # How long a due job may wait for its hand-off before the sweeper sends it again.
        self.sweep_grace = sweep_grace
        self.huey: Huey
        if settings.redis_url:
            self.huey = RedisHuey(
                name=f"{settings.redis_prefix}:jobs", url=settings.redis_url, utc=True
            )
        else:
            Path(settings.jobs_path).parent.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(name="doorstep-jobs", filename=settings.jobs_path, utc=True)
        self._run = self.huey.task(name="doorstep.run_job")(self.run)
        self.huey.periodic_task(crontab(), name="doorstep.sweep")(self.sweep)
        for index, (name, schedule, args) in enumerate(_schedules):
            self.huey.periodic_task(schedule, name=f"doorstep.every.{index}.{name}")(
                self._ticker(name, args)
            )
        self._consumer: Consumer | None = None

    def bind(self, session: Session) -> None:
        session.info[RUNNER_KEY] = self

    def send(self, job_id: int, delay: timedelta | None = None) -> None:
        if delay:
            self._run.schedule(args=(job_id,), delay=delay.total_seconds())
        else:
            self._run(job_id)

    def run(self, job_id: int) -> None:
        """Run one job row: at most one success, retried with exponential backoff."""
        with self.factory() as session:
            self.bind(session)
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == PENDING)
                .values(status=RUNNING, attempts=Job.attempts + 1, updated_at=utcnow())
            )
            session.commit()
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return  # done already, or running elsewhere: idempotent
            row = session.get(Job, job_id)
            assert row is not None
            spec = _handlers.get(row.name)
            try:
                if spec is None:
                    raise LookupError(f"no handler for job {row.name!r} in this process")
                spec.handler(session, **row.args)
                row.status, row.error, row.finished_at = SUCCEEDED, None, utcnow()
                session.commit()
            except Exception as exc:
                session.rollback()
                row = session.get(Job, job_id)
                assert row is not None
                row.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
                if spec is not None and row.attempts < row.max_attempts:
                    delay = backoff(spec, row.attempts)
                    row.status, row.run_after = PENDING, utcnow() + delay
                    session.commit()
                    self.send(job_id, delay)
                else:
                    row.status, row.finished_at = FAILED, utcnow()
                    session.commit()
                    log.error("job %s (%s) failed for good: %s", job_id, row.name, row.error)

    def sweep(self) -> None:
        """Re-send due jobs that nobody picked up, and free jobs stuck by a killed worker."""
        now = utcnow()
        with self.factory() as session:
            stale = now - timedelta(minutes=10)
            session.execute(
                update(Job)
                .where(Job.status == RUNNING, Job.updated_at < stale)
                .values(status=PENDING, error="worker stopped while running; retried")
            )
            due = list(
                session.scalars(
                    select(Job.id).where(
                        Job.status == PENDING,
                        Job.run_after <= now,
                        Job.updated_at <= now - self.sweep_grace,
                    )
                )
            )
            session.commit()
        for job_id in due:
            self.send(job_id)

    def _ticker(self, name: str, args: dict[str, Any]) -> Callable[[], None]:
        def tick() -> None:
            minute = utcnow().strftime("%Y%m%dT%H%M")
            with self.factory() as session:
                self.bind(session)
                enqueue(session, name, args=args, key=f"every:{name}:{minute}")
                session.commit()

        return tick

    # -- consumers ------------------------------------------------------------------------

    def start_in_process(self) -> None:
        self._consumer = _QuietConsumer(
            self.huey, workers=self.settings.jobs_workers, worker_type="thread", periodic=True
        )
        self._consumer.start()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None

    def run_worker(self, workers: int) -> None:
        """`doorstep worker`: a blocking consumer with Huey's own signal handling."""
        Consumer(self.huey, workers=workers, worker_type="thread", periodic=True).run()


def _of_tenant(stmt: Select[Any], tenant_id: int | None) -> Select[Any]:
    # A tenant's admin sees its own jobs and the platform's (tenant-less) housekeeping.
    if tenant_id is None:
        return stmt
    return stmt.where(or_(Job.tenant_id == tenant_id, Job.tenant_id.is_(None)))


def failed_jobs(session: Session, *, limit: int = 100, tenant_id: int | None = None) -> list[Job]:
    stmt = select(Job).where(Job.status == FAILED)
    return list(session.scalars(_of_tenant(stmt, tenant_id).order_by(Job.id.desc()).limit(limit)))


def recent_jobs(session: Session, *, limit: int = 50, tenant_id: int | None = None) -> list[Job]:
    """The newest jobs in any state, for the admin page."""
    return list(
        session.scalars(_of_tenant(select(Job), tenant_id).order_by(Job.id.desc()).limit(limit))
    )
