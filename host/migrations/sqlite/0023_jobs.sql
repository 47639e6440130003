-- Bulk jobs: a file's rows applied in paced batches by whichever process
-- holds the job's lease. Each row's outcome commits with its change, and a
-- batch commits only while its process still holds the lease, so a job
-- resumed after a crash applies no row twice.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    status      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    plan        TEXT NOT NULL,
    author      TEXT,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

-- One row of a job's file: its line, the entity and user it names (none
-- when the line could not be read), and what became of it.
CREATE TABLE job_rows (
    job_id     INTEGER NOT NULL,
    line       INTEGER NOT NULL,
    kind       TEXT,
    entity_id  INTEGER,
    user_id    INTEGER,
    status     TEXT NOT NULL,
    error      TEXT,
    deals      INTEGER NOT NULL DEFAULT 0,
    activities INTEGER NOT NULL DEFAULT 0,
    tasks      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, line)
);
CREATE INDEX job_rows_status ON job_rows (job_id, status, line);
