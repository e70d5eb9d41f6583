DROP INDEX inbound_open;
ALTER TABLE inbound_messages DROP COLUMN handled_by;
ALTER TABLE inbound_messages DROP COLUMN handled_at;
ALTER TABLE inbound_messages DROP COLUMN due_by;
