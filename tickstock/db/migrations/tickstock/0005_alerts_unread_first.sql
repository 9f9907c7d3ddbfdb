-- The inbox's unread-first order (GET /api/user/alerts?order=unread_first): one index range per
-- page, keyed (unread, id) as the cursor is.
CREATE INDEX alerts_unread_first_idx ON alerts (user_id, (read_at IS NULL) DESC, id DESC);
