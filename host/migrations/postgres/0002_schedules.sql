-- When each scheduled trigger fires next. A process fires it only if it
-- moves `next_at` from the value it read, so each firing happens once.
CREATE TABLE schedules (
    trigger_id BIGINT PRIMARY KEY,
    next_at    BIGINT NOT NULL
);
