"""Alert rules and the alert inbox (tickstock's ``alert_rules`` and ``alerts`` tables).

Every function that serves a user takes that user's id and filters on it, so another user's rule
or alert is simply not found (the API answers 404, never 403).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

import asyncpg

from tickstock.jsonutil import dumps, loads
from tickstock.queries._sql import Params
from tickstock.queries.patterns import TABLE_TIERS
from tickstock.vocab import TIERS, Tier

__all__ = [
    "INDICATOR_TABLE_TIERS",
    "AlertRow",
    "MatchingRule",
    "NewAlert",
    "PreviewFilter",
    "Rule",
    "RuleFields",
    "copy_rules",
    "count_preview_indicators",
    "count_preview_patterns",
    "count_unread",
    "delete_alerts_before",
    "delete_alerts_over_bound",
    "delete_rule",
    "insert_alerts",
    "insert_rule",
    "mark_read",
    "select_alert",
    "select_alerts",
    "select_matching_rules",
    "select_owned_alert_ids",
    "select_recent_alert_times",
    "select_rule",
    "select_rules",
    "update_rule",
    "update_rules_paused",
]

Scope = Literal["list", "watchlist", "all"]
WATCHLIST = "watchlist"
ALL_SYMBOLS = "*"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as stored; ``symbols`` is the API form (a list, ``"watchlist"`` or ``"*"``)."""

    id: int
    user_id: int
    name: str
    scope: Scope
    symbol_list: tuple[str, ...]
    patterns: tuple[str, ...]
    tiers: tuple[str, ...]
    min_confidence: float
    indicator: dict[str, Any] | None
    cooldown_seconds: int
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    # How often it has fired: the alerts in the inbox from it, and when the last one was made.
    alerts: int = 0
    last_alert_at: dt.datetime | None = None
    # Its user went over the alert rate while it fired: no alerts from it until then.
    paused_until: dt.datetime | None = None

    def paused(self, now: dt.datetime | None = None) -> bool:
        return self.paused_until is not None and self.paused_until > (
            now or dt.datetime.now(dt.UTC)
        )

    @property
    def symbols(self) -> list[str] | str:
        if self.scope == "watchlist":
            return WATCHLIST
        if self.scope == "all":
            return ALL_SYMBOLS
        return list(self.symbol_list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "symbols": self.symbols,
            "patterns": list(self.patterns),
            "tiers": list(self.tiers),
            "min_confidence": self.min_confidence,
            "indicator": self.indicator,
            "cooldown_seconds": self.cooldown_seconds,
            "enabled": self.enabled,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "alerts": self.alerts,
            "last_alert_at": self.last_alert_at,
            "paused": self.paused(),
            "paused_until": self.paused_until if self.paused() else None,
        }


@dataclass(frozen=True, slots=True)
class RuleFields:
    """A rule's editable fields, validated (the API's models build this)."""

    name: str
    symbols: list[str] | str
    patterns: list[str]
    tiers: list[str]
    min_confidence: float
    indicator: dict[str, Any] | None
    cooldown_seconds: int
    enabled: bool

    def columns(self) -> tuple[str, list[str]]:
        """(scope, symbol list) for the table."""
        if self.symbols == WATCHLIST:
            return "watchlist", []
        if self.symbols == ALL_SYMBOLS:
            return "all", []
        assert isinstance(self.symbols, list)
        return "list", list(self.symbols)


_RULE_COLUMNS = (
    "id, user_id, name, scope, symbols, patterns, tiers, min_confidence, indicator,"
    " cooldown_seconds, enabled, created_at, updated_at, paused_until"
)


