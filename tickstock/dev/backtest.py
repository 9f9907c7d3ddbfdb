"""The backtest's arithmetic: pattern detections traded over daily bars (no I/O, deterministic).

The rules, in the order a trading day applies them (SPEC §13; docs/ARCHITECTURE.md repeats them):

- **Signal.** A detection of a chosen pattern (an empty choice means every pattern) whose UTC
  calendar date lies in ``[start, end]`` is a buy signal for that date; a US session lies within one
  UTC day, so this is the detection's session. Several signals for one symbol on one date: the
  highest confidence wins (then the pattern name, alphabetically).
- **Entry** at the open of the symbol's next bar after the signal date (the next session), if that
  bar is inside the period and the symbol holds no position then (one position per symbol at a
  time: signals while a position is open, or for the day it is entered, are skipped). The fill is
  ``open * (1 + slippage_rate)``; the budget is ``max_position_size`` of the equity at the previous
  close (capped by the cash there is: no leverage), and it pays the shares and the commission
  (``commission_rate`` of the traded value), so ``shares = budget / (fill * (1 + commission))``.
  Fractional shares. Several entries on one day are taken in symbol order.
- **Exit**, checked on every bar from the entry bar on: stop ``fill * (1 - stop_loss_pct)``,
  target ``fill * (1 + take_profit_pct)``. A later bar that opens beyond a level exits at its open
  (a gap); a bar whose range reaches both levels exits at the stop (conservative: the intraday
  order is unknown, so the worse outcome is assumed); otherwise the level reached. Without either,
  the ``max_hold_days``-th bar held (the entry bar is the first) exits at its close, and a position
  still open on the symbol's last bar of the period exits there at the close (``end_of_data``).
  Exit fills are ``price * (1 - slippage_rate)`` and pay commission too.
- **Equity** is marked to market at every session's close (cash plus each open position at the
  symbol's latest close); the curve has one point per session (any symbol's bar date) in the period.

Metrics (fractions, not percents): total return; annualised return ``(final / initial) **
(252 / sessions) - 1``; trades, win rate (a win returns more than 0 after costs), average win and
average loss (trade returns); profit factor (gross profit over gross loss; ``None`` when there is no
losing trade, as it would be infinite); max drawdown (largest fall from a peak of the curve, the
initial capital counting as the first peak); Sharpe ratio (mean over sample standard deviation of
the daily returns of the curve, the initial capital being the value before the first session, times
√252, risk-free rate 0; ``None`` with fewer than two returns or no variation); exposure (share of
sessions with a position open at some time in the session). Per pattern, the same figures over the
pattern's own curve: the initial capital plus that pattern's realised and unrealised profit. Every
undefined figure is ``None``, never NaN or infinity.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

__all__ = [
    "TRADING_DAYS",
    "Bar",
    "Detection",
    "ExitReason",
    "Parameters",
    "Trade",
    "run_backtest",
]

TRADING_DAYS: Final = 252
ExitReason = Literal["stop_loss", "take_profit", "max_hold", "end_of_data"]


@dataclass(frozen=True, slots=True)
class Bar:
    """One daily bar."""

    symbol: str
    day: date
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True, slots=True)
class Detection:
    """One stored detection (``detected_at`` is aware, or naive UTC)."""

    symbol: str
    pattern: str
    detected_at: datetime
    confidence: float


@dataclass(frozen=True, slots=True)
class Parameters:
    """SPEC §13's backtest parameters; rates and percents are fractions (0.05 is 5 %)."""

    initial_capital: float = 100_000.0
    commission_rate: float = 0.001
    slippage_rate: float = 0.0005
    max_position_size: float = 0.1
    stop_loss_pct: float = 0.05
    take_profit_pct: float = 0.10
    max_hold_days: int = 20

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Parameters:
        """The parameters of a job message (a missing one takes its default).

        Raises ValueError naming the first parameter that is not a number in its range.
        """
        defaults = cls()
        chosen: dict[str, float] = {}
        for name, low, high in _RANGES:
            value = values.get(name, getattr(defaults, name))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{name} must be between {low:g} and {high:g}")
            chosen[name] = float(value)
        return cls(
            initial_capital=chosen["initial_capital"],
            commission_rate=chosen["commission_rate"],
            slippage_rate=chosen["slippage_rate"],
            max_position_size=chosen["max_position_size"],
            stop_loss_pct=chosen["stop_loss_pct"],
            take_profit_pct=chosen["take_profit_pct"],
            max_hold_days=int(chosen["max_hold_days"]),
        )


