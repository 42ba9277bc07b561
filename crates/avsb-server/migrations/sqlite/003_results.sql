-- Experiment results: what an exposure says about how its bucket was reached, batches stored
-- once, SDK keys that record the exposures of remote evaluation, and metrics.

-- How the exposure's bucket was reached (`split`, `targeted`, `forced`, `default`), the
-- allocation's 0-based index, and the context values named as dimensions (JSON object text).
ALTER TABLE events ADD COLUMN reason TEXT;
ALTER TABLE events ADD COLUMN allocation INTEGER;
ALTER TABLE events ADD COLUMN dimensions TEXT;

-- Tracked events by key, for the metrics that count them.
CREATE INDEX events_by_key ON events (environment_id, key, id) WHERE kind = 'track';

-- Every batch id stored, with how many events it held: a retried batch is answered again
-- without storing its events twice.
CREATE TABLE event_batches (
    environment_id INTEGER NOT NULL,
    batch_id       TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    accepted       INTEGER NOT NULL,
    PRIMARY KEY (environment_id, batch_id)
) WITHOUT ROWID;

-- The server records an exposure for each bucket its Pipet and OFREP answers hand out with
-- this key (for applications that evaluate remotely).
ALTER TABLE sdk_keys ADD COLUMN record_exposures INTEGER NOT NULL DEFAULT 0;

-- A project's metrics: the definition is JSON (event, type, direction, window, capping...).
CREATE TABLE metrics (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    key         TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (project_id, key)
);
