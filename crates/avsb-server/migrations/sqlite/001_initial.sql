-- Projects own a context schema (Pipet's configuration format) and environments.
CREATE TABLE projects (
    id                      INTEGER PRIMARY KEY,
    key                     TEXT    NOT NULL UNIQUE,
    name                    TEXT    NOT NULL,
    schema_json             TEXT    NOT NULL,
    schema_version          INTEGER NOT NULL DEFAULT 1,
    default_identifier_type TEXT    NOT NULL DEFAULT 'USER',
    created_at              INTEGER NOT NULL
);

-- An environment points at its current revision; revisions never change once written.
CREATE TABLE environments (
    id                  INTEGER PRIMARY KEY,
    project_id          INTEGER NOT NULL REFERENCES projects(id),
    key                 TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    position            INTEGER NOT NULL,
    current_revision_id INTEGER,
    created_at          INTEGER NOT NULL,
    UNIQUE (project_id, key)
);

-- Revision ids come from one sequence shared by every environment, so a version names one
-- matrix everywhere (promotion copies a test with the source revision as its version).
CREATE TABLE revision_sequence (
    id INTEGER PRIMARY KEY AUTOINCREMENT
);

CREATE TABLE revisions (
    id             INTEGER PRIMARY KEY,
    environment_id INTEGER NOT NULL REFERENCES environments(id),
    parent_id      INTEGER,
    kind           TEXT    NOT NULL,
    matrix_json    TEXT    NOT NULL,
    test_count     INTEGER NOT NULL,
    author         TEXT    NOT NULL,
    comment        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX revisions_by_environment ON revisions (environment_id, id);

-- Server SDK keys and admin tokens are stored as SHA-256 digests of 256-bit random secrets.
CREATE TABLE sdk_keys (
    id             INTEGER PRIMARY KEY,
    environment_id INTEGER NOT NULL REFERENCES environments(id),
    name           TEXT    NOT NULL,
    digest         BLOB    NOT NULL UNIQUE,
    prefix         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);

CREATE TABLE admin_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    digest     BLOB    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Exposures and tracked events, kept as sent; results are computed from them later.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY,
    environment_id INTEGER NOT NULL REFERENCES environments(id),
    sdk_key_id     INTEGER,
    kind           TEXT    NOT NULL,
    time           INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    identifiers    TEXT    NOT NULL,
    test           TEXT,
    bucket         INTEGER,
    bucket_name    TEXT,
    version        TEXT,
    key            TEXT,
    value          REAL,
    properties     TEXT
);
CREATE INDEX events_by_environment ON events (environment_id, kind, id);
CREATE INDEX events_by_test ON events (environment_id, test, id);
