-- The board's kanban: a stage's entities changed last, and each stage's
-- count.
CREATE INDEX entities_stage ON entities (pipeline, stage, updated_at);
-- The run log filtered by time.
CREATE INDEX runs_created ON runs (created_at);
