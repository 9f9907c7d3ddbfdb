-- Live Socket.IO subscriptions (written in batches, removed on disconnect; a node's rows are
-- cleared by node_id when it starts or stops) and rejected ingest messages.

CREATE TABLE ws_subscriptions (
    node_id text NOT NULL,
    sid text NOT NULL,
    user_id bigint,
    room text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sid, room)
);
CREATE INDEX ws_subscriptions_node_idx ON ws_subscriptions (node_id);
CREATE INDEX ws_subscriptions_user_idx ON ws_subscriptions (user_id);

CREATE TABLE error_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL,
    reason text NOT NULL,
    channel text,
    message text NOT NULL,
    context jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX error_logs_created_idx ON error_logs (created_at DESC);
