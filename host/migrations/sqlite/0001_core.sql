-- The CRM and its automation. Times are milliseconds since the Unix epoch;
-- typed values are stored as their JSON form (see domain/value.rs).

CREATE TABLE departments (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    head   INTEGER,
    parent INTEGER
);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    department INTEGER,
    active     BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE pipelines (
    code TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);

CREATE TABLE constants (
    code  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE plugins (
    name         TEXT PRIMARY KEY,
    digest       TEXT NOT NULL,
    wasm         BLOB NOT NULL,
    grants       TEXT NOT NULL,
    installed_at INTEGER NOT NULL
);

CREATE TABLE robots (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    stage    TEXT NOT NULL,
    spec     TEXT NOT NULL
);
CREATE INDEX robots_stage ON robots (pipeline, stage);

CREATE TABLE triggers (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    stage    TEXT NOT NULL,
    code     TEXT NOT NULL,
    spec     TEXT NOT NULL
);
CREATE INDEX triggers_code ON triggers (code);

CREATE TABLE id_sequences (
    kind TEXT PRIMARY KEY,
    next INTEGER NOT NULL
);

CREATE TABLE entities (
    kind          TEXT NOT NULL,
    id            INTEGER NOT NULL,
    pipeline      TEXT,
    stage         TEXT,
    entry_id      INTEGER,
    responsible   INTEGER,
    fields        TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE links (
    kind       TEXT NOT NULL,
    id         INTEGER NOT NULL,
    other_kind TEXT NOT NULL,
    other_id   INTEGER NOT NULL,
    PRIMARY KEY (kind, id, other_kind, other_id)
);

CREATE TABLE stage_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    entity_id  INTEGER NOT NULL,
    pipeline   TEXT NOT NULL,
    stage      TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    left_at    INTEGER
);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    event     TEXT NOT NULL,
    data      TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX events_entity ON events (kind, entity_id);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id    INTEGER NOT NULL,
    robot_id    INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    entity_id   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    cause       TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    fence       INTEGER NOT NULL DEFAULT 0,
    report      TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX runs_due ON runs (status, due_at);
CREATE INDEX runs_entry ON runs (entry_id);

CREATE TABLE timeline (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    text      TEXT NOT NULL,
    run_id    INTEGER,
    at        INTEGER NOT NULL
);

CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL,
    text       TEXT NOT NULL,
    about_kind TEXT,
    about_id   INTEGER,
    run_id     INTEGER,
    at         INTEGER NOT NULL
);

CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE api_tokens (
    hash       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
