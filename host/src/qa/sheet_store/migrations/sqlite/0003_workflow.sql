-- What people do with a sheet (issue #19): review, dispute, acknowledge,
-- assignment; what the machine owes them: alerts (an outbox) and the
-- sessions real-time QA is waiting to inspect. The machine's verdicts are
-- never overwritten: a review sets `reviewed_outcome` beside `outcome`.

-- The sheet as people left it: its score and grade from the reviewed
-- outcomes, who it is assigned to, whether its agent acknowledged it.
ALTER TABLE evaluations ADD COLUMN reviewed_score REAL;
ALTER TABLE evaluations ADD COLUMN reviewed_grade TEXT;
ALTER TABLE evaluations ADD COLUMN reviewed_at TEXT;
ALTER TABLE evaluations ADD COLUMN assigned_to TEXT;
ALTER TABLE evaluations ADD COLUMN acknowledged_at TEXT;
CREATE INDEX evaluations_assigned ON evaluations (assigned_to, started_at);

-- An item's outcome after review or an accepted dispute (NULL: the
-- machine's stands); the question of a manual item (rule_id `manual:N`);
-- a shadow rule's item, stored but not scored.
ALTER TABLE items ADD COLUMN reviewed_outcome TEXT;
ALTER TABLE items ADD COLUMN question TEXT;
ALTER TABLE items ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;

-- Every verdict a person gave on an item: reviews, and calibration
-- reviews (independent, not applied to the sheet).
CREATE TABLE reviews (
    id            INTEGER PRIMARY KEY,
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id),
    rule_id       TEXT NOT NULL,
    reviewer      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    comment       TEXT,
    calibration   INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
CREATE INDEX reviews_evaluation ON reviews (evaluation_id, rule_id);

-- An agent's dispute of one item, and how a reviewer resolved it.
CREATE TABLE disputes (
    id                 INTEGER PRIMARY KEY,
    evaluation_id      INTEGER NOT NULL REFERENCES evaluations (id),
    rule_id            TEXT NOT NULL,
    agent              TEXT NOT NULL,
    comment            TEXT NOT NULL,
    -- The reviewer whose verdict is disputed; NULL when it is the machine's.
    against            TEXT,
    state              TEXT NOT NULL,   -- open | accepted | rejected
    opened_at          TEXT NOT NULL,
    resolved_by        TEXT,
    resolution_comment TEXT,
    resolved_at        TEXT
);
CREATE INDEX disputes_evaluation ON disputes (evaluation_id, rule_id);
CREATE INDEX disputes_open ON disputes (state, opened_at);

-- Who changed what, when, from what to what, and why.
CREATE TABLE audit (
    id            INTEGER PRIMARY KEY,
    evaluation_id INTEGER REFERENCES evaluations (id),
    rule_id       TEXT,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    at            TEXT NOT NULL,
    before        TEXT,   -- JSON
    after         TEXT,   -- JSON
    reason        TEXT
);
CREATE INDEX audit_evaluation ON audit (evaluation_id, id);

-- Alerts owed to webhooks: written in the transaction that stores the
-- failing sheet, deleted from the due set only when delivered, so a
-- restart (even kill -9) loses none. One row per (webhook, event).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    webhook         TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    payload         TEXT NOT NULL,   -- the JSON body, signed as stored
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at    TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    UNIQUE (webhook, event_id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Sessions real-time QA is waiting to inspect (legs arrived, analysis not
-- yet): kept here so a restart resumes them. `owner` is the host holding
-- the session (`<hostname>:<sink>`, as the dedup store names hosts): a
-- host resumes only its own. `version` counts the session's changes, so a
-- late write never replaces a newer state, nor removes one.
CREATE TABLE pending_sessions (
    session_id    TEXT PRIMARY KEY,
    state         TEXT NOT NULL,   -- JSON, as real-time QA keeps it
    first_seen_at TEXT NOT NULL,
    due_at        TEXT NOT NULL,
    owner         TEXT NOT NULL DEFAULT '',
    version       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pending_sessions_due ON pending_sessions (due_at);
CREATE INDEX pending_sessions_owner ON pending_sessions (owner);
