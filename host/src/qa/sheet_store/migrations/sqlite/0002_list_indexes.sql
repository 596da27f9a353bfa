-- What the list's common filters (a team, a week, a failed rule) need at a
-- month's scale (1,000,000 evaluations, `cargo bench --bench sheet_store`):
-- the candidates walked in an index that holds the team and the start, so
-- rows are read only for the matches; and one lookup per item check.

-- Items keyed by their evaluation (no rowid): "has this evaluation a failed
-- item of rule R" is one lookup in one B-tree, where it was the key index
-- then the table; a write updates one B-tree instead of three (the table,
-- its key and `items_rule_outcome`, which no query used).
CREATE TABLE items_by_evaluation (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id),
    rule_id       TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    score         REAL,
    PRIMARY KEY (evaluation_id, rule_id)
) WITHOUT ROWID;
INSERT INTO items_by_evaluation (evaluation_id, rule_id, outcome, score)
    SELECT evaluation_id, rule_id, outcome, score FROM items ORDER BY evaluation_id, rule_id;
DROP TABLE items;
ALTER TABLE items_by_evaluation RENAME TO items;

-- One team's week, newest first, straight from the index; and the distinct
-- hierarchy paths, read by skipping through it.
CREATE INDEX evaluations_team ON evaluations (team, started_at);
-- A week across several paths (a department, a site): walked by start with
-- the team beside it. Replaces the index on the start alone.
CREATE INDEX evaluations_started_team ON evaluations (started_at, team);
DROP INDEX evaluations_started;
-- The unique key (session_id, ruleset_version) serves the latest-evaluation
-- lookup and the fetch by session as well.
DROP INDEX evaluations_session;
