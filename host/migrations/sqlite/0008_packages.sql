-- Installed plugin packages, every version kept (for rollback); one
-- version of a name is active. `approved` is the capabilities the admin
-- approved for that version, as JSON.
CREATE TABLE packages (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    publisher    TEXT NOT NULL,
    signed       BOOLEAN NOT NULL,
    manifest     TEXT NOT NULL,
    archive      BLOB NOT NULL,
    approved     TEXT NOT NULL,
    installed_at INTEGER NOT NULL,
    active       BOOLEAN NOT NULL,
    PRIMARY KEY (name, version)
);
