-- The last results computed per test, environment and settings, so the first request after a
-- restart answers at once (marked stale while a recomputation catches up with newer events).
CREATE TABLE result_snapshots (
    environment_id INTEGER NOT NULL,
    test           TEXT    NOT NULL,
    query_key      TEXT    NOT NULL,
    last_event_id  INTEGER NOT NULL,
    computed_at    INTEGER NOT NULL,
    results        TEXT    NOT NULL,
    PRIMARY KEY (environment_id, test, query_key)
) WITHOUT ROWID;
