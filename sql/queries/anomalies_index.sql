CREATE UNIQUE INDEX ON run_anomalies (id);