# The ranges a job's parameters must lie in (the API validates the same before a job is queued).
_RANGES: Final = (
    ("initial_capital", 100.0, 1e12),
    ("commission_rate", 0.0, 0.1),
    ("slippage_rate", 0.0, 0.1),
    ("max_position_size", 0.001, 1.0),
    ("stop_loss_pct", 0.001, 0.99),
    ("take_profit_pct", 0.001, 10.0),
    ("max_hold_days", 1, 365),
)


@dataclass(slots=True)
class Trade:
    """One closed round trip."""

    symbol: str
    pattern: str
    entry_date: date
    entry_price: float
    exit_date: date
    exit_price: float
    exit_reason: ExitReason
    shares: float
    cost: float  # paid at entry, commission included
    proceeds: float  # received at exit, commission deducted

    @property
    def pnl(self) -> float:
        return self.proceeds - self.cost

    @property
    def return_(self) -> float:
        return self.pnl / self.cost

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "pattern": self.pattern,
            "entry_date": self.entry_date.isoformat(),
            "entry_price": round(self.entry_price, 4),
            "exit_date": self.exit_date.isoformat(),
            "exit_price": round(self.exit_price, 4),
            "exit_reason": self.exit_reason,
            "shares": round(self.shares, 6),
            "pnl": round(self.pnl, 2),
            "return": round(self.return_, 6),
        }


@dataclass(slots=True)
class _Position:
    symbol: str
    pattern: str
    entry_date: date
    fill: float
    shares: float
    cost: float
    held: int = 0


@dataclass(slots=True)
class _Book:
    """What one curve needs per session: the realised profit so far and the open positions."""

    realised: float = 0.0
    values: list[float] = field(default_factory=list)
    active: list[bool] = field(default_factory=list)


def _session(moment: datetime) -> date:
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(UTC).date()


def _signals(
    detections: Iterable[Detection], patterns: frozenset[str], start: date, end: date
) -> dict[str, dict[date, Detection]]:
    chosen: dict[str, dict[date, Detection]] = {}
    for d in detections:
        day = _session(d.detected_at)
        if (patterns and d.pattern not in patterns) or not start <= day <= end:
            continue
        per_day = chosen.setdefault(d.symbol, {})
        held = per_day.get(day)
        if held is None or (-d.confidence, d.pattern) < (-held.confidence, held.pattern):
            per_day[day] = d
    return chosen


def _exit(position: _Position, bar: Bar, p: Parameters) -> tuple[float, ExitReason] | None:
    stop = position.fill * (1.0 - p.stop_loss_pct)
    target = position.fill * (1.0 + p.take_profit_pct)
    if position.held > 1:  # the entry bar opens at the fill, so it cannot gap past a level
        if bar.open <= stop:
            return bar.open, "stop_loss"
        if bar.open >= target:
            return bar.open, "take_profit"
    if bar.low <= stop:
        return stop, "stop_loss"
    if bar.high >= target:
        return target, "take_profit"
    if position.held >= p.max_hold_days:
        return bar.close, "max_hold"
    return None


def _metrics(
    initial: float, values: Sequence[float], active: Sequence[bool], trades: Sequence[Trade]
) -> dict[str, Any]:
    final = values[-1] if values else initial
    sessions = len(values)
    total = final / initial - 1.0
    annual = (
        (final / initial) ** (TRADING_DAYS / sessions) - 1.0 if sessions and final > 0 else None
    )
    if sessions and final <= 0:
        annual = -1.0
    wins = [t for t in trades if t.return_ > 0]
    losses = [t for t in trades if t.return_ <= 0]
    gross_loss = -sum(t.pnl for t in losses)
    peak, drawdown = initial, 0.0
    for value in values:
        peak = max(peak, value)
        if peak > 0:
            drawdown = max(drawdown, (peak - value) / peak)
    series = [initial, *values]
    returns = [b / a - 1.0 for a, b in itertools.pairwise(series) if a > 0]
    sharpe = None
    if len(returns) >= 2:
        mean = sum(returns) / len(returns)
        std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        if std > 1e-12:
            sharpe = mean / std * math.sqrt(TRADING_DAYS)
    return {
        "initial_capital": round(initial, 2),
        "final_equity": round(final, 2),
        "total_return": round(total, 6),
        "annualized_return": _finite(annual),
        "total_trades": len(trades),
        "winning_trades": len(wins),
        "losing_trades": len(losses),
        "win_rate": round(len(wins) / len(trades), 6) if trades else None,
        "avg_win": round(sum(t.return_ for t in wins) / len(wins), 6) if wins else None,
        "avg_loss": round(sum(t.return_ for t in losses) / len(losses), 6) if losses else None,
        "profit_factor": (
            round(sum(t.pnl for t in wins) / gross_loss, 6) if losses and gross_loss > 0 else None
        ),
        "max_drawdown": round(drawdown, 6),
        "sharpe_ratio": _finite(sharpe),
        "exposure": round(sum(active) / sessions, 6) if sessions else 0.0,
    }


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 6)