def _rule(row: asyncpg.Record) -> Rule:
    indicator = row["indicator"]
    if isinstance(indicator, str):
        indicator = loads(indicator)
    return Rule(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        scope=row["scope"],
        symbol_list=tuple(row["symbols"]),
        patterns=tuple(row["patterns"]),
        tiers=tuple(row["tiers"]),
        min_confidence=row["min_confidence"],
        indicator=indicator,
        cooldown_seconds=row["cooldown_seconds"],
        enabled=row["enabled"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        paused_until=row["paused_until"],
    )


async def _with_alert_counts(conn: asyncpg.Connection, rules: list[Rule]) -> list[Rule]:
    """The rules with how many alerts list each (as the first match or another) and when the
    last one was: one pass over their user's inbox, which ``alert_inbox_max_per_user`` bounds."""
    if not rules:
        return rules
    rows = await conn.fetch(
        "SELECT r.id AS rule_id, count(*) AS alerts, max(a.created_at) AS last_alert_at"
        " FROM alerts a CROSS JOIN LATERAL unnest(CASE WHEN cardinality(a.rule_ids) > 0"
        " THEN a.rule_ids ELSE ARRAY[a.rule_id] END) AS r(id)"
        " WHERE a.user_id = ANY($2::bigint[]) AND r.id = ANY($1::bigint[]) GROUP BY r.id",
        [rule.id for rule in rules],
        sorted({rule.user_id for rule in rules}),
    )
    counts = {row["rule_id"]: (row["alerts"], row["last_alert_at"]) for row in rows}
    return [
        replace(rule, alerts=counts[rule.id][0], last_alert_at=counts[rule.id][1])
        if rule.id in counts
        else rule
        for rule in rules
    ]


async def select_rules(conn: asyncpg.Connection, user_id: int) -> list[Rule]:
    rows = await conn.fetch(
        f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE user_id = $1 ORDER BY id", user_id
    )
    return await _with_alert_counts(conn, [_rule(row) for row in rows])


async def select_rule(conn: asyncpg.Connection, user_id: int, rule_id: int) -> Rule | None:
    row = await conn.fetchrow(
        f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE user_id = $1 AND id = $2",
        user_id,
        rule_id,
    )
    return None if row is None else (await _with_alert_counts(conn, [_rule(row)]))[0]


# The columns a rule's editable fields are stored in, in the order of ``_field_values``.
_FIELD_COLUMNS = (
    "name",
    "scope",
    "symbols",
    "patterns",
    "tiers",
    "min_confidence",
    "indicator",
    "cooldown_seconds",
    "enabled",
)


def _field_values(fields: RuleFields) -> tuple[Any, ...]:
    """The values of ``_FIELD_COLUMNS`` for these fields (the indicator as JSON text)."""
    scope, symbols = fields.columns()
    return (
        fields.name,
        scope,
        symbols,
        fields.patterns,
        fields.tiers,
        fields.min_confidence,
        None if fields.indicator is None else dumps(fields.indicator).decode(),
        fields.cooldown_seconds,
        fields.enabled,
    )


async def insert_rule(
    conn: asyncpg.Connection, user_id: int, fields: RuleFields, max_rules: int
) -> Rule | None:
    """Create a rule; None when the user already has ``max_rules`` (checked under a row lock on
    the user, so two concurrent creates cannot both pass the limit)."""
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
        count = await conn.fetchval("SELECT count(*) FROM alert_rules WHERE user_id = $1", user_id)
        if count >= max_rules:
            return None
        row = await conn.fetchrow(
            f"INSERT INTO alert_rules (user_id, {', '.join(_FIELD_COLUMNS)})"
            " VALUES ($1, $2, $3, $4::text[], $5::text[], $6::text[], $7, $8::jsonb, $9, $10)"
            f" RETURNING {_RULE_COLUMNS}",
            user_id,
            *_field_values(fields),
        )
    assert row is not None
    return _rule(row)


async def copy_rules(conn: asyncpg.Connection, rules: Sequence[tuple[int, RuleFields]]) -> int:
    """Store (user id, rule) pairs in bulk, the rows ``insert_rule`` writes, without its per-user
    limit (for the alerts benchmark's accounts); how many."""
    records = [(user_id, *_field_values(fields)) for user_id, fields in rules]
    await conn.copy_records_to_table(
        "alert_rules", records=records, columns=["user_id", *_FIELD_COLUMNS]
    )
    return len(records)


async def update_rule(
    conn: asyncpg.Connection, user_id: int, rule_id: int, fields: RuleFields
) -> Rule | None:
    """Replace a rule's fields (PATCH merges into the current rule first); None if not theirs."""
    row = await conn.fetchrow(
        "UPDATE alert_rules SET name = $3, scope = $4, symbols = $5::text[],"
        " patterns = $6::text[], tiers = $7::text[], min_confidence = $8, indicator = $9::jsonb,"
        " cooldown_seconds = $10, enabled = $11, updated_at = now(), paused_until = NULL"
        f" WHERE user_id = $1 AND id = $2 RETURNING {_RULE_COLUMNS}",
        user_id,
        rule_id,
        *_field_values(fields),
    )
    return None if row is None else (await _with_alert_counts(conn, [_rule(row)]))[0]


async def delete_rule(conn: asyncpg.Connection, user_id: int, rule_id: int) -> bool:
    done = await conn.fetchval(
        "DELETE FROM alert_rules WHERE user_id = $1 AND id = $2 RETURNING true", user_id, rule_id
    )
    return bool(done)


# --- the inbox --------------------------------------------------------------------------------


# The inbox orders of GET /api/user/alerts.
InboxOrder = Literal["newest", "unread_first"]


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    rule_id: int | None
    rule_name: str
    event_id: str
    symbol: str | None
    event: dict[str, Any]
    created_at: dt.datetime
    read_at: dt.datetime | None
    # Every rule of the user that matched the event, the first one (rule_id) first.
    rule_ids: tuple[int, ...] = ()
    rule_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "rule_ids": list(self.rule_ids),
            "rule_names": list(self.rule_names),
            "symbol": self.symbol,
            "event": self.event,
            "created_at": self.created_at,
            "read_at": self.read_at,
        }

    def sort_key(self, order: InboxOrder) -> list[int]:
        """The row's key in the inbox order: what its page's cursor carries."""
        if order == "newest":
            return [self.id]
        return [int(self.read_at is None), self.id]


