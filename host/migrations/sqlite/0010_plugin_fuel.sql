-- A plugin's fuel budgets from its package's manifest, as JSON
-- ({"default": N, "max": M}); NULL for a plugin installed without one.
ALTER TABLE plugins ADD COLUMN fuel TEXT;
