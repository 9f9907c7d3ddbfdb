"""Alerts (SPEC §11): the signed-in user's rules, a preview of what a rule would have matched,
and the inbox of alerts with their read state.

Only ever the caller's own: another user's rule or alert id is a 404, never a 403. Every rule
change (and a watchlist change, in ``blueprints/user.py``) is announced to the matcher once it is
committed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from tickstock.auth import current_user, login_required
from tickstock.config import get_settings
from tickstock.errors import APIError, format_validation_error
from tickstock.extensions.database import get_db
from tickstock.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    CursorKind,
    decode_cursor,
    paginate,
    success,
)
from tickstock.queries.alerts import (
    ALL_SYMBOLS,
    WATCHLIST,
    InboxOrder,
    PreviewFilter,
    Rule,
    RuleFields,
    count_preview_indicators,
    count_preview_patterns,
    count_unread,
    delete_rule,
    insert_rule,
    mark_read,
    select_alert,
    select_alerts,
    select_owned_alert_ids,
    select_rule,
    select_rules,
    update_rule,
)
from tickstock.queries.symbols import select_unknown_symbols
from tickstock.queries.user_settings import select_user_settings
from tickstock.realtime.alerts import announce_rules_changed
from tickstock.validation import (
    BIGINT_MAX,
    MAX_SYMBOLS,
    PageMeta,
    QueryModel,
    check_symbols,
    documented,
    normalise_symbol,
)
from tickstock.vocab import TIERS, Tier

blueprint = Blueprint("alerts", __name__)

PREVIEW_DAYS: Final = 30
MAX_PATTERNS: Final = 50
MAX_COOLDOWN: Final = 86_400
MAX_READ_IDS: Final = 500
# Duplicates are dropped before the 200-symbol cap applies; this only bounds the work.
_MAX_RAW_SYMBOLS: Final = 1000

IndicatorOp = Literal["above", "below", "crosses_above", "crosses_below"]


# --- request models -----------------------------------------------------------------------------


def _rule_symbols(value: Any) -> Any:
    """A list of 1..200 symbols (upper-cased, duplicates dropped), ``"watchlist"`` or ``"*"``."""
    if value is None or value in (WATCHLIST, ALL_SYMBOLS):
        return value
    if not isinstance(value, list):
        raise ValueError('must be a list of symbols, "watchlist" or "*"')
    if not value:
        raise ValueError('give at least one symbol (or "watchlist" or "*")')
    if len(value) > _MAX_RAW_SYMBOLS:
        raise ValueError(f"at most {MAX_SYMBOLS} symbols")
    if not all(isinstance(item, str) and len(item) <= 32 for item in value):
        raise ValueError("every symbol must be a string of at most 32 characters")
    return check_symbols(value)


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


RuleName = Annotated[str, Field(min_length=1, max_length=100)]
RuleSymbols = Annotated[
    list[str] | Literal["watchlist", "*"],
    BeforeValidator(_rule_symbols),
    Field(
        description=f'Up to {MAX_SYMBOLS} symbols, "watchlist" (your watchlist when the event'
        ' arrives) or "*" (every symbol)'
    ),
]
PatternName = Annotated[str, Field(min_length=1, max_length=100)]
RulePatterns = Annotated[
    list[PatternName],
    Field(max_length=MAX_PATTERNS, description="Pattern names, case-insensitive; empty = any"),
    AfterValidator(_unique),
]
RuleTiers = Annotated[
    list[Tier], Field(max_length=len(TIERS), description="Empty = any"), AfterValidator(_unique)
]
Confidence = Annotated[
    float,
    Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Applies to pattern detections"),
]
Cooldown = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_COOLDOWN,
        description="At most one alert per rule and symbol within this many seconds",
    ),
]


class IndicatorIn(BaseModel):
    """An indicator condition: matched against indicator_update events of that type."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    type: str = Field(min_length=1, max_length=50, description="Indicator type, e.g. RSI")
    op: IndicatorOp
    value: float = Field(allow_inf_nan=False)


def _indicator_without_patterns(indicator: IndicatorIn | None, patterns: list[str]) -> None:
    if indicator is not None and patterns:
        # Named like a field error: the error envelope's message starts with the field.
        raise ValueError(
            "patterns: must be empty for a rule with an indicator (indicator rules match"
            " indicator updates, pattern rules match pattern detections)"
        )


class _RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    name: RuleName | None = None
    symbols: RuleSymbols
    patterns: RulePatterns = Field(default_factory=list)
    tiers: RuleTiers = Field(default_factory=list)
    min_confidence: Confidence = 0.0
    indicator: IndicatorIn | None = None
    cooldown_seconds: Cooldown = 300
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> _RuleIn:
        _indicator_without_patterns(self.indicator, self.patterns)
        return self


