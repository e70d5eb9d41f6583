-- Issue 5: texts a person must read (unsure free text, cancel requests,
-- confirmations until they are written back) wait in a queue with a deadline.
ALTER TABLE inbound_messages ADD COLUMN due_by TIMESTAMP;
ALTER TABLE inbound_messages ADD COLUMN handled_at TIMESTAMP;
ALTER TABLE inbound_messages ADD COLUMN handled_by TEXT;
CREATE INDEX inbound_open ON inbound_messages (handled_at, due_by);
