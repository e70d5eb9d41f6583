-- Issue 6 §5: auditor search. Every search is ordered by (recorded, seq) and
-- paged by keyset, so each index ends in (recorded, seq): an equality on the
-- leading column then yields the rows already in page order, and a page reads
-- about _count rows whatever the size of the log (no sort, no COUNT).
--
-- On SQLite, which plans without statistics, db::audit_store::search drives
-- each query from ONE index chosen by a fixed priority, patient > entity >
-- agent > subtype > outcome (failures) > date alone, and writes the other
-- filters as expressions no index covers, so the planner cannot wander to a
-- less selective index. PostgreSQL chooses among the same indexes by its
-- statistics. Existing: (patient_ref, recorded, seq) and (recorded, seq).
-- Added here:
--   agent:   "what did this user (or Herald, or anonymous callers) do".
--   entity:  "who touched Appointment/123"; partial, most events name no
--            data entity by reference, so those rows cost nothing.
--   subtype: rare interactions (update, vread, operation, AuthZ-Consent ...)
--            without scanning the whole date window.
--   outcome: failures only (partial, outcome <> '0'): they are rare and are
--            what an investigation asks for; success is most of the log and is
--            served as well by the date index. The search adds the literal term
--            outcome <> '0' so both planners can prove the partial index applies.
-- Deliberately no index on type (three codes, each a large share of the log:
-- the date index with a filter fills a page quickly) nor on action (five codes,
-- same reason). Each index costs every append a B-tree insert; these four are
-- the ones an investigation needs.
CREATE INDEX audit_events_agent_recorded ON audit_events (agent_who, recorded, seq);
CREATE INDEX audit_events_entity_recorded ON audit_events (entity_ref, recorded, seq)
    WHERE entity_ref IS NOT NULL;
CREATE INDEX audit_events_subtype_recorded ON audit_events (subtype_code, recorded, seq);
CREATE INDEX audit_events_failures_recorded ON audit_events (outcome, recorded, seq)
    WHERE outcome <> '0';

-- Results of full chain verifications (herald audit verify, and the periodic
-- check in herald serve). The /audit page shows the newest one and checks the
-- records appended since in place, so a page view never walks a million rows.
-- Insert-only; a row is a report of a past check, the chain is the evidence.
CREATE TABLE audit_verifications (
    id TEXT PRIMARY KEY NOT NULL,
    checked_at TIMESTAMP NOT NULL,
    -- The last record that chained (0 when none did).
    through_seq BIGINT NOT NULL,
    through_hash TEXT NOT NULL,
    -- Set when the chain is broken: where, and what was found.
    broken_seq BIGINT,
    problem TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX audit_verifications_checked ON audit_verifications (checked_at);

-- On PostgreSQL a one-record append (every read's own AuditEvent) is a single
-- statement that moves the head and inserts the row (db::audit_store::
-- append_one); the head keeps the hash it moved from, so that statement can
-- give it to the new row as prev_hash. Scratch only: the chain is in the rows.
ALTER TABLE audit_head ADD COLUMN prev_hash TEXT;