class RuleIn(_RuleIn):
    """A rule: name, symbols, patterns, tiers, min_confidence, indicator, cooldown, enabled.

    A rule with an ``indicator`` matches indicator updates and must leave ``patterns`` empty;
    otherwise it matches pattern detections (``min_confidence`` applies to those).
    """

    name: RuleName

    def fields(self) -> RuleFields:
        return RuleFields(
            name=self.name,
            symbols=self.symbols,
            patterns=self.patterns,
            tiers=list(self.tiers),
            min_confidence=self.min_confidence,
            indicator=None if self.indicator is None else self.indicator.model_dump(),
            cooldown_seconds=self.cooldown_seconds,
            enabled=self.enabled,
        )


class PreviewIn(_RuleIn):
    """A rule as for creating one (``name`` optional): what would it have matched?"""


class RulePatch(BaseModel):
    """Any subset of a rule's fields; ``"indicator": null`` removes the indicator. The rule
    that results is checked as a whole, as when it is created."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    name: RuleName | None = None
    symbols: RuleSymbols | None = None
    patterns: RulePatterns | None = None
    tiers: RuleTiers | None = None
    min_confidence: Confidence | None = None
    indicator: IndicatorIn | None = None
    cooldown_seconds: Cooldown | None = None
    enabled: bool | None = None


class ReadIn(BaseModel):
    """Either ``{"ids": [...]}`` (up to 500 of your alert ids) or ``{"all": true}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ids: list[Annotated[int, Field(ge=1, le=BIGINT_MAX)]] | None = Field(
        None, min_length=1, max_length=MAX_READ_IDS
    )
    all: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> ReadIn:
        if (self.ids is None) == (self.all is None):
            raise ValueError('ids: give either "ids" or "all": true, not both and not neither')
        if self.all is False:
            raise ValueError('all: must be true (or give "ids" instead)')
        return self


def _symbol(value: str) -> str:
    symbol = normalise_symbol(value)
    if symbol is None:
        raise ValueError("not a valid symbol")
    return symbol


class AlertsQuery(QueryModel):
    unread: bool = Field(False, description="Only alerts not yet read")
    rule_id: int | None = Field(None, ge=1, le=BIGINT_MAX, description="Only this rule's alerts")
    symbol: Annotated[str, Field(max_length=32), AfterValidator(_symbol)] | None = Field(
        None, description="Only alerts of this symbol"
    )
    order: InboxOrder = Field(
        "newest",
        description="newest: newest first; unread_first: the unread newest first, then the read"
        " newest first. A cursor belongs to its order",
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)


# The cursor of each inbox order: [id], or [unread 0/1, id].
_INBOX_CURSOR: Final[dict[InboxOrder, list[CursorKind]]] = {
    "newest": ["int"],
    "unread_first": ["int", "int"],
}


# --- response models ----------------------------------------------------------------------------


class RuleOut(BaseModel):
    id: int
    name: str
    symbols: list[str] | Literal["watchlist", "*"]
    patterns: list[str]
    tiers: list[Tier]
    min_confidence: float
    indicator: IndicatorIn | None
    cooldown_seconds: int
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    alerts: int = Field(description="How many alerts the rule has made (all in the inbox)")
    last_alert_at: dt.datetime | None = Field(description="When it last made one")
    paused: bool = Field(
        description="Alerts paused for this rule: your alerts went over the per-user rate while"
        " it fired (it resumes by itself at paused_until, or when you edit it)"
    )
    paused_until: dt.datetime | None = Field(description="When a paused rule resumes")


class RulesMeta(BaseModel):
    count: int
    max: int = Field(description="The most rules a user may have")


class RulesBody(BaseModel):
    """Your alert rules, oldest first."""

    status: Literal["success"]
    data: list[RuleOut]
    meta: RulesMeta


class RuleBody(BaseModel):
    """One of your alert rules."""

    status: Literal["success"]
    data: RuleOut
    meta: dict[str, Any]


class DeletedOut(BaseModel):
    id: int
    deleted: bool


class DeletedBody(BaseModel):
    """The rule is gone; its alerts stay in the inbox."""

    status: Literal["success"]
    data: DeletedOut
    meta: dict[str, Any]


class PreviewOut(BaseModel):
    matches: int = Field(description="Events of the stored history the rule would have matched")
    days: int
    since: dt.datetime


class PreviewBody(BaseModel):
    """How often the rule would have fired over the last 30 days (cooldown not applied)."""

    status: Literal["success"]
    data: PreviewOut
    meta: dict[str, Any]


