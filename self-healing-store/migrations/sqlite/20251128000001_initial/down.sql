DROP TABLE store_batches;
DROP TABLE notifications;
DROP TABLE call_sites;
DROP TABLE health_checks;
DROP TABLE healing_patterns;
DROP TABLE healing_events;
