-- Events are keyed by (time_us, id): the order every list, summary and retention reads them in.
-- One index instead of two (the primary key on id and the time index) on the writer's path,
-- where index inserts took a third of the server's time. Ids stay unique: the writer takes them
-- from the identity sequence. Readers that know an event's id know its time too (postings list
-- both), so nothing looks an event up by id alone.
ALTER TABLE healing_events DROP CONSTRAINT healing_events_pkey;
DROP INDEX healing_events_time;
ALTER TABLE healing_events ADD CONSTRAINT healing_events_pkey PRIMARY KEY (time_us, id);
-- Each connection reserves ids 4,096 at a time (a writer takes one per event): ids then come
-- from memory instead of a locked, logged sequence page. A closed connection leaves a gap, and
-- ids of concurrent writers interleave by block; lists order by (time_us, id) either way.
ALTER TABLE healing_events ALTER COLUMN id SET CACHE 4096;
