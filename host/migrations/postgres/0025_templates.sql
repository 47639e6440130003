-- Templates installed: the version, when, and each item as that version
-- declared it (`spec`, JSON), with the ids its robots and triggers got. An
-- upgrade compares the portal with it to tell what the admin changed.
CREATE TABLE templates (
    code         TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    installed_at BIGINT NOT NULL,
    spec         TEXT NOT NULL
);
