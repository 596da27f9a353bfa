-- One row per evaluation of a session under one ruleset version: the sheet
-- and the session document the rules saw, and the columns the list filters
-- on. The same schema as SQLite's; instants are RFC 3339 UTC text, which
-- sorts as time does and reads the same from both backends.
CREATE TABLE evaluations (
    id              BIGSERIAL PRIMARY KEY,
    session_id      TEXT NOT NULL,
    ruleset_version TEXT NOT NULL,
    evaluated_at    TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    channel         TEXT NOT NULL,
    queue           TEXT,
    agent_id        TEXT,
    team            TEXT,
    started_at      TEXT,
    score           DOUBLE PRECISION,
    grade           TEXT,
    complete        BIGINT NOT NULL,
    sheet           TEXT NOT NULL,
    session         TEXT NOT NULL,
    UNIQUE (session_id, ruleset_version)
);
CREATE INDEX evaluations_agent ON evaluations (agent_id, started_at);

CREATE TABLE items (
    evaluation_id BIGINT NOT NULL REFERENCES evaluations (id),
    rule_id       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    score         DOUBLE PRECISION,
    PRIMARY KEY (evaluation_id, rule_id)
);
