"""Jobs the producer runs (tickstock's ``jobs`` table, SPEC §13).

Every function that serves a user takes that user's id and filters on it, so another user's job
is simply not found (the API answers 404). The producer's reports change a row only through the
conditional updates here (``apply_progress``, ``apply_results``, ``cancel_job``, the sweeps):
progress never goes backwards and a finished job stays finished, so whichever node runs one of
them first stores the change and every other node finds nothing to change. Each change bumps
``seq``, the state version a job event carries.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Final, cast

import asyncpg
from typing_extensions import TypedDict

from tickstock.queries._sql import Params
from tickstock.realtime.events import JobResults, JobTrade, JobUpdate
from tickstock.vocab import JobKind, JobStatus

__all__ = [
    "AdminJobSummary",
    "Announcement",
    "Job",
    "JobSummary",
    "apply_progress",
    "apply_results",
    "cancel_job",
    "fail_stalled_jobs",
    "fail_unclaimed_jobs",
    "insert_job",
    "job_uuid",
    "mark_announced",
    "select_bar_ranges",
    "select_job",
    "select_job_trades",
    "select_jobs",
    "select_jobs_to_announce",
    "touch_job",
]

PICKUP_ERROR: Final = "the producer did not pick the job up"


class JobSummary(TypedDict):
    """A job without its results: what lists show and what job events carry."""

    id: str
    user_id: int
    kind: JobKind
    status: JobStatus
    params: dict[str, Any]
    progress: float
    current_symbol: str | None
    message: str | None
    error: str | None
    estimated_completion: dt.datetime | None
    seq: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class AdminJobSummary(JobSummary):
    """Anyone's job, with the owner's name (the admin list)."""

    username: str


class Job(JobSummary):
    """One job with its results (a completed backtest's metrics, curve and trades)."""

    results: JobResults | None


class Announcement(TypedDict):
    """A queued job to publish to the producer (again)."""

    id: str
    user_id: int
    kind: JobKind
    params: dict[str, Any]
    announcements: int


_SUMMARY: Final = (
    "j.id, j.user_id, j.kind, j.status, j.params, j.progress, j.current_symbol, j.message,"
    " j.error, j.estimated_completion, j.seq, j.created_at, j.started_at, j.updated_at,"
    " j.finished_at"
)
# The same columns for a RETURNING clause (no table alias there).
_RETURNING: Final = _SUMMARY.replace("j.", "")


def job_uuid(value: str) -> uuid.UUID | None:
    """A job id as sent by a client or the producer; None when it cannot be one of ours."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def _summary(row: asyncpg.Record) -> JobSummary:
    params = row["params"]
    return {
        "id": str(row["id"]),
        "user_id": row["user_id"],
        "kind": row["kind"],
        "status": row["status"],
        "params": params if isinstance(params, dict) else {},
        "progress": row["progress"],
        "current_symbol": row["current_symbol"],
        "message": row["message"],
        "error": row["error"],
        "estimated_completion": row["estimated_completion"],
        "seq": row["seq"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "updated_at": row["updated_at"],
        "finished_at": row["finished_at"],
    }


# --- the API ------------------------------------------------------------------------------------


async def insert_job(
    conn: asyncpg.Connection,
    user_id: int,
    kind: JobKind,
    params: dict[str, Any],
    max_active: int,
) -> JobSummary | None:
    """Queue a job (announced once by the caller after the commit); None when the user already
    has ``max_active`` queued or running (checked under a row lock on the user, so two
    concurrent submissions cannot both pass the cap)."""
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
        active = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE user_id = $1 AND status IN ('queued', 'running')",
            user_id,
        )
        if active >= max_active:
            return None
        row = await conn.fetchrow(
            "INSERT INTO jobs (user_id, kind, params, announced_at, announcements)"
            f" VALUES ($1, $2, $3::jsonb, now(), 1) RETURNING {_RETURNING}",
            user_id,
            kind,
            params,
        )
    assert row is not None
    return _summary(row)


async def select_jobs(
    conn: asyncpg.Connection,
    *,
    user_id: int | None,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    after: tuple[dt.datetime, str] | None = None,
    limit: int,
) -> list[AdminJobSummary]:
    """Jobs newest first (one user's, or everyone's with ``user_id=None``), after the keyset
    ``(created_at, id)`` of the last row of the previous page."""
    params = Params()
    conditions: list[str] = []
    if user_id is not None:
        conditions.append(f"j.user_id = {params.add(user_id, '::bigint')}")
    if status is not None:
        conditions.append(f"j.status = {params.add(status)}")
    if kind is not None:
        conditions.append(f"j.kind = {params.add(kind)}")
    if after is not None:
        created, ident = after
        conditions.append(
            f"(j.created_at, j.id) < ({params.add(created, '::timestamptz')},"
            f" {params.add(ident, '::uuid')})"
        )
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {_SUMMARY}, u.username FROM jobs AS j JOIN users AS u ON u.id = j.user_id"
        f"{where} ORDER BY j.created_at DESC, j.id DESC LIMIT {params.add(limit, '::int')}"
    )
    rows = await conn.fetch(sql, *params.values)
    return [cast(AdminJobSummary, {**_summary(row), "username": row["username"]}) for row in rows]


async def select_job(
    conn: asyncpg.Connection, user_id: int | None, job_id: uuid.UUID
) -> Job | None:
    """One job with its results: the user's (None for anyone else's), or anyone's for None."""
    params = Params()
    sql = f"SELECT {_SUMMARY}, j.results FROM jobs AS j WHERE j.id = {params.add(job_id)}"
    if user_id is not None:
        sql += f" AND j.user_id = {params.add(user_id, '::bigint')}"
    row = await conn.fetchrow(sql, *params.values)
    if row is None:
        return None
    return cast(Job, {**_summary(row), "results": row["results"]})


