"""Jobs (SPEC §13): backtests a user asks the producer to run, and admins' data loads.

A job is queued here, handed to the producer on Redis (``realtime/jobs.py`` announces it again
until the producer picks it up) and changed afterwards only by the producer's reports, a
cancellation or the sweep. Only ever the caller's own: another user's job id is a 404 on every
route, never a 403. Every write is behind ``login_required``, whose CSRF check applies to
cookie sessions.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, cast, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from tickstock.auth import admin_required, current_user, login_required
from tickstock.config import get_settings
from tickstock.errors import APIError
from tickstock.export import CSV_MAX_ROWS, csv_response
from tickstock.extensions.database import get_db
from tickstock.extensions.redis import get_redis
from tickstock.jsonutil import dumps
from tickstock.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    paginate,
    success,
)
from tickstock.queries.jobs import (
    AdminJobSummary,
    Job,
    JobSummary,
    cancel_job,
    insert_job,
    job_uuid,
    select_bar_ranges,
    select_job,
    select_job_trades,
    select_jobs,
)
from tickstock.queries.patterns import select_pattern_definitions
from tickstock.queries.symbols import select_unknown_symbols
from tickstock.realtime.events import JobTrade
from tickstock.realtime.hub import get_hub
from tickstock.realtime.jobs import (
    announcement_channel,
    announcement_message,
    cancel_message,
    job_events,
)
from tickstock.validation import BIGINT_MAX, PageMeta, QueryModel, check_symbols, documented
from tickstock.vocab import JOB_CANCEL_CHANNEL, JobKind, JobStatus

log = logging.getLogger(__name__)

blueprint = Blueprint("jobs", __name__)

MAX_BACKTEST_SYMBOLS: Final = 50
MAX_PATTERNS: Final = 50
MAX_YEARS: Final = 5
MAX_LOAD_SYMBOLS: Final = 500
MAX_LOAD_YEARS: Final = 20
_MAX_RAW_SYMBOLS: Final = 1000

LoadTimeframe = Literal["daily", "hourly", "intraday", "weekly", "monthly"]
TradeColumn = Literal[
    "symbol",
    "pattern",
    "entry_date",
    "entry_price",
    "exit_date",
    "exit_price",
    "exit_reason",
    "shares",
    "pnl",
    "return",
]
TRADE_COLUMNS: Final[tuple[TradeColumn, ...]] = get_args(TradeColumn)  # the CSV column order


# --- request models -----------------------------------------------------------------------------


def _symbols_checker(limit: int) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("must be a list of symbols")
        if not value:
            raise ValueError("give at least one symbol")
        if len(value) > _MAX_RAW_SYMBOLS or not all(
            isinstance(item, str) and len(item) <= 32 for item in value
        ):
            raise ValueError(f"at most {limit} symbols, each a string of at most 32 characters")
        symbols = check_symbols(value)
        if len(symbols) > limit:
            raise ValueError(f"at most {limit} symbols")
        return symbols

    return validate


def _load_symbols(value: Any) -> Any:
    return value if value == "universe" else _symbols_checker(MAX_LOAD_SYMBOLS)(value)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# Dates arrive as JSON strings, which strict models would refuse as dates.
Day = Annotated[dt.date, Field(strict=False, description="YYYY-MM-DD")]
PatternName = Annotated[str, Field(min_length=1, max_length=100)]


class BacktestParameters(BaseModel):
    """How trades are sized, costed and closed. Rates and percents are fractions (0.05 is 5 %);
    each has the range given, and a default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    initial_capital: float = Field(
        100_000.0, ge=100, le=1e12, allow_inf_nan=False, description="Starting cash, 100 to 1e12"
    )
    commission_rate: float = Field(
        0.001, ge=0, le=0.1, allow_inf_nan=False, description="Per side, of the trade's value"
    )
    slippage_rate: float = Field(
        0.0005, ge=0, le=0.1, allow_inf_nan=False, description="Per side, against the trade"
    )
    max_position_size: float = Field(
        0.1, ge=0.001, le=1, allow_inf_nan=False, description="Of the equity, per position"
    )
    stop_loss_pct: float = Field(
        0.05, ge=0.001, le=0.99, allow_inf_nan=False, description="Below the entry price"
    )
    take_profit_pct: float = Field(
        0.10, ge=0.001, le=10, allow_inf_nan=False, description="Above the entry price"
    )
    max_hold_days: int = Field(20, ge=1, le=365, description="Sessions a position is held at most")


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class BacktestIn(BaseModel):
    """A backtest: enter at the next session's open after a detection of one of ``patterns``
    on one of ``symbols`` between the dates, under ``parameters``."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    symbols: Annotated[
        list[str],
        BeforeValidator(_symbols_checker(MAX_BACKTEST_SYMBOLS)),
        Field(description=f"1 to {MAX_BACKTEST_SYMBOLS} known symbols"),
    ]
    patterns: Annotated[
        list[PatternName],
        Field(min_length=1, max_length=MAX_PATTERNS, description="Known pattern names"),
        AfterValidator(_unique),
    ]
    start_date: Day
    end_date: Day
    parameters: BacktestParameters = Field(default_factory=BacktestParameters)

    @model_validator(mode="after")
    def _dates(self) -> BacktestIn:
        if self.start_date >= self.end_date:
            raise ValueError("end_date: must be after start_date")
        if self.end_date > _years_later(self.start_date, MAX_YEARS):
            raise ValueError(f"end_date: at most {MAX_YEARS} years after start_date")
        return self


class DataLoadIn(BaseModel):
    """A historical data load (admins): the producer (re)loads these symbols' bars."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    symbols: Annotated[
        list[str] | Literal["universe"],
        BeforeValidator(_load_symbols),
        Field(description=f'1 to {MAX_LOAD_SYMBOLS} symbols, or "universe" (every symbol)'),
    ]
    years: int = Field(1, ge=1, le=MAX_LOAD_YEARS, description="Years of history to load")
    timeframes: Annotated[
        list[LoadTimeframe], Field(min_length=1, max_length=5), AfterValidator(_unique)
    ] = Field(default_factory=lambda: cast(list[LoadTimeframe], ["daily"]))


