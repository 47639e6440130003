-- A counter per kind of configuration, bumped in the transaction that
-- changes it, so every process sharing the database notices and reloads.
CREATE TABLE revisions (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO revisions (name, value) VALUES ('settings', 0), ('plugins', 0);
