DROP TABLE circuit_notices;
