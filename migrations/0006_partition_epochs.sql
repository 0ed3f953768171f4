-- Fencing tokens for partition leases. A process that takes a partition's advisory lock bumps
-- its epoch here before it consumes anything; every commit of a message consumed under a lease
-- carries the epoch it was consumed under, and the commit statement writes nothing when that is
-- no longer the partition's epoch. A process whose lease session ended without its noticing
-- (for a moment, or across a network partition) can then apply nothing behind the new owner's
-- back, so per-actor order holds across a takeover.
CREATE TABLE partition_epochs (
  partition integer PRIMARY KEY,
  epoch     bigint  NOT NULL
);
