-- Stage entries are numbered per entity (1, 2, ...): a change computes the
-- number of the entry it opens from the entity it holds, instead of asking
-- the database for an id, so many entries go out in one statement. Runs and
-- entities keep the column `entry_id`, now that number; an entry is named
-- by its entity and its number.
CREATE TABLE entry_numbers AS
    SELECT id, ROW_NUMBER() OVER (PARTITION BY kind, entity_id ORDER BY id) AS entry FROM stage_entries;
UPDATE runs SET entry_id = (SELECT entry FROM entry_numbers n WHERE n.id = runs.entry_id);
UPDATE entities SET entry_id = (SELECT entry FROM entry_numbers n WHERE n.id = entities.entry_id)
    WHERE entry_id IS NOT NULL;

CREATE TABLE entries (
    kind       TEXT NOT NULL,
    entity_id  BIGINT NOT NULL,
    entry      BIGINT NOT NULL,
    pipeline   TEXT NOT NULL,
    stage      TEXT NOT NULL,
    entered_at BIGINT NOT NULL,
    left_at    BIGINT,
    PRIMARY KEY (kind, entity_id, entry)
);
INSERT INTO entries (kind, entity_id, entry, pipeline, stage, entered_at, left_at)
    SELECT e.kind, e.entity_id, n.entry, e.pipeline, e.stage, e.entered_at, e.left_at
    FROM stage_entries e JOIN entry_numbers n ON n.id = e.id;
DROP TABLE stage_entries;
ALTER TABLE entries RENAME TO stage_entries;
DROP TABLE entry_numbers;

DROP INDEX runs_entry;
CREATE INDEX runs_entry ON runs (kind, entity_id, entry_id);
