-- Reads of a run's aggregates go by run id (the primary keys' prefix); the secondary indexes only
-- slowed the nightly copy of the aggregates.

-- +goose Up
DROP INDEX run_referrals_referrer;
DROP INDEX run_templates_creator;

-- +goose Down
CREATE INDEX run_referrals_referrer ON run_referrals (run_id, referrer_id);
CREATE INDEX run_templates_creator ON run_templates (run_id, creator_id);
