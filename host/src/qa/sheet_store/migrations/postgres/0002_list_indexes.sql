-- The list's common filters (a team, a week, a failed rule); see SQLite's 0002.
CREATE INDEX evaluations_team ON evaluations (team, started_at);
CREATE INDEX evaluations_started_team ON evaluations (started_at, team);
-- "The latest evaluation of this session": PostgreSQL text comparisons
-- under a non-C collation cannot use the unique key for LIKE, but can for =.
CREATE INDEX evaluations_session ON evaluations (session_id, id);
