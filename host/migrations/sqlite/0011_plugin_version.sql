-- The version of the package that installed a plugin, recorded on each of
-- its runs; NULL for a plugin installed on its own.
ALTER TABLE plugins ADD COLUMN version TEXT;