def _alert(row: asyncpg.Record) -> AlertRow:
    event = row["event"]
    return AlertRow(
        id=row["id"],
        rule_id=row["rule_id"],
        rule_name=row["rule_name"],
        event_id=row["event_id"],
        symbol=row["symbol"],
        event=loads(event) if isinstance(event, str) else event,
        created_at=row["created_at"],
        read_at=row["read_at"],
        # Alerts stored before one alert per event listed its rules name only their first.
        rule_ids=tuple(row["rule_ids"] or ([row["rule_id"]] if row["rule_id"] else [])),
        rule_names=tuple(row["rule_names"] or [row["rule_name"]]),
    )


_ALERT_COLUMNS = (
    "id, rule_id, rule_name, event_id, symbol, event::text AS event, created_at, read_at,"
    " rule_ids, rule_names"
)


async def select_alerts(
    conn: asyncpg.Connection,
    user_id: int,
    *,
    limit: int,
    order: InboxOrder = "newest",
    after: Sequence[int] | None = None,
    unread: bool = False,
    rule_id: int | None = None,
    symbol: str | None = None,
) -> list[AlertRow]:
    """The user's alerts, keyset-paged after the sort key ``after`` (from the cursor).

    ``newest``: newest first, keyed ``[id]``. ``unread_first``: the unread ones, newest first,
    then the read ones, newest first, keyed ``[unread 0/1, id]`` (alerts_unread_first_idx).
    """
    conditions = ["user_id = $1"]
    args: list[Any] = [user_id]
    if unread:
        conditions.append("read_at IS NULL")
    if after is not None:
        if order == "newest":
            (before_id,) = after
            args.append(before_id)
            conditions.append(f"id < ${len(args)}")
        else:
            was_unread, before_id = after
            args += [was_unread == 1, before_id]
            conditions.append(f"(read_at IS NULL, id) < (${len(args) - 1}::boolean, ${len(args)})")
    if rule_id is not None:
        args.append(rule_id)
        conditions.append(f"(rule_id = ${len(args)} OR ${len(args)} = ANY(rule_ids))")
    if symbol is not None:
        args.append(symbol)
        conditions.append(f"symbol = ${len(args)}")
    args.append(limit)
    ordering = "id DESC" if order == "newest" else "(read_at IS NULL) DESC, id DESC"
    rows = await conn.fetch(
        f"SELECT {_ALERT_COLUMNS}"
        f" FROM alerts WHERE {' AND '.join(conditions)} ORDER BY {ordering} LIMIT ${len(args)}",
        *args,
    )
    return [_alert(row) for row in rows]


