-- Trigger plugins are stored beside robot plugins; `world` says which.
ALTER TABLE plugins ADD COLUMN world TEXT NOT NULL DEFAULT 'robot';

-- Inbound URLs (`POST /hooks/{id}`) where outside services post events, each
-- handed to a trigger plugin. `spec` is the endpoint's settings as JSON,
-- its signing secret included.
CREATE TABLE endpoints (
    id         TEXT PRIMARY KEY,
    plugin     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Every call posted to /hooks/, refused or handled, with what it did.
CREATE TABLE inbound_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint    TEXT NOT NULL,
    status      TEXT NOT NULL,
    idempotency TEXT,
    received_at INTEGER NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX inbound_calls_endpoint ON inbound_calls (endpoint, id);
-- A sender's idempotency key is taken by the call that was handled with it.
CREATE UNIQUE INDEX inbound_calls_idempotency ON inbound_calls (endpoint, idempotency)
    WHERE status = 'handled' AND idempotency IS NOT NULL;
