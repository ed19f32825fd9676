-- Interlock schema on PostgreSQL, migration 1: the tables of SQLite's schema.sql, in
-- PostgreSQL's types. Times are unix seconds (DOUBLE PRECISION); JSON columns are TEXT, read
-- and written by the same codec as on SQLite. Migrations 2 and 3 are SQLite's, unchanged.
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    version         TEXT NOT NULL,
    state           TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    context         TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at      DOUBLE PRECISION NOT NULL,
    started_at      DOUBLE PRECISION,
    completed_at    DOUBLE PRECISION,
    summary         TEXT,
    created_order   BIGSERIAL NOT NULL  -- ties of created_at in creation order (SQLite's rowid)
);
CREATE INDEX tasks_by_state ON tasks (state, created_at);
CREATE INDEX tasks_by_created ON tasks (created_at, created_order);

CREATE TABLE steps (
    id               BIGSERIAL PRIMARY KEY,
    task_id          TEXT NOT NULL REFERENCES tasks (id),
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    handler          TEXT NOT NULL,
    depends_on       TEXT NOT NULL,
    deps_remaining   INTEGER NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    retry            TEXT NOT NULL,
    timeout_s        DOUBLE PRECISION,
    handler_config   TEXT NOT NULL,
    results          TEXT,
    last_error       TEXT,
    next_attempt_at  DOUBLE PRECISION,
    started_at       DOUBLE PRECISION,
    completed_at     DOUBLE PRECISION,
    lease_owner      TEXT,
    lease_expires_at DOUBLE PRECISION,
    UNIQUE (task_id, name)
);
CREATE INDEX steps_claimable ON steps (next_attempt_at)
    WHERE state IN ('pending', 'waiting_for_retry') AND deps_remaining = 0;
CREATE INDEX steps_leased ON steps (lease_expires_at) WHERE state = 'in_progress';
-- No index on (task_id, position): UNIQUE (task_id, name) finds a task's steps already, and every
-- step update that changes its state is a non-HOT update that writes into every index of the
-- table (index inserts were two thirds of the WAL records, docs/scaling.md).

CREATE TABLE attempts (
    id          BIGSERIAL PRIMARY KEY,
    task_id     TEXT NOT NULL,
    task_name   TEXT NOT NULL,
    step_name   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    ended_at    DOUBLE PRECISION NOT NULL,
    duration_s  DOUBLE PRECISION NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX attempts_by_task ON attempts (task_id, id);
CREATE INDEX attempts_by_step ON attempts (task_name, step_name);

-- Event numbers come from one counter row, taken last in a writing transaction and held until
-- it commits: transactions that write events commit in the order of their numbers, so a reader
-- that has seen event N has seen every event before it (a sequence would hand out numbers in
-- one order and let their transactions commit in another).
CREATE TABLE events (
    seq            BIGINT PRIMARY KEY,
    at             DOUBLE PRECISION NOT NULL,
    type           TEXT NOT NULL,
    task_id        TEXT,
    step_name      TEXT,
    correlation_id TEXT,
    attempt        INTEGER,
    data           TEXT NOT NULL
);
CREATE INDEX events_by_task ON events (task_id, seq);
CREATE TABLE event_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO event_counter (id, last) VALUES (1, 0);

CREATE TABLE breakers (
    service     TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    successes   INTEGER NOT NULL DEFAULT 0,
    opened_at   DOUBLE PRECISION,
    updated_at  DOUBLE PRECISION NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}'
);
