-- The board's kanban: a stage's entities changed last, and each stage's
-- count.
CREATE INDEX entities_stage ON entities (pipeline, stage, updated_at);
