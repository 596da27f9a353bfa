-- One row per evaluation of a session under one ruleset version: the sheet
-- and the session document the rules saw, and the columns the list filters on.
CREATE TABLE evaluations (
    id              INTEGER PRIMARY KEY,
    session_id      TEXT NOT NULL,
    ruleset_version TEXT NOT NULL,
    evaluated_at    TEXT NOT NULL,   -- RFC 3339, UTC
    contact_id      TEXT NOT NULL,
    channel         TEXT NOT NULL,
    queue           TEXT,
    agent_id        TEXT,
    team            TEXT,            -- the agent's hierarchy, level 1 first, joined by '/'
    started_at      TEXT,            -- when the contact began, RFC 3339 UTC
    score           REAL,
    grade           TEXT,
    complete        INTEGER NOT NULL,
    sheet           TEXT NOT NULL,   -- the QA sheet, JSON
    session         TEXT NOT NULL,   -- the session document, JSON
    UNIQUE (session_id, ruleset_version)
);
CREATE INDEX evaluations_started ON evaluations (started_at);
CREATE INDEX evaluations_agent ON evaluations (agent_id, started_at);
CREATE INDEX evaluations_session ON evaluations (session_id, id);

-- One row per item, for "every failed chase item of team B last week".
CREATE TABLE items (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id),
    rule_id       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    score         REAL,
    PRIMARY KEY (evaluation_id, rule_id)
);
CREATE INDEX items_rule_outcome ON items (rule_id, outcome);