async def select_job_trades(
    conn: asyncpg.Connection, user_id: int, job_id: uuid.UUID
) -> tuple[JobSummary, list[JobTrade]] | None:
    """A user's job and its trades (empty until it completes); None for anyone else's."""
    row = await conn.fetchrow(
        f"SELECT {_SUMMARY}, coalesce(j.results -> 'trades', '[]'::jsonb) AS trades"
        " FROM jobs AS j WHERE j.id = $1 AND j.user_id = $2",
        job_id,
        user_id,
    )
    if row is None:
        return None
    trades = row["trades"]
    return _summary(row), trades if isinstance(trades, list) else []


async def cancel_job(
    conn: asyncpg.Connection, user_id: int, job_id: uuid.UUID
) -> tuple[JobSummary | None, JobStatus | None]:
    """Cancel a user's queued or running job: (the cancelled job, None), or (None, its status)
    when it had already finished, or (None, None) when it is not theirs."""
    row = await conn.fetchrow(
        "UPDATE jobs SET status = 'cancelled', message = 'cancelled by the user',"
        " finished_at = now(), updated_at = now(), seq = seq + 1"
        " WHERE id = $1 AND user_id = $2 AND status IN ('queued', 'running')"
        f" RETURNING {_RETURNING}",
        job_id,
        user_id,
    )
    if row is not None:
        return _summary(row), None
    status = await conn.fetchval(
        "SELECT status FROM jobs WHERE id = $1 AND user_id = $2", job_id, user_id
    )
    return None, status


# --- the producer's reports ---------------------------------------------------------------------


async def apply_progress(
    conn: asyncpg.Connection, job_id: uuid.UUID, update: JobUpdate
) -> JobSummary | None:
    """Store a progress report when it moves the job on: the first report of a queued job, or
    progress beyond the stored (never backwards); a failed or cancelled report ends the job,
    and for a data load so does completed (a backtest completes with its results). None when
    nothing changed."""
    status = update["status"]
    progress = update["progress"]
    if status in ("failed", "cancelled"):
        return await _finish(conn, job_id, status, update["error"], None, update["message"])
    row = await conn.fetchrow(
        "UPDATE jobs SET"
        " status = CASE WHEN $3 AND kind = 'data_load' THEN 'completed' ELSE 'running' END,"
        " progress = CASE WHEN $3 AND kind = 'data_load' THEN 1"
        "  ELSE greatest(progress, coalesce($2::float8, progress)) END,"
        " current_symbol = coalesce($4, current_symbol), message = coalesce($5, message),"
        " estimated_completion = coalesce($6::timestamptz, estimated_completion),"
        " started_at = coalesce(started_at, now()),"
        " finished_at = CASE WHEN $3 AND kind = 'data_load' THEN now() END,"
        " updated_at = now(), heard_at = now(), seq = seq + 1"
        " WHERE id = $1 AND status IN ('queued', 'running') AND (status = 'queued'"
        "  OR $2::float8 > progress OR ($3 AND kind = 'data_load'))"
        f" RETURNING {_RETURNING}",
        job_id,
        progress,
        status == "completed",
        update["current_symbol"],
        update["message"],
        _timestamp(update["estimated_completion"]),
    )
    return None if row is None else _summary(row)


async def apply_results(
    conn: asyncpg.Connection, job_id: uuid.UUID, update: JobUpdate
) -> JobSummary | None:
    """Finish a queued or running job with the producer's outcome (also before any progress
    report); None when it had finished already (or is not ours)."""
    status = update["status"]
    if status not in ("completed", "failed", "cancelled"):
        return None
    return await _finish(
        conn, job_id, status, update["error"], update["results"], update["message"]
    )


