-- Accounts, their sessions (browser cookies and API tokens) and per-user settings.

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    active boolean NOT NULL DEFAULT true,
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
-- Logins are case-insensitive: "Alice" and "alice" are one account.
CREATE UNIQUE INDEX users_username_lower_idx ON users (lower(username));

-- One row per browser session (kind 'cookie') or API token (kind 'token'); the id is the random
-- value the cookie or token names, secret_hash the hash of the token's secret part.
CREATE TABLE user_sessions (
    id text PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('cookie', 'token')),
    name text,
    secret_hash text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_active_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    address text,
    user_agent text,
    revoked_at timestamptz
);
CREATE INDEX user_sessions_live_user_idx ON user_sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE user_settings (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    watchlist text[] NOT NULL DEFAULT '{}',
    settings jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
