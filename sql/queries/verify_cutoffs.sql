-- Cutoffs with a run that committed its grants: the ones that can have reports.
SELECT DISTINCT as_of FROM recon_runs WHERE grants_committed_at IS NOT NULL ORDER BY as_of;
