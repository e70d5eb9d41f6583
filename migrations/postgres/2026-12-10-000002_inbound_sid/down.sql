DROP INDEX inbound_message_ref;