async def _finish(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    status: str,
    error: str | None,
    results: JobResults | None,
    message: str | None,
) -> JobSummary | None:
    if status == "failed" and error is None:
        error = "the producer reported the job failed"
    row = await conn.fetchrow(
        "UPDATE jobs SET status = $2, error = $3, results = $4::jsonb,"
        " message = coalesce($5, message),"
        " progress = CASE WHEN $2 = 'completed' THEN 1 ELSE progress END,"
        " started_at = coalesce(started_at, now()), finished_at = now(), updated_at = now(),"
        " heard_at = now(), seq = seq + 1"
        " WHERE id = $1 AND status IN ('queued', 'running')"
        f" RETURNING {_RETURNING}",
        job_id,
        status,
        error,
        results,
        message,
    )
    return None if row is None else _summary(row)


async def touch_job(conn: asyncpg.Connection, job_id: uuid.UUID) -> JobStatus | None:
    """Note that the producer spoke of a job (a report that changed nothing still says it is
    alive: the stall clock restarts, at most once a second); its status, None when unknown."""
    status: JobStatus | None = await conn.fetchval(
        "WITH touched AS (UPDATE jobs SET heard_at = now() WHERE id = $1 AND status = 'running'"
        " AND heard_at < now() - interval '1 second' RETURNING status)"
        " SELECT status FROM jobs WHERE id = $1",
        job_id,
    )
    return status


def _timestamp(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


# --- the sweeps (any node; rows are taken with SKIP LOCKED, so each is handled by one) ---------


async def fail_unclaimed_jobs(
    conn: asyncpg.Connection, pickup_seconds: float, limit: int
) -> list[JobSummary]:
    """Fail the queued jobs no progress report claimed within ``pickup_seconds``."""
    rows = await conn.fetch(
        "UPDATE jobs SET status = 'failed', error = $3, finished_at = now(), updated_at = now(),"
        " seq = seq + 1 WHERE id IN (SELECT id FROM jobs WHERE status = 'queued'"
        "  AND created_at < now() - make_interval(secs => $1) ORDER BY created_at"
        "  LIMIT $2 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {_RETURNING}",
        pickup_seconds,
        limit,
        PICKUP_ERROR,
    )
    return [_summary(row) for row in rows]


async def fail_stalled_jobs(
    conn: asyncpg.Connection, stall_seconds: float, limit: int
) -> list[JobSummary]:
    """Fail the running jobs the producer has said nothing about for ``stall_seconds``."""
    rows = await conn.fetch(
        "UPDATE jobs SET status = 'failed', finished_at = now(), updated_at = now(),"
        " seq = seq + 1, error = 'stalled: the producer sent no progress for '"
        "  || round($1::numeric) || ' seconds'"
        " WHERE id IN (SELECT id FROM jobs WHERE status = 'running'"
        "  AND heard_at < now() - make_interval(secs => $1) ORDER BY heard_at"
        "  LIMIT $2 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {_RETURNING}",
        stall_seconds,
        limit,
    )
    return [_summary(row) for row in rows]


async def select_jobs_to_announce(
    conn: asyncpg.Connection, every_seconds: float, limit: int
) -> list[Announcement]:
    """Queued jobs last announced ``every_seconds`` ago or more, locked (SKIP LOCKED) until the
    caller's transaction ends, so one node announces each."""
    rows = await conn.fetch(
        "SELECT id, user_id, kind, params, announcements FROM jobs WHERE status = 'queued'"
        " AND (announced_at IS NULL OR announced_at < now() - make_interval(secs => $1))"
        " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        every_seconds,
        limit,
    )
    return [
        {
            "id": str(row["id"]),
            "user_id": row["user_id"],
            "kind": row["kind"],
            "params": row["params"] if isinstance(row["params"], dict) else {},
            "announcements": row["announcements"],
        }
        for row in rows
    ]


async def mark_announced(conn: asyncpg.Connection, job_ids: list[str]) -> None:
    await conn.execute(
        "UPDATE jobs SET announced_at = now(), announcements = announcements + 1"
        " WHERE id = ANY($1::uuid[])",
        job_ids,
    )


async def select_bar_ranges(
    conn: asyncpg.Connection, symbols: list[str]
) -> dict[str, tuple[dt.date, dt.date]]:
    """The first and last stored daily bar of each symbol that has any (what a backtest over
    these symbols can cover)."""
    rows = await conn.fetch(
        "SELECT s.symbol, b.first, b.last FROM unnest($1::text[]) AS s (symbol)"
        " CROSS JOIN LATERAL (SELECT min(date) AS first, max(date) AS last FROM ohlcv_daily"
        "  WHERE ohlcv_daily.symbol = s.symbol) AS b WHERE b.first IS NOT NULL",
        symbols,
    )
    return {row["symbol"]: (row["first"], row["last"]) for row in rows}
