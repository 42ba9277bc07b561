-- People who sign in to the console: argon2id password hashes, never the passwords.
CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    username            TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name        TEXT    NOT NULL,
    password_hash       TEXT    NOT NULL,
    is_owner            INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    disabled_at         INTEGER
);

-- A user's role in a project: viewer, editor or admin. Owners need none.
CREATE TABLE memberships (
    user_id    INTEGER NOT NULL REFERENCES users(id),
    project_id INTEGER NOT NULL REFERENCES projects(id),
    role       TEXT    NOT NULL,
    PRIMARY KEY (user_id, project_id)
);

-- Console sessions: the SHA-256 digest of a 256-bit random id (the cookie holds the id), the
-- CSRF token forms carry, and when the session ends.
CREATE TABLE sessions (
    digest       BLOB    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed sign-ins per key (a username, or a client address), for throttling.
CREATE TABLE login_failures (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);

-- Every change of keys, tokens, members and roles, and every sign-in (matrix changes are the
-- revisions themselves).
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    project_id INTEGER,
    target     TEXT    NOT NULL,
    details    TEXT    NOT NULL
);
CREATE INDEX audit_by_project ON audit_log (project_id, id);

-- Instance-wide settings (the one-time setup token's digest, ...).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- An admin token belongs to a user (and acts with at most the user's roles), to one project as
-- its service account, or, when both are null, to the instance (made with `avsb token create`).
ALTER TABLE admin_tokens ADD COLUMN user_id INTEGER REFERENCES users(id);
ALTER TABLE admin_tokens ADD COLUMN project_id INTEGER REFERENCES projects(id);

-- Protected environments (production, say) take writes only from a project's admins.
ALTER TABLE environments ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;
