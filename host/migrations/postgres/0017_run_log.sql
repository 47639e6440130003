-- The run log's filters, each paged by id: by status (dead runs above all)
-- and by robot. By entity, `runs_entry` serves.
CREATE INDEX runs_status_id ON runs (status, id);
CREATE INDEX runs_robot ON runs (robot_id, id);
