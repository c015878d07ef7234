"""Jobs: durable, at least once, idempotent, retried with backoff, failures visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from doorstep.cli import run_migrations
from doorstep.config import Settings
from doorstep.platform import jobs
from doorstep.platform.auth import Tenant
from doorstep.platform.db import make_engine, make_sessionmaker
from doorstep.platform.jobs import FAILED, SUCCEEDED, Job, JobRunner, enqueue
from tests.conftest import wait_until
from tests.databases import REDIS, fresh_database

ROOT = Path(__file__).resolve().parents[2]


@jobs.job("test.rename", max_attempts=3, backoff_seconds=0.01)
def rename(session: Session, *, tenant_id: int, name: str) -> None:
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    tenant.name = name


@jobs.job("test.explode", max_attempts=3, backoff_seconds=0.01)
def explode(session: Session, *, why: str) -> None:
    raise RuntimeError(why)


@dataclass
class JobWorld:
    settings: Settings
    factory: sessionmaker[Session]
    url: str
    tenant_id: int

    def runner(self, **kwargs: object) -> JobRunner:
        return JobRunner(self.settings, self.factory, **kwargs)  # type: ignore[arg-type]

    def job(self, job_id: int) -> Job:
        with self.factory() as session:
            row = session.get(Job, job_id)
            assert row is not None
            return row

    def tenant_name(self) -> str:
        with self.factory() as session:
            return session.scalar(select(Tenant.name).where(Tenant.id == self.tenant_id)) or ""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[JobWorld]:
    with fresh_database(tmp_path, "jobs") as url:
        run_migrations(url)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with factory() as session:
            tenant = Tenant(slug=f"jobs-{uuid.uuid4().hex[:6]}", name="Before")
            session.add(tenant)
            session.commit()
            tenant_id = tenant.id
        settings = Settings(
            database_url=url,
            redis_url=REDIS,
            redis_prefix=f"doorstep-jobs-{uuid.uuid4().hex[:8]}",
            secret_key="k" * 48,
            jobs_path=str(tmp_path / "queue.db"),
        )
        yield JobWorld(settings, factory, url, tenant_id)
        engine.dispose()


def test_rolled_back_jobs_never_run(world: JobWorld) -> None:
    runner = world.runner()
    with world.factory() as session:
        runner.bind(session)
        job_id = enqueue(
            session, "test.rename", args={"tenant_id": world.tenant_id, "name": "Never"}
        ).id
        session.rollback()
    assert runner.huey.pending_count() == 0
    with world.factory() as session:
        assert session.get(Job, job_id) is None
    runner.sweep()
    assert runner.huey.pending_count() == 0


def test_committed_job_runs_in_the_consumer(world: JobWorld) -> None:
    runner = world.runner()
    runner.start_in_process()
    try:
        with world.factory() as session:
            runner.bind(session)
            job_id = enqueue(
                session, "test.rename", args={"tenant_id": world.tenant_id, "name": "After"}
            ).id
            session.commit()
        wait_until(lambda: world.job(job_id).status == SUCCEEDED, 30, "the job to run")
    finally:
        runner.stop()
    assert world.tenant_name() == "After"
    assert world.job(job_id).attempts == 1


def test_idempotency_key_gives_one_job(world: JobWorld) -> None:
    with world.factory() as session:
        first = enqueue(
            session, "test.rename", args={"tenant_id": world.tenant_id, "name": "A"}, key="rename-1"
        )
        second = enqueue(
            session, "test.rename", args={"tenant_id": world.tenant_id, "name": "B"}, key="rename-1"
        )
        session.commit()
        assert first.id == second.id
        assert session.scalars(select(Job).where(Job.key == "rename-1")).all() == [first]


def test_a_job_runs_at_most_once_even_if_delivered_twice(world: JobWorld) -> None:
    runner = world.runner()
    with world.factory() as session:
        job_id = enqueue(
            session, "test.rename", args={"tenant_id": world.tenant_id, "name": "Once"}
        ).id
        session.commit()
    runner.run(job_id)
    runner.run(job_id)  # a duplicate delivery (at-least-once) changes nothing
    assert world.job(job_id).attempts == 1


def test_failures_retry_with_backoff_then_stay_visible(world: JobWorld) -> None:
    assert jobs.backoff(jobs._handlers["test.explode"], 1) == timedelta(seconds=0.01)
    assert jobs.backoff(jobs._handlers["test.explode"], 3) == timedelta(seconds=0.04)
    runner = world.runner()
    runner.start_in_process()
    try:
        with world.factory() as session:
            runner.bind(session)
            job_id = enqueue(session, "test.explode", args={"why": "the printer is on fire"}).id
            session.commit()
        wait_until(lambda: world.job(job_id).status == FAILED, 30, "the job to fail for good")
    finally:
        runner.stop()
    row = world.job(job_id)
    assert row.attempts == 3
    assert row.error == "RuntimeError: the printer is on fire"
    with world.factory() as session:
        assert [j.id for j in jobs.failed_jobs(session)] == [job_id]


def test_sweeper_sends_jobs_whose_hand_off_was_lost(world: JobWorld) -> None:
    with world.factory() as session:  # no runner bound: as if the process died after commit
        job_id = enqueue(
            session, "test.rename", args={"tenant_id": world.tenant_id, "name": "Swept"}
        ).id
        session.commit()
    runner = world.runner(sweep_grace=timedelta(0))
    assert runner.huey.pending_count() == 0
    runner.sweep()
    runner.start_in_process()
    try:
        wait_until(lambda: world.job(job_id).status == SUCCEEDED, 30, "the swept job to run")
    finally:
        runner.stop()
    assert world.tenant_name() == "Swept"


def test_schedules_enqueue_once_per_tick(world: JobWorld) -> None:
    runner = world.runner()
    tick = runner._ticker("test.rename", {"tenant_id": world.tenant_id, "name": "Tick"})
    tick()
    tick()  # a second worker's scheduler firing for the same minute
    with world.factory() as session:
        rows = session.scalars(select(Job).where(Job.key.like("every:test.rename:%"))).all()
    assert len(rows) == 1


def test_job_survives_a_killed_process(world: JobWorld, tmp_path: Path) -> None:
    """A process commits a job and is SIGKILLed before running it; a new process runs it."""
    script = tmp_path / "enqueue_and_hang.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys, time
            sys.path.insert(0, {str(ROOT)!r})
            from tests.platform.test_jobs import *  # registers the test jobs
            from doorstep.config import Settings
            from doorstep.platform.db import make_engine, make_sessionmaker
            from doorstep.platform.jobs import JobRunner, enqueue
            from datetime import timedelta
            settings = Settings.model_validate_json({world.settings.model_dump_json()!r})
            factory = make_sessionmaker(make_engine(settings.database_url))
            runner = JobRunner(settings, factory)
            with factory() as session:
                runner.bind(session)
                job = enqueue(session, "test.rename", delay=timedelta(seconds=2),
                              args={{"tenant_id": {world.tenant_id}, "name": "Survivor"}})
                session.commit()
            print(job.id, flush=True)
            time.sleep(600)
            """
        )
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    job_id = int(process.stdout.readline())
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert world.job(job_id).status == jobs.PENDING
    runner = world.runner()
    runner.start_in_process()
    try:
        wait_until(
            lambda: world.job(job_id).status == SUCCEEDED, 60, "the job to run after restart"
        )
    finally:
        runner.stop()
    assert world.tenant_name() == "Survivor"
