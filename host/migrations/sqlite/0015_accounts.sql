-- People who sign in to the board: a name, a role (as an API token's) and
-- the password's Argon2id hash (a PHC string), set with `robohost account`.
CREATE TABLE accounts (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    password   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Signed-in browsers. `id` is the SHA-256 of the session cookie, so a
-- leaked database opens no session; `csrf` is the token its forms carry.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions (account);