async def select_alert(conn: asyncpg.Connection, user_id: int, alert_id: int) -> AlertRow | None:
    row = await conn.fetchrow(
        f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE user_id = $1 AND id = $2",
        user_id,
        alert_id,
    )
    return None if row is None else _alert(row)


async def mark_read(conn: asyncpg.Connection, user_id: int, ids: Sequence[int] | None) -> list[int]:
    """Mark these alerts (or, with None, all of them) read; returns the ids that changed.
    Ids that are not the user's are ignored (never counted, never touched)."""
    if ids is None:
        rows = await conn.fetch(
            "UPDATE alerts SET read_at = now() WHERE user_id = $1 AND read_at IS NULL RETURNING id",
            user_id,
        )
    else:
        rows = await conn.fetch(
            "UPDATE alerts SET read_at = now()"
            " WHERE user_id = $1 AND id = ANY($2::bigint[]) AND read_at IS NULL RETURNING id",
            user_id,
            list(ids),
        )
    return sorted(row["id"] for row in rows)


async def select_owned_alert_ids(
    conn: asyncpg.Connection, user_id: int, ids: Sequence[int]
) -> set[int]:
    rows = await conn.fetch(
        "SELECT id FROM alerts WHERE user_id = $1 AND id = ANY($2::bigint[])", user_id, list(ids)
    )
    return {row["id"] for row in rows}


async def count_unread(conn: asyncpg.Connection, user_id: int) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM alerts WHERE user_id = $1 AND read_at IS NULL", user_id
    )
    return count


# --- the matcher ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchingRule:
    """An enabled rule of an active user, with that user's watchlist (for ``"watchlist"``)."""

    rule: Rule
    watchlist: tuple[str, ...]


async def select_matching_rules(
    conn: asyncpg.Connection, user_ids: Sequence[int] | None = None
) -> list[MatchingRule]:
    """Every enabled rule of an active user (or of these users), with their watchlists."""
    columns = ", ".join(f"r.{c.strip()}" for c in _RULE_COLUMNS.split(","))
    where = "r.enabled AND u.active"
    args: list[Any] = []
    if user_ids is not None:
        where += " AND r.user_id = ANY($1::bigint[])"
        args.append(list(user_ids))
    rows = await conn.fetch(
        f"SELECT {columns}, coalesce(s.watchlist, '{{}}') AS watchlist"
        " FROM alert_rules r JOIN users u ON u.id = r.user_id"
        " LEFT JOIN user_settings s ON s.user_id = r.user_id"
        f" WHERE {where} ORDER BY r.id",
        *args,
    )
    return [MatchingRule(_rule(row), tuple(row["watchlist"])) for row in rows]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """One alert for one user and event; ``rule_id`` is the first of the rules that matched."""

    user_id: int
    rule_id: int
    rule_name: str
    event_id: str
    symbol: str | None
    event: bytes  # the normalised event as JSON
    created_at: dt.datetime
    rule_ids: tuple[int, ...] = ()  # every matching rule of the user, rule_id first
    rule_names: tuple[str, ...] = ()


