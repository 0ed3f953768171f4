-- The (type, status) index could serve `type = $1` alone, so on a still-empty actors table the
-- planner costed it the same as the primary key for the point load `type = $1 AND id = $2` and
-- took it. A prepared statement keeps that generic plan until an ANALYZE replans it (never,
-- where autovacuum is off; about a minute after start where it is on), and meanwhile every
-- hydration reads all actors of its type. Status first: the same searches (`status = ` or
-- `= ANY(..)` with a type) use it, and a lookup by type and id never can.
DROP INDEX IF EXISTS actors_type_status;
CREATE INDEX IF NOT EXISTS actors_status_type ON actors (status, type);
