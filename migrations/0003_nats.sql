-- NATS transport: dead letters are announced on `<prefix>.dlq.<reason>` once each, and a message
-- consumed from JetStream is dead-lettered at most once while it is open (redelivery after a
-- crash between recording and `term()` must not record it twice).

ALTER TABLE dead_letters ADD COLUMN announced_at timestamptz;
CREATE INDEX dead_letters_unannounced ON dead_letters (id) WHERE announced_at IS NULL;
CREATE UNIQUE INDEX dead_letters_nats_once ON dead_letters (subject, message_id)
  WHERE origin = 'nats' AND replayed_at IS NULL;