async def insert_alerts(
    conn: asyncpg.Connection, alerts: Sequence[NewAlert]
) -> list[tuple[int, AlertRow]]:
    """Store alerts once each: a (rule, event) already stored, a rule deleted or disabled
    meanwhile, or a user deactivated meanwhile stores nothing. Returns (user id, row) for each
    alert that was stored."""
    if not alerts:
        return []
    # The rule lists travel as JSON text: PostgreSQL arrays cannot be ragged.
    rows = await conn.fetch(
        "INSERT INTO alerts (user_id, rule_id, rule_name, event_id, symbol, event, created_at,"
        " rule_ids, rule_names)"
        " SELECT a.user_id, a.rule_id, a.rule_name, a.event_id, a.symbol, a.event::jsonb,"
        " a.created_at,"
        " ARRAY(SELECT jsonb_array_elements_text(a.rule_ids::jsonb)::bigint),"
        " ARRAY(SELECT jsonb_array_elements_text(a.rule_names::jsonb))"
        " FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::timestamptz[], $8::text[], $9::text[]) WITH ORDINALITY AS a(user_id, rule_id,"
        " rule_name, event_id, symbol, event, created_at, rule_ids, rule_names, n)"
        " JOIN alert_rules r ON r.id = a.rule_id AND r.user_id = a.user_id AND r.enabled"
        " JOIN users u ON u.id = a.user_id AND u.active"
        " ORDER BY a.n"  # ids follow the events' order
        " ON CONFLICT (rule_id, event_id) DO NOTHING"
        f" RETURNING {_ALERT_COLUMNS}, user_id",
        [a.user_id for a in alerts],
        [a.rule_id for a in alerts],
        [a.rule_name for a in alerts],
        [a.event_id for a in alerts],
        [a.symbol for a in alerts],
        [a.event.decode() for a in alerts],
        [a.created_at for a in alerts],
        [dumps(list(a.rule_ids or (a.rule_id,))).decode() for a in alerts],
        [dumps(list(a.rule_names or (a.rule_name,))).decode() for a in alerts],
    )
    return sorted(((row["user_id"], _alert(row)) for row in rows), key=lambda pair: pair[1].id)


async def delete_alerts_over_bound(
    conn: asyncpg.Connection, user_ids: Sequence[int], keep: int
) -> int:
    """Keep these users' newest ``keep`` alerts and remove the older ones (the inbox bound);
    how many were removed. One index range per user (alerts_user_idx)."""
    if not user_ids:
        return 0
    removed = await conn.fetchval(
        "WITH edge AS (SELECT u.user_id, (SELECT a.id FROM alerts a WHERE a.user_id = u.user_id"
        " ORDER BY a.id DESC OFFSET $2 LIMIT 1) AS id FROM unnest($1::bigint[]) AS u(user_id)),"
        " gone AS (DELETE FROM alerts a USING edge"
        " WHERE edge.id IS NOT NULL AND a.user_id = edge.user_id AND a.id <= edge.id RETURNING 1)"
        " SELECT count(*) FROM gone",
        sorted(set(user_ids)),
        keep,
    )
    return int(removed or 0)


async def update_rules_paused(
    conn: asyncpg.Connection, pauses: Sequence[tuple[int, dt.datetime]]
) -> None:
    """Mark rules paused until the given times (their user went over the alert rate)."""
    if not pauses:
        return
    await conn.execute(
        "UPDATE alert_rules r SET paused_until = p.until"
        " FROM unnest($1::bigint[], $2::timestamptz[]) AS p(id, until) WHERE r.id = p.id",
        [rule_id for rule_id, _ in pauses],
        [until for _, until in pauses],
    )


async def delete_alerts_before(conn: asyncpg.Connection, before: dt.datetime, limit: int) -> int:
    """Remove at most ``limit`` of the oldest alerts made before ``before`` (the retention); how
    many. Small slices keep each statement short beside the matcher's inserts."""
    removed = await conn.fetchval(
        "WITH gone AS (DELETE FROM alerts WHERE id IN (SELECT id FROM alerts"
        " WHERE created_at < $1 ORDER BY created_at LIMIT $2) RETURNING 1)"
        " SELECT count(*) FROM gone",
        before,
        limit,
    )
    return int(removed or 0)


async def select_recent_alert_times(
    conn: asyncpg.Connection, within_seconds: int
) -> dict[tuple[int, str], float]:
    """The last alert time (epoch s) per (rule, symbol) within the window: the cooldowns a
    matcher taking over must honour."""
    rows = await conn.fetch(
        "SELECT rule_id, coalesce(symbol, '') AS symbol, max(created_at) AS at FROM alerts"
        " WHERE created_at > now() - make_interval(secs => $1) AND rule_id IS NOT NULL"
        " GROUP BY rule_id, coalesce(symbol, '')",
        within_seconds,
    )
    return {(row["rule_id"], row["symbol"]): row["at"].timestamp() for row in rows}