class AlertOut(BaseModel):
    id: int
    rule_id: int | None = Field(
        description="The first of your rules that matched the event; None once it was deleted"
    )
    rule_name: str
    rule_ids: list[int] = Field(description="Every rule of yours that matched the event")
    rule_names: list[str]
    symbol: str | None
    event: dict[str, Any] = Field(description="The normalised event that matched")
    created_at: dt.datetime
    read_at: dt.datetime | None


class AlertsMeta(PageMeta):
    unread: int = Field(description="All your unread alerts (not only this page's)")


class AlertsBody(BaseModel):
    """Your alerts, newest first (or unread first)."""

    status: Literal["success"]
    data: list[AlertOut]
    meta: AlertsMeta


class AlertBody(BaseModel):
    """One of your alerts."""

    status: Literal["success"]
    data: AlertOut
    meta: dict[str, Any]


class ReadOut(BaseModel):
    marked: list[int] = Field(description="The ids that were unread and are now read")
    unread: int = Field(description="Your unread alerts left")


class ReadBody(BaseModel):
    """Alerts marked read."""

    status: Literal["success"]
    data: ReadOut
    meta: dict[str, Any]


# --- helpers ------------------------------------------------------------------------------------


def _rule_not_found() -> APIError:
    return APIError(404, "rule_not_found", "no such alert rule")


def _alert_not_found() -> APIError:
    return APIError(404, "alert_not_found", "no such alert")


def _current_input(rule: Rule) -> dict[str, Any]:
    """A stored rule as the fields of a request (what a PATCH merges into)."""
    return {
        "name": rule.name,
        "symbols": rule.symbols,
        "patterns": list(rule.patterns),
        "tiers": list(rule.tiers),
        "min_confidence": rule.min_confidence,
        "indicator": rule.indicator,
        "cooldown_seconds": rule.cooldown_seconds,
        "enabled": rule.enabled,
    }


async def _check_known(conn: Any, symbols: list[str] | str) -> None:
    """400 ``unknown_symbols`` naming the symbols that do not exist (as the watchlist does)."""
    if not isinstance(symbols, list):
        return
    unknown = await select_unknown_symbols(conn, symbols)
    if unknown:
        shown = ", ".join(unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise APIError(
            400, "unknown_symbols", f"unknown symbols: {shown}", extra={"unknown": unknown}
        )


# --- rules --------------------------------------------------------------------------------------


@blueprint.get("/api/user/alerts/rules")
@login_required
@documented(RulesBody)
async def list_rules() -> Response:
    """Your alert rules, oldest first, with how many you may have."""
    async with get_db().connection() as conn:
        rules = await select_rules(conn, current_user().id)
    meta = {"count": len(rules), "max": get_settings().alert_max_rules_per_user}
    return success([rule.to_json() for rule in rules], meta)


@blueprint.post("/api/user/alerts/rules")
@login_required
@validate_request(RuleIn)
@documented(RuleBody, 400, 409)
async def create_rule(data: RuleIn) -> Response:
    """Create a rule (201). Unknown symbols are a 400 naming them; 409 ``rule_limit_reached``
    when you already have the most rules allowed."""
    user_id = current_user().id
    limit = get_settings().alert_max_rules_per_user
    async with get_db().write() as conn:
        await _check_known(conn, data.symbols)
        rule = await insert_rule(conn, user_id, data.fields(), limit)
    if rule is None:
        raise APIError(
            409, "rule_limit_reached", f"at most {limit} alert rules per user; delete one first"
        )
    await announce_rules_changed(user_id)
    return success(rule.to_json(), status=201)


@blueprint.post("/api/user/alerts/rules/preview")
@login_required
@validate_request(PreviewIn)
@documented(PreviewBody, 400)
async def preview_rule(data: PreviewIn) -> Response:
    """How many events of the last 30 days of stored history the rule would have matched.

    Pattern rules count the detections of every tier's table; indicator rules count the stored
    indicator values (``crosses_*`` against the value before in that symbol's series). The
    cooldown is not applied, so this is an upper bound of the alerts the rule would have sent.
    """
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=PREVIEW_DAYS)
    async with get_db().read() as conn, conn.transaction(readonly=True):
        symbols: list[str] | None
        if data.symbols == WATCHLIST:
            symbols = (await select_user_settings(conn, current_user().id)).watchlist
        elif data.symbols == ALL_SYMBOLS:
            symbols = None
        else:
            assert isinstance(data.symbols, list)
            symbols = data.symbols
        flt = PreviewFilter(
            since=since,
            symbols=symbols,
            patterns=[pattern.lower() for pattern in data.patterns],
            tiers=list(data.tiers),
            min_confidence=data.min_confidence,
        )
        if symbols == []:
            matches = 0
        elif data.indicator is not None:
            indicator = data.indicator
            matches = await count_preview_indicators(
                conn, flt, indicator.type, indicator.op, indicator.value
            )
        else:
            matches = await count_preview_patterns(conn, flt)
    return success({"matches": matches, "days": PREVIEW_DAYS, "since": since})


