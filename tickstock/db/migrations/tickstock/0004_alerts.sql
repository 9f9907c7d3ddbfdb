-- Alert rules (what a user wants to be told about) and alerts (each one stored once: the inbox).
-- A rule's symbols are a list (scope 'list'), the user's watchlist as it is when the event arrives
-- (scope 'watchlist') or every symbol (scope 'all'). An alert keeps the rule's name and the
-- normalised event, so it survives the rule being edited or deleted.

CREATE TABLE alert_rules (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    scope text NOT NULL CHECK (scope IN ('list', 'watchlist', 'all')),
    symbols text[] NOT NULL DEFAULT '{}',
    patterns text[] NOT NULL DEFAULT '{}',
    tiers text[] NOT NULL DEFAULT '{}',
    min_confidence double precision NOT NULL DEFAULT 0
        CHECK (min_confidence >= 0 AND min_confidence <= 1),
    indicator jsonb,
    cooldown_seconds integer NOT NULL DEFAULT 300 CHECK (cooldown_seconds >= 0),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_user_idx ON alert_rules (user_id, id);

CREATE TABLE alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rule_id bigint REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name text NOT NULL,
    event_id text NOT NULL,
    symbol text,
    event jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz
);
-- One alert per rule and event, whichever node (or a matcher that took over) stores it.
CREATE UNIQUE INDEX alerts_rule_event_idx ON alerts (rule_id, event_id);
CREATE INDEX alerts_user_idx ON alerts (user_id, id DESC);
CREATE INDEX alerts_unread_idx ON alerts (user_id, id DESC) WHERE read_at IS NULL;
CREATE INDEX alerts_created_idx ON alerts (created_at);