class JobsQuery(QueryModel):
    status: JobStatus | None = Field(None, description="Only jobs in this state")
    kind: JobKind | None = Field(None, description="Only backtests or data loads")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)


class AdminJobsQuery(JobsQuery):
    user_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="Only this user's jobs")


class TradesQuery(QueryModel):
    format: Literal["json", "csv"] = Field("json", description="json, or csv for a CSV download")
    sort: TradeColumn = Field("entry_date", description="The column to sort by")
    order: Literal["asc", "desc"] = "asc"
    limit: int | None = Field(
        None,
        ge=1,
        le=CSV_MAX_ROWS,
        description=f"Page size: default {DEFAULT_LIMIT}, at most {MAX_LIMIT}"
        f" (format=csv: default and at most {CSV_MAX_ROWS})",
    )
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)

    @model_validator(mode="after")
    def _bounded(self) -> TradesQuery:
        if self.format == "json" and self.limit is not None and self.limit > MAX_LIMIT:
            raise ValueError(f"limit: at most {MAX_LIMIT} (format=csv: {CSV_MAX_ROWS})")
        return self


# --- response models ----------------------------------------------------------------------------


class JobBody(BaseModel):
    """One of your jobs, with its results once a backtest completed."""

    status: Literal["success"]
    data: Job
    meta: dict[str, Any]


class JobCreatedBody(BaseModel):
    """The job, queued and handed to the producer (201)."""

    status: Literal["success"]
    data: JobSummary
    meta: dict[str, Any]


class JobsMeta(PageMeta):
    max_active: int = Field(description="Queued or running jobs a user may have at once")


class JobsBody(BaseModel):
    """Your jobs, newest first (without results)."""

    status: Literal["success"]
    data: list[JobSummary]
    meta: JobsMeta


class AdminJobsBody(BaseModel):
    """Everyone's jobs, newest first (without results)."""

    status: Literal["success"]
    data: list[AdminJobSummary]
    meta: PageMeta


class TradesBody(BaseModel):
    """A backtest's trades, sorted and paged (empty until it completes)."""

    status: Literal["success"]
    data: list[JobTrade]
    meta: PageMeta


# --- helpers ------------------------------------------------------------------------------------


def _not_found() -> APIError:
    return APIError(404, "job_not_found", "no such job")


def _own_id(job_id: str) -> uuid.UUID:
    parsed = job_uuid(job_id)
    if parsed is None:
        raise _not_found()
    return parsed


def _invalid(field: str, message: str, **extra: Any) -> APIError:
    return APIError(400, "validation_error", f"{field}: {message}", extra=extra or None)