# --- the preview: what a rule would have matched in the producer's stored history -------------

# The indicator tables and the tier their events carry.
INDICATOR_TABLE_TIERS: Final[dict[str, Tier]] = {
    "daily_indicators": "daily",
    "intraday_indicators": "intraday",
}


@dataclass(frozen=True, slots=True)
class PreviewFilter:
    """A rule's filters, resolved: ``symbols`` None means every symbol; ``patterns`` lower-cased
    (empty = any); ``tiers`` empty = any."""

    since: dt.datetime
    symbols: Sequence[str] | None
    patterns: Sequence[str] = ()
    tiers: Sequence[str] = ()
    min_confidence: float = 0.0


async def count_preview_patterns(conn: asyncpg.Connection, flt: PreviewFilter) -> int:
    """Detections since ``flt.since`` in every tier's table (combo: pattern_detections) that the
    filters match; pattern names compared case-insensitively. One statement, one count per
    table, each on the table's time (or symbol, time) index."""
    params = Params()
    common = [f"{{time}} >= {params.add(flt.since)}"]
    if flt.symbols is not None:
        common.append(f"d.symbol = ANY({params.add(list(flt.symbols), '::text[]')})")
    if flt.patterns:
        common.append(f"lower({{pattern}}) = ANY({params.add(list(flt.patterns), '::text[]')})")
    if flt.min_confidence > 0:
        common.append(f"d.confidence >= {params.add(flt.min_confidence, '::float8')}")
    where = " AND ".join(common)
    branches = []
    for tier in TIERS:
        if flt.tiers and tier not in flt.tiers:
            continue
        if tier == "combo":
            source = (
                "pattern_detections AS d JOIN pattern_definitions AS pd ON pd.id = d.pattern_id"
            )
            condition = where.format(time="d.detected_at", pattern="pd.name")
        else:
            assert tier in TABLE_TIERS
            source = f"{tier}_patterns AS d"
            condition = where.format(time="d.detection_timestamp", pattern="d.pattern_type")
        branches.append(f"(SELECT count(*) FROM {source} WHERE {condition})")
    if not branches:
        return 0
    count: int = await conn.fetchval(f"SELECT {' + '.join(branches)}", *params.values)
    return count


_CROSSING: Final[dict[str, str]] = {
    "above": "v > {value}",
    "below": "v < {value}",
    "crosses_above": "prev <= {value} AND v > {value}",
    "crosses_below": "prev >= {value} AND v < {value}",
}


async def count_preview_indicators(
    conn: asyncpg.Connection, flt: PreviewFilter, indicator_type: str, op: str, value: float
) -> int:
    """Indicator values since ``flt.since`` (``value_data.value``, numbers only) of this type
    (case-insensitive) that meet ``op``. ``crosses_*`` compare each value with the one before it
    in that symbol's series of that table, ordered by time (the first value of a series crosses
    nothing; the one before the window counts as "before")."""
    params = Params()
    kind = params.add(indicator_type.lower())
    since = params.add(flt.since)
    symbols = (
        ""
        if flt.symbols is None
        else f" AND symbol = ANY({params.add(list(flt.symbols), '::text[]')})"
    )
    condition = _CROSSING[op].format(value=params.add(value, "::float8"))
    branches = []
    for table, tier in INDICATOR_TABLE_TIERS.items():
        if flt.tiers and tier not in flt.tiers:
            continue
        branches.append(
            "(SELECT count(*) FROM (SELECT at, v, lag(v) OVER (PARTITION BY symbol ORDER BY at, id)"
            " AS prev FROM (SELECT symbol, id, calculation_timestamp AS at,"
            " (value_data ->> 'value')::float8 AS v"
            f" FROM {table} WHERE lower(indicator_type) = {kind}{symbols}"
            " AND jsonb_typeof(value_data -> 'value') = 'number') AS series) AS s"
            f" WHERE at >= {since} AND {condition})"
        )
    if not branches:
        return 0
    count: int = await conn.fetchval(f"SELECT {' + '.join(branches)}", *params.values)
    return count
