-- Interlock schema, migration 1. Times are unix seconds (REAL); JSON columns are TEXT.
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    version         TEXT NOT NULL,
    state           TEXT NOT NULL,
    correlation_id  TEXT NOT NULL,
    context         TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at      REAL NOT NULL,
    started_at      REAL,
    completed_at    REAL,
    summary         TEXT
);
CREATE INDEX tasks_by_state ON tasks (state, created_at);
CREATE INDEX tasks_by_created ON tasks (created_at);

CREATE TABLE steps (
    id               INTEGER PRIMARY KEY,
    task_id          TEXT NOT NULL REFERENCES tasks (id),
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    handler          TEXT NOT NULL,
    depends_on       TEXT NOT NULL,      -- JSON list of step names
    deps_remaining   INTEGER NOT NULL,   -- dependencies not yet complete / resolved
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    retry            TEXT NOT NULL,      -- JSON RetryPolicy in force for this task
    timeout_s        REAL,
    handler_config   TEXT NOT NULL,
    results          TEXT,
    last_error       TEXT,
    next_attempt_at  REAL,
    started_at       REAL,
    completed_at     REAL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    UNIQUE (task_id, name)
);
CREATE INDEX steps_claimable ON steps (next_attempt_at)
    WHERE state IN ('pending', 'waiting_for_retry') AND deps_remaining = 0;
CREATE INDEX steps_leased ON steps (lease_expires_at) WHERE state = 'in_progress';

CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY,
    task_id     TEXT NOT NULL,
    task_name   TEXT NOT NULL,
    step_name   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL NOT NULL,
    duration_s  REAL NOT NULL,
    outcome     TEXT NOT NULL,           -- completed | failed | lost
    error       TEXT
);
CREATE INDEX attempts_by_task ON attempts (task_id, id);
CREATE INDEX attempts_by_step ON attempts (task_name, step_name);

CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at             REAL NOT NULL,
    type           TEXT NOT NULL,
    task_id        TEXT,
    step_name      TEXT,
    correlation_id TEXT,
    attempt        INTEGER,
    data           TEXT NOT NULL
);
CREATE INDEX events_by_task ON events (task_id, seq);

-- Circuit breakers, one row per service (used by the HTTP step adapter).
CREATE TABLE breakers (
    service     TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    successes   INTEGER NOT NULL DEFAULT 0,
    opened_at   REAL,
    updated_at  REAL NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}'
);
