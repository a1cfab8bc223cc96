DROP TABLE failure_families;
