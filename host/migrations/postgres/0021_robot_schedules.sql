-- When each robot on a schedule runs next. A process runs it only if it
-- moves `next_at` from the value it read, so each firing happens once.
CREATE TABLE robot_schedules (
    robot_id BIGINT PRIMARY KEY,
    next_at  BIGINT NOT NULL
);
