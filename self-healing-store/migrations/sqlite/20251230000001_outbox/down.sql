ALTER TABLE healing_events DROP COLUMN call_key;
DROP TABLE outbox;
