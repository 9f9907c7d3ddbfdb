-- One alert per user per event: it names the first matching rule (rule_id, rule_name, as before)
-- and lists every rule of the user that matched the event (rule_ids, rule_names; empty on alerts
-- stored before this). A rule whose user went over the alert rate is paused until paused_until.

ALTER TABLE alerts
    ADD COLUMN rule_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN rule_names text[] NOT NULL DEFAULT '{}';

ALTER TABLE alert_rules ADD COLUMN paused_until timestamptz;
