-- What templates declare: custom fields per entity kind, and global
-- constants (their type and names) whose values the admin binds. Specs are
-- the declarations' JSON form.
CREATE TABLE custom_fields (
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    spec TEXT NOT NULL,
    PRIMARY KEY (kind, code)
);

CREATE TABLE constant_decls (
    code TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
