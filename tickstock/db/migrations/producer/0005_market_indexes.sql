-- Market breadth reads one trading day, or a range of days, across all symbols: the latest day
-- (max(date)), the day's bars, and the year before it. The primary key (symbol, date) serves a
-- symbol's own bars; this serves a day's bars across symbols.
CREATE INDEX IF NOT EXISTS ohlcv_daily_date_idx ON ohlcv_daily (date, symbol);
