-- fm-store schema, version 5: what a run achieved, beside its status. `outcome` is the
-- pipeline's declared outcome (`escalated`, `auto_remediated`, ...) or the one a cancel asked
-- for (`resolved_before_action`); `outcome_reason` says why in a sentence. A cancel request
-- carries its reason and, optionally, the outcome to record if the run had not acted.
ALTER TABLE fm_runs ADD COLUMN outcome TEXT;
ALTER TABLE fm_runs ADD COLUMN outcome_reason TEXT;
ALTER TABLE fm_runs ADD COLUMN cancel_reason TEXT;
ALTER TABLE fm_runs ADD COLUMN cancel_outcome TEXT;
CREATE INDEX fm_runs_outcome ON fm_runs (outcome, created_at DESC);
