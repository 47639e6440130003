-- An employee's absence (`{"from", "until"}`, days in their time zone) and
-- own working hours (`{"time_zone", "work_start", ...}`), as JSON; NULL when
-- present, and working the portal's hours.
ALTER TABLE users ADD COLUMN away TEXT;
ALTER TABLE users ADD COLUMN hours TEXT;
