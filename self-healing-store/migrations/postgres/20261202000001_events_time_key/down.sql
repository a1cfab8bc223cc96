ALTER TABLE healing_events ALTER COLUMN id SET CACHE 1;
ALTER TABLE healing_events DROP CONSTRAINT healing_events_pkey;
ALTER TABLE healing_events ADD CONSTRAINT healing_events_pkey PRIMARY KEY (id);
CREATE INDEX healing_events_time ON healing_events (time_us, id);
