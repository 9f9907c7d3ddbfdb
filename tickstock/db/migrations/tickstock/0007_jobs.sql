-- Jobs the producer runs for a user (SPEC §13): a backtest, or an admin's historical data load.
-- tickstock owns the row: it is created queued, announced to the producer until the producer
-- reports progress, and changed only by conditional updates (progress never goes backwards, a
-- finished job stays finished), so each state change is stored once however many nodes hear it.

CREATE TABLE jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('backtest', 'data_load')),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    -- What was asked for, as validated by the API (and sent to the producer).
    params jsonb NOT NULL,
    progress double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    current_symbol text,
    message text,
    error text,
    estimated_completion timestamptz,
    -- A backtest's outcome: metrics, pattern_metrics, equity_curve, trades.
    results jsonb,
    -- The state version: +1 with every stored change; a job event's id is (job, seq).
    seq integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    -- The last message heard from the producer about this job (a running job's stall clock).
    heard_at timestamptz,
    -- Announcement bookkeeping: a queued job is published again until the producer picks it up.
    announced_at timestamptz,
    announcements integer NOT NULL DEFAULT 0,
    CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL))
);
-- A user's jobs, newest first (GET /api/jobs and its keyset cursor).
CREATE INDEX jobs_user_idx ON jobs (user_id, created_at DESC, id DESC);
-- Everyone's jobs, newest first (GET /api/admin/jobs).
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
-- The active jobs: the per-user cap and the sweeper's announcements, pickups and stalls.
CREATE INDEX jobs_active_idx ON jobs (status, user_id) WHERE status IN ('queued', 'running');
