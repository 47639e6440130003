-- A token may expire, and may be bound to the CRM user it acts for: the
-- changes made with it record that author.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN user_id INTEGER;
