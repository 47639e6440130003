-- Messages to clients (email, SMS, messenger) that robots sent: pending
-- until the delivery takes them, then sent or failed with the reason.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT,
    body       TEXT NOT NULL,
    about_kind TEXT,
    about_id   INTEGER,
    run_id     INTEGER,
    status     TEXT NOT NULL,
    error      TEXT,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
);
CREATE INDEX outbox_status ON outbox (status, id);

-- A run whose robot waits for a task or an activity to be completed before
-- the robots after it start (status 'awaiting').
ALTER TABLE runs ADD COLUMN awaiting_kind TEXT;
ALTER TABLE runs ADD COLUMN awaiting_id INTEGER;
CREATE INDEX runs_awaiting ON runs (awaiting_kind, awaiting_id);
