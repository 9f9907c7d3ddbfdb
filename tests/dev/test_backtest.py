"""The backtest's arithmetic on small cases worked out by hand."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from tickstock.dev.backtest import Bar, Detection, Parameters, run_backtest

D1 = date(2024, 3, 4)  # a Monday


def day(n: int) -> date:
    return D1 + timedelta(days=n - 1)


def bar(symbol: str, n: int, o: float, h: float, low: float, c: float) -> Bar:
    return Bar(symbol, day(n), o, h, low, c)


def seen(symbol: str, n: int, pattern: str = "Hammer", confidence: float = 0.8) -> Detection:
    return Detection(
        symbol,
        pattern,
        datetime.combine(day(n), datetime.min.time(), UTC).replace(hour=21),
        confidence,
    )


PLAIN = Parameters(
    initial_capital=10_000.0,
    commission_rate=0.0,
    slippage_rate=0.0,
    max_position_size=0.5,
    stop_loss_pct=0.1,
    take_profit_pct=0.2,
    max_hold_days=3,
)


def run(bars: list[Bar], detections: list[Detection], p: Parameters = PLAIN, **kw: object) -> dict:
    kw.setdefault("start", day(1))
    kw.setdefault("end", day(30))
    return run_backtest(bars, detections, parameters=p, **kw)  # type: ignore[arg-type]


def test_take_profit_without_costs() -> None:
    bars = [
        bar("AAA", 1, 10, 10, 10, 10),
        bar("AAA", 2, 10, 10.5, 9.5, 10),  # entry at the open: 500 shares for 5 000
        bar("AAA", 3, 10, 12.5, 9.8, 12),  # target 12 reached
    ]
    result = run(bars, [seen("AAA", 1)])
    assert result["trades"] == [
        {
            "symbol": "AAA",
            "pattern": "Hammer",
            "entry_date": "2024-03-05",
            "entry_price": 10.0,
            "exit_date": "2024-03-06",
            "exit_price": 12.0,
            "exit_reason": "take_profit",
            "shares": 500.0,
            "pnl": 1000.0,
            "return": 0.2,
        }
    ]
    assert result["equity_curve"] == [
        ["2024-03-04", 10_000.0],
        ["2024-03-05", 10_000.0],
        ["2024-03-06", 11_000.0],
    ]
    m = result["metrics"]
    assert m["total_return"] == pytest.approx(0.1)
    assert m["annualized_return"] == pytest.approx(1.1**84 - 1, rel=1e-5)
    assert (m["total_trades"], m["winning_trades"], m["losing_trades"]) == (1, 1, 0)
    assert m["win_rate"] == 1.0
    assert m["avg_win"] == pytest.approx(0.2)
    assert m["avg_loss"] is None
    assert m["profit_factor"] is None  # no losing trade: infinite, reported as null
    assert m["max_drawdown"] == 0.0
    # Daily returns 0, 0, 0.1: mean 1/30, sample sd sqrt(1/300), so sqrt(252/3).
    assert m["sharpe_ratio"] == pytest.approx(math.sqrt(84), rel=1e-5)
    assert m["exposure"] == pytest.approx(2 / 3, rel=1e-5)
    assert result["pattern_metrics"]["Hammer"] == m


def test_costs_on_both_sides_and_a_gap_through_the_stop() -> None:
    p = Parameters(10_000.0, 0.01, 0.01, 1.0, 0.05, 0.5, 10)
    bars = [
        bar("AAA", 1, 100, 100, 100, 100),
        bar("AAA", 2, 100, 101, 99, 100),  # fill 101; stop 95.95
        bar("AAA", 3, 90, 92, 88, 91),  # opens below the stop: out at the open, 90 * 0.99
    ]
    result = run(bars, [seen("AAA", 1)], p)
    (trade,) = result["trades"]
    assert trade["entry_price"] == 101.0
    assert trade["exit_price"] == pytest.approx(89.1)
    assert trade["exit_reason"] == "stop_loss"
    # shares = 10 000 / (101 * 1.01); proceeds = shares * 89.1 * 0.99.
    assert trade["return"] == pytest.approx(89.1 * 0.99 / (101 * 1.01) - 1, abs=1e-6)
    assert trade["shares"] == pytest.approx(10_000 / 102.01, abs=1e-6)
    values = [value for _, value in result["equity_curve"]]
    assert values == pytest.approx(
        [10_000.0, 10_000 / 102.01 * 100, 10_000 * 88.209 / 102.01], abs=0.01
    )
    m = result["metrics"]
    assert m["profit_factor"] == 0.0  # no win, one loss
    assert m["avg_win"] is None and m["win_rate"] == 0.0
    assert m["max_drawdown"] == pytest.approx(1 - 88.209 / 102.01, abs=1e-6)


def test_a_bar_reaching_both_levels_exits_at_the_stop() -> None:
    bars = [
        bar("AAA", 1, 10, 10, 10, 10),
        bar("AAA", 2, 10, 10, 10, 10),
        bar("AAA", 3, 10, 13, 8, 11),  # target 12 and stop 9 both inside the range
    ]
    (trade,) = run(bars, [seen("AAA", 1)])["trades"]
    assert (trade["exit_reason"], trade["exit_price"], trade["return"]) == ("stop_loss", 9.0, -0.1)


def test_max_hold_exits_at_the_close_of_the_last_day_held() -> None:
    p = Parameters(10_000.0, 0.0, 0.0, 0.5, 0.5, 0.5, 2)
    bars = [bar("AAA", n, 10, 10.5, 9.5, 10 + n / 10) for n in range(1, 6)]
    (trade,) = run(bars, [seen("AAA", 1)], p)["trades"]
    # In at day 2's open, day 2 is the first day held, out at day 3's close.
    assert (trade["entry_date"], trade["exit_date"]) == ("2024-03-05", "2024-03-06")
    assert (trade["exit_reason"], trade["exit_price"]) == ("max_hold", 10.3)


def test_a_position_still_open_at_the_end_closes_at_the_last_close() -> None:
    bars = [bar("AAA", n, 10, 10.5, 9.5, 10.4) for n in range(1, 4)]
    (trade,) = run(bars, [seen("AAA", 1)], PLAIN, end=day(3))["trades"]
    assert (trade["exit_date"], trade["exit_reason"], trade["exit_price"]) == (
        "2024-03-06",
        "end_of_data",
        10.4,
    )


def test_one_position_per_symbol_and_the_most_confident_signal_of_a_day() -> None:
    p = Parameters(10_000.0, 0.0, 0.0, 0.5, 0.5, 0.5, 2)
    bars = [bar("AAA", n, 10, 10, 10, 10) for n in range(1, 8)]
    detections = [
        seen("AAA", 1, "Doji", 0.7),
        seen("AAA", 1, "Hammer", 0.9),  # wins day 1
        seen("AAA", 2, "Doji", 0.99),  # day 3 entry: the Hammer position is open then
        seen("AAA", 3, "Doji", 0.6),  # day 4 entry: the position exits on day 3, so this trades
    ]
    trades = run(bars, detections, p)["trades"]
    assert [(t["pattern"], t["entry_date"], t["exit_date"]) for t in trades] == [
        ("Hammer", "2024-03-05", "2024-03-06"),
        ("Doji", "2024-03-07", "2024-03-08"),
    ]


def test_sizing_is_capped_by_the_cash_left() -> None:
    p = Parameters(10_000.0, 0.0, 0.0, 0.6, 0.5, 0.5, 5)
    bars = [bar(s, n, 10, 10, 10, 10) for s in ("AAA", "BBB") for n in range(1, 4)]
    trades = run(bars, [seen("BBB", 1), seen("AAA", 1)], p, end=day(3))["trades"]
    # Same day: AAA first (symbol order) takes 6 000, BBB gets the 4 000 left.
    assert [(t["symbol"], t["shares"]) for t in trades] == [("AAA", 600.0), ("BBB", 400.0)]


def test_signals_outside_the_choice_or_the_period_or_without_a_next_bar_do_nothing() -> None:
    bars = [bar("AAA", n, 10, 10, 10, 10) for n in range(1, 6)]
    detections = [
        seen("AAA", 1, "Doji"),  # pattern not chosen
        seen("AAA", 0),  # before the period
        seen("AAA", 5),  # on the last bar: no next session
        seen("ZZZ", 1),  # no bars
    ]
    result = run(bars, detections, PLAIN, patterns=["Hammer"], start=day(1), end=day(5))
    assert result["trades"] == []
    assert result["equity_curve"] == [[d.isoformat(), 10_000.0] for d in map(day, range(1, 6))]
    m = result["metrics"]
    assert (m["total_return"], m["max_drawdown"], m["exposure"]) == (0.0, 0.0, 0.0)
    assert m["sharpe_ratio"] is None  # a flat curve has no variation
    assert result["pattern_metrics"]["Hammer"]["total_trades"] == 0


def test_empty_inputs_give_a_complete_result_without_nan() -> None:
    result = run([], [])
    assert result["trades"] == [] and result["equity_curve"] == []
    m = result["metrics"]
    assert m["total_trades"] == 0 and m["total_return"] == 0.0
    assert m["win_rate"] is None and m["annualized_return"] is None
    json.dumps(result, allow_nan=False)


def test_per_pattern_figures_add_up_to_the_portfolio() -> None:
    p = Parameters(10_000.0, 0.001, 0.001, 0.3, 0.03, 0.04, 4)
    rng = random.Random(7)
    bars, detections = [], []
    for symbol in ("AAA", "BBB", "CCC"):
        price = 50.0
        for n in range(1, 41):
            o = price * (1 + rng.gauss(0, 0.01))
            c = o * (1 + rng.gauss(0, 0.02))
            bars.append(bar(symbol, n, o, max(o, c) * 1.01, min(o, c) * 0.99, c))
            price = c
            if rng.random() < 0.3:
                detections.append(seen(symbol, n, rng.choice(("Doji", "Hammer")), rng.random()))
    result = run(bars, detections, p, end=day(40))
    m, per = result["metrics"], result["pattern_metrics"]
    assert m["total_trades"] == sum(x["total_trades"] for x in per.values()) > 5
    gains = sum(x["final_equity"] - 10_000 for x in per.values())
    assert gains == pytest.approx(m["final_equity"] - 10_000, abs=0.05)
    assert sum(t["pnl"] for t in result["trades"]) == pytest.approx(gains, abs=0.05)
    # Deterministic whatever order the rows come in.
    rng.shuffle(bars)
    rng.shuffle(detections)
    assert run(bars, detections, p, end=day(40)) == result
    json.dumps(result, allow_nan=False)


def test_parameters_from_a_job_message() -> None:
    p = Parameters.from_mapping({"initial_capital": 5000, "max_hold_days": 7})
    assert (p.initial_capital, p.max_hold_days, p.stop_loss_pct) == (5000.0, 7, 0.05)
    for bad in ({"stop_loss_pct": -0.1}, {"commission_rate": "x"}, {"initial_capital": math.nan}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Parameters.from_mapping(bad)