@blueprint.get("/api/user/alerts/rules/<int:rule_id>")
@login_required
@documented(RuleBody, 404)
async def get_rule(rule_id: int) -> Response:
    """One of your rules (404 ``rule_not_found`` for anyone else's)."""
    async with get_db().connection() as conn:
        rule = await select_rule(conn, current_user().id, rule_id)
    if rule is None:
        raise _rule_not_found()
    return success(rule.to_json())


@blueprint.patch("/api/user/alerts/rules/<int:rule_id>")
@login_required
@validate_request(RulePatch)
@documented(RuleBody, 400, 404)
async def patch_rule(rule_id: int, data: RulePatch) -> Response:
    """Change some of a rule's fields; the rule that results is checked as a whole."""
    user_id = current_user().id
    async with get_db().write() as conn:
        current = await select_rule(conn, user_id, rule_id)
        if current is None:
            raise _rule_not_found()
        changes = data.model_dump(exclude_unset=True)
        try:
            merged = RuleIn.model_validate({**_current_input(current), **changes})
        except ValidationError as exc:
            raise APIError(400, "validation_error", format_validation_error(exc)) from exc
        if "symbols" in changes:
            await _check_known(conn, merged.symbols)
        rule = await update_rule(conn, user_id, rule_id, merged.fields())
    if rule is None:  # deleted meanwhile
        raise _rule_not_found()
    await announce_rules_changed(user_id)
    return success(rule.to_json())


@blueprint.delete("/api/user/alerts/rules/<int:rule_id>")
@login_required
@documented(DeletedBody, 404)
async def remove_rule(rule_id: int) -> Response:
    """Delete one of your rules; the alerts it made stay in the inbox."""
    user_id = current_user().id
    async with get_db().write() as conn:
        deleted = await delete_rule(conn, user_id, rule_id)
    if not deleted:
        raise _rule_not_found()
    await announce_rules_changed(user_id)
    return success({"id": rule_id, "deleted": True})


# --- the inbox ----------------------------------------------------------------------------------


@blueprint.get("/api/user/alerts")
@login_required
@validate_querystring(AlertsQuery)
@documented(AlertsBody, 400)
async def list_alerts(query_args: AlertsQuery) -> Response:
    """Your alerts, newest first (``order=unread_first``: the unread ones first):
    ``unread=true`` for the unread only, by ``rule_id`` or ``symbol``; keyset pages (pass
    ``next_cursor`` as ``cursor``, with the same order)."""
    order = query_args.order
    after = None
    if query_args.cursor is not None:
        key = decode_cursor(query_args.cursor, _INBOX_CURSOR[order])
        after = [value for value in key if isinstance(value, int)]
        if order == "unread_first" and after[0] not in (0, 1):
            raise APIError(
                400, "invalid_cursor", "cursor is not valid; use next_cursor as returned"
            )
    user_id = current_user().id
    # The primary: a user reads back what they just marked read.
    async with get_db().connection() as conn:
        rows = await select_alerts(
            conn,
            user_id,
            limit=query_args.limit + 1,
            order=order,
            after=after,
            unread=query_args.unread,
            rule_id=query_args.rule_id,
            symbol=query_args.symbol,
        )
        unread = await count_unread(conn, user_id)
    page = paginate(rows, query_args.limit, lambda row: row.sort_key(order))
    return success([row.to_json() for row in page.items], page.meta(unread=unread))


@blueprint.get("/api/user/alerts/<int:alert_id>")
@login_required
@documented(AlertBody, 404)
async def get_alert(alert_id: int) -> Response:
    """One of your alerts (404 ``alert_not_found`` for anyone else's)."""
    async with get_db().connection() as conn:
        row = await select_alert(conn, current_user().id, alert_id)
    if row is None:
        raise _alert_not_found()
    return success(row.to_json())


@blueprint.post("/api/user/alerts/read")
@login_required
@validate_request(ReadIn)
@documented(ReadBody, 400, 404)
async def read_alerts(data: ReadIn) -> Response:
    """Mark alerts read: these ``ids`` (all must be yours, else 404 and nothing is marked) or
    ``all``. Returns the ids that changed and the unread count left."""
    user_id = current_user().id
    async with get_db().write() as conn:
        ids = None
        if data.ids is not None:
            ids = _unique(data.ids)
            owned = await select_owned_alert_ids(conn, user_id, ids)
            if len(owned) != len(ids):
                raise _alert_not_found()
        marked = await mark_read(conn, user_id, ids)
        unread = await count_unread(conn, user_id)
    return success({"marked": marked, "unread": unread})