async def _check_backtest(conn: Any, data: BacktestIn) -> list[str]:
    """The known symbols and patterns, and bars to trade over; the patterns' stored names."""
    unknown = await select_unknown_symbols(conn, data.symbols)
    if unknown:
        shown = ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise _invalid("symbols", f"unknown symbols: {shown}", unknown=unknown)
    definitions = {d["name"].lower(): d["name"] for d in await select_pattern_definitions(conn)}
    missing = [name for name in data.patterns if name.lower() not in definitions]
    if missing:
        raise _invalid(
            "patterns",
            f"unknown patterns: {', '.join(missing[:20])}; see GET /api/pattern-definitions",
            unknown=missing,
        )
    ranges = await select_bar_ranges(conn, data.symbols)
    bare = [s for s in data.symbols if s not in ranges]
    if bare:
        raise _invalid("symbols", f"no daily bars stored for: {', '.join(bare[:20])}")
    first = min(first for first, _ in ranges.values())
    last = max(last for _, last in ranges.values())
    if data.start_date < first:
        raise _invalid("start_date", f"before the first stored daily bar ({first})")
    if data.end_date > last:
        raise _invalid("end_date", f"after the last stored daily bar ({last})")
    outside = [
        symbol
        for symbol, (begins, ends) in ranges.items()
        if begins > data.end_date or ends < data.start_date
    ]
    if outside:
        raise _invalid(
            "symbols", f"no daily bars between start_date and end_date for: {', '.join(outside)}"
        )
    return _unique([definitions[name.lower()] for name in data.patterns])


async def _queue(kind: JobKind, params: dict[str, Any], conn: Any) -> JobSummary:
    limit = get_settings().jobs_max_active_per_user
    job = await insert_job(conn, current_user().id, kind, params, limit)
    if job is None:
        raise APIError(
            429,
            "too_many_active_jobs",
            f"at most {limit} queued or running jobs at once; wait for one to finish or cancel one",
        )
    return job


async def _announce(job: JobSummary) -> None:
    """Hand the job to the producer. Best effort: with Redis down the job stays queued and the
    sweep announces it again (or fails it once the pickup time is over)."""
    try:
        message = announcement_message(job, 1)
        await get_redis().publish(announcement_channel(job["kind"]), dumps(message))
    except Exception as exc:
        log.warning("could not announce job %s now (the sweep will): %r", job["id"], exc)


def _page_after(cursor: str | None) -> tuple[dt.datetime, str] | None:
    if cursor is None:
        return None
    created, ident = decode_cursor(cursor, ("time", "text"))
    if not isinstance(created, dt.datetime) or not isinstance(ident, str) or not job_uuid(ident):
        raise APIError(400, "invalid_cursor", "cursor is not valid; use next_cursor as returned")
    return created, ident


def _job_key(job: JobSummary) -> tuple[dt.datetime, str]:
    return job["created_at"], job["id"]


def _sorted_trades(trades: list[JobTrade], column: TradeColumn, order: str) -> list[JobTrade]:
    """Trades by a column, nulls last either way, the stored order breaking ties."""
    present = [t for t in trades if t.get(column) is not None]
    absent = [t for t in trades if t.get(column) is None]
    present.sort(key=lambda trade: cast(Any, trade[column]), reverse=order == "desc")
    return present + absent


# --- backtests ----------------------------------------------------------------------------------


@blueprint.post("/api/jobs/backtests")
@login_required
@validate_request(BacktestIn)
@documented(JobCreatedBody, 400, 429)
async def create_backtest(data: BacktestIn) -> Response:
    """Queue a backtest (201) and hand it to the producer. 400 names the field (unknown symbols
    or patterns, dates outside the stored bars, a parameter out of range); 429
    ``too_many_active_jobs`` beyond the queued-or-running cap."""
    async with get_db().write() as conn:
        patterns = await _check_backtest(conn, data)
        params = {
            "symbols": data.symbols,
            "patterns": patterns,
            "start_date": data.start_date.isoformat(),
            "end_date": data.end_date.isoformat(),
            "parameters": data.parameters.model_dump(),
        }
        job = await _queue("backtest", params, conn)
    await _announce(job)
    return success(job, status=201)


@blueprint.get("/api/jobs")
@login_required
@validate_querystring(JobsQuery)
@documented(JobsBody, 400)
async def list_jobs(query_args: JobsQuery) -> Response:
    """Your jobs, newest first, by ``status`` and ``kind``; keyset pages (``cursor``)."""
    q = query_args
    after = _page_after(q.cursor)
    async with get_db().connection() as conn:
        rows = await select_jobs(
            conn,
            user_id=current_user().id,
            status=q.status,
            kind=q.kind,
            after=after,
            limit=q.limit + 1,
        )
    jobs: list[JobSummary] = [_without_username(row) for row in rows]
    page = paginate(jobs, q.limit, _job_key)
    return success(page.items, page.meta(max_active=get_settings().jobs_max_active_per_user))


