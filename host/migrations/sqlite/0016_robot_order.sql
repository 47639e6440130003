-- A robot's place among its stage's robots, so an admin may reorder them
-- ("after previous" robots wait for the one before). Robots placed before
-- keep the order they were placed in.
ALTER TABLE robots ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
UPDATE robots SET position = id;
