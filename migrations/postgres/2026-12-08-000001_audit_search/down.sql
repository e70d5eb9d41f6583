ALTER TABLE audit_head DROP COLUMN prev_hash;
DROP INDEX audit_verifications_checked;
DROP TABLE audit_verifications;
DROP INDEX audit_events_failures_recorded;
DROP INDEX audit_events_subtype_recorded;
DROP INDEX audit_events_entity_recorded;
DROP INDEX audit_events_agent_recorded;