def run_backtest(
    bars: Iterable[Bar],
    detections: Iterable[Detection],
    *,
    start: date,
    end: date,
    patterns: Iterable[str] = (),
    parameters: Parameters | None = None,
) -> dict[str, Any]:
    """SPEC §13's results: ``metrics``, ``pattern_metrics``, ``equity_curve`` and ``trades``."""
    p = parameters or Parameters()
    series: dict[str, list[Bar]] = {}
    for bar in sorted(bars, key=lambda b: (b.symbol, b.day)):
        if start <= bar.day <= end:
            series.setdefault(bar.symbol, []).append(bar)
    days = sorted({bar.day for rows in series.values() for bar in rows})
    by_day: dict[date, list[Bar]] = {}
    for rows in series.values():
        for bar in rows:
            by_day.setdefault(bar.day, []).append(bar)
    patterns = frozenset(patterns)
    signals = _signals(detections, patterns, start, end)
    # Each symbol's pending entries: the bar after each signal date.
    entries: dict[date, dict[str, Detection]] = {}
    for symbol, per_day in signals.items():
        rows = series.get(symbol, [])
        dates = [bar.day for bar in rows]
        for signal_day, detection in sorted(per_day.items()):
            index = bisect.bisect_right(dates, signal_day)
            if index < len(rows):
                entries.setdefault(rows[index].day, {}).setdefault(symbol, detection)
    last_day = {symbol: rows[-1].day for symbol, rows in series.items()}

    cash = p.initial_capital
    equity = p.initial_capital
    open_: dict[str, _Position] = {}
    closes: dict[str, float] = {}
    trades: list[Trade] = []
    signalled = {d.pattern for per_day in signals.values() for d in per_day.values()}
    pattern_names = sorted(patterns | signalled)
    books = {name: _Book() for name in pattern_names}
    curve: list[list[Any]] = []
    values: list[float] = []  # the curve unrounded, for the metrics
    active: list[bool] = []

    for day in days:
        today = sorted(by_day[day], key=lambda b: b.symbol)
        touched = {position.pattern for position in open_.values()}
        for bar in today:
            signal = entries.get(day, {}).get(bar.symbol)
            if signal is None or bar.symbol in open_:
                continue
            fill = bar.open * (1.0 + p.slippage_rate)
            budget = min(equity * p.max_position_size, cash)
            if budget <= 0 or fill <= 0:
                continue
            shares = budget / (fill * (1.0 + p.commission_rate))
            cash -= budget
            open_[bar.symbol] = _Position(bar.symbol, signal.pattern, day, fill, shares, budget)
            touched.add(signal.pattern)
        for bar in today:
            closes[bar.symbol] = bar.close
            position = open_.get(bar.symbol)
            if position is None:
                continue
            position.held += 1
            exit_ = _exit(position, bar, p)
            if exit_ is None and bar.day == last_day[bar.symbol]:
                exit_ = (bar.close, "end_of_data")
            if exit_ is None:
                continue
            price = exit_[0] * (1.0 - p.slippage_rate)
            proceeds = position.shares * price * (1.0 - p.commission_rate)
            cash += proceeds
            trade = Trade(
                bar.symbol,
                position.pattern,
                position.entry_date,
                position.fill,
                day,
                price,
                exit_[1],
                position.shares,
                position.cost,
                proceeds,
            )
            trades.append(trade)
            books[position.pattern].realised += trade.pnl
            del open_[bar.symbol]
        held = {name: 0.0 for name in books}
        for position in open_.values():
            held[position.pattern] += position.shares * closes[position.symbol] - position.cost
        equity = cash + sum(pos.shares * closes[pos.symbol] for pos in open_.values())
        values.append(equity)
        curve.append([day.isoformat(), round(equity, 2)])
        active.append(bool(touched))
        for name, book in books.items():
            book.values.append(p.initial_capital + book.realised + held[name])
            book.active.append(name in touched)

    return {
        "metrics": _metrics(p.initial_capital, values, active, trades),
        "pattern_metrics": {
            name: _metrics(
                p.initial_capital,
                book.values,
                book.active,
                [t for t in trades if t.pattern == name],
            )
            for name, book in books.items()
        },
        "equity_curve": curve,
        "trades": [trade.as_json() for trade in trades],
    }