def _without_username(row: AdminJobSummary) -> JobSummary:
    summary = dict(row)
    summary.pop("username", None)
    return cast(JobSummary, summary)


@blueprint.get("/api/jobs/<job_id>")
@login_required
@documented(JobBody, 404)
async def get_job(job_id: str) -> Response:
    """One of your jobs with its results (404 ``job_not_found`` for anyone else's)."""
    async with get_db().connection() as conn:
        job = await select_job(conn, current_user().id, _own_id(job_id))
    if job is None:
        raise _not_found()
    return success(job)


@blueprint.post("/api/jobs/<job_id>/cancel")
@login_required
@documented(JobBody, 404, 409)
async def cancel(job_id: str) -> Response:
    """Cancel one of your queued or running jobs: it ends ``cancelled`` at once and the producer
    is told to stop. Cancelling a cancelled job again changes nothing; 409 ``job_finished`` for
    a job that completed or failed."""
    ident = _own_id(job_id)
    user_id = current_user().id
    async with get_db().write() as conn:
        cancelled, status = await cancel_job(conn, user_id, ident)
        if cancelled is not None:
            store = get_hub().store
            assert store is not None
            await store.append_to_rooms(job_events([cancelled]))
        job = await select_job(conn, user_id, ident)
    if job is None:
        raise _not_found()
    if cancelled is None and status != "cancelled":
        raise APIError(409, "job_finished", f"the job has already {status}; nothing to cancel")
    if cancelled is not None:
        try:
            await get_redis().publish(JOB_CANCEL_CHANNEL, dumps(cancel_message(job["id"])))
        except Exception as exc:  # its next report is answered with the cancellation again
            log.warning("could not tell the producer to cancel job %s: %r", job["id"], exc)
    return success(job)


@blueprint.get("/api/jobs/<job_id>/trades")
@login_required
@validate_querystring(TradesQuery)
@documented(TradesBody, 400, 404)
async def trades(job_id: str, query_args: TradesQuery) -> Response:
    """A backtest's trades sorted by ``sort``/``order`` and paged, or all of them as a CSV file
    (``format=csv``, up to 10,000 rows). Empty until the job completes."""
    q = query_args
    async with get_db().connection() as conn:
        found = await select_job_trades(conn, current_user().id, _own_id(job_id))
    if found is None:
        raise _not_found()
    job, rows = found
    offset = 0
    if q.cursor is not None:
        (value,) = decode_cursor(q.cursor, ("int",))
        assert isinstance(value, int)
        offset = value
    ordered = _sorted_trades(rows, q.sort, q.order)
    size = q.limit or (CSV_MAX_ROWS if q.format == "csv" else DEFAULT_LIMIT)
    page = ordered[offset : offset + size]
    more = offset + size < len(ordered)
    next_cursor = encode_cursor([offset + size]) if more else None
    if q.format == "csv":
        headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
        return csv_response(
            f"backtest-{job['id'][:8]}-trades.csv",
            TRADE_COLUMNS,
            cast(list[Any], page),
            headers,
        )
    meta = {
        "count": len(page),
        "next_cursor": next_cursor,
        "limit": size,
        "total": len(ordered),
        "job_status": job["status"],
    }
    return success(page, meta)


# --- admins -------------------------------------------------------------------------------------


@blueprint.post("/api/admin/jobs/data-loads")
@admin_required
@validate_request(DataLoadIn)
@documented(JobCreatedBody, 400, 403, 429)
async def create_data_load(data: DataLoadIn) -> Response:
    """Queue a historical data load (201): the producer (re)loads the symbols' bars for
    ``years`` in ``timeframes``. Symbols need not be known yet (loading adds them)."""
    params = {
        "symbols": data.symbols,
        "years": data.years,
        "timeframes": list(data.timeframes),
        "requested_by": current_user().username,
    }
    async with get_db().write() as conn:
        job = await _queue("data_load", params, conn)
    await _announce(job)
    return success(job, status=201)


@blueprint.get("/api/admin/jobs")
@admin_required
@validate_querystring(AdminJobsQuery)
@documented(AdminJobsBody, 400, 403)
async def admin_jobs(query_args: AdminJobsQuery) -> Response:
    """Everyone's jobs, newest first, by ``status``, ``kind`` and ``user_id``."""
    q = query_args
    after = _page_after(q.cursor)
    async with get_db().read() as conn:
        rows = await select_jobs(
            conn, user_id=q.user_id, status=q.status, kind=q.kind, after=after, limit=q.limit + 1
        )
    page = paginate(rows, q.limit, _job_key)
    return success(page.items, page.meta())
