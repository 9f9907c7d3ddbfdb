-- Failed passwords and lockouts per (account, client address), instead of per account: whoever
-- guesses a password locks only their own address out, and the owner can still sign in from theirs.

CREATE TABLE login_failures (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address text NOT NULL,
    failures integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_failure_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, address)
);
CREATE INDEX login_failures_last_idx ON login_failures (last_failure_at);

ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;
