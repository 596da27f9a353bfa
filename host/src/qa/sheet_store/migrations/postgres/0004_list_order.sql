-- The list at a month's scale on PostgreSQL (`cargo bench --bench
-- sheet_store` with CALLQA_BENCH_STORE=postgres://…): a team's week walked
-- newest first straight from an index that also holds what the
-- latest-evaluation check reads, so the scan stops at the page's 100th
-- match instead of fetching every row of the week from the heap and
-- sorting (p95 323 ms → see docs/performance.md). Replaces the indexes of
-- 0002 that did not hold the order's tie-breaker.
CREATE INDEX IF NOT EXISTS evaluations_team_order ON evaluations (team, started_at, id) INCLUDE (session_id);
CREATE INDEX IF NOT EXISTS evaluations_started_order ON evaluations (started_at, id) INCLUDE (team, session_id);
DROP INDEX IF EXISTS evaluations_team;
DROP INDEX IF EXISTS evaluations_started_team;
