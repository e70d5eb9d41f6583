-- Issue 11 F8a: inbound texts are deduplicated on the provider's signed
-- message id, never on the unsigned idempotency header; rows recorded under
-- such a header before are found by (provider, message_ref).
CREATE INDEX inbound_message_ref ON inbound_messages (provider, message_ref);
