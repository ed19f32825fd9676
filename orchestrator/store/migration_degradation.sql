-- Interlock schema: non-critical steps (graceful degradation).
-- on_failure: 'fail' (critical: failing for good fails the task) or 'continue' (the step ends
-- 'degraded' and its dependents run with fallback_results, JSON or NULL for none).
ALTER TABLE steps ADD COLUMN on_failure TEXT NOT NULL DEFAULT 'fail';
ALTER TABLE steps ADD COLUMN fallback_results TEXT;
