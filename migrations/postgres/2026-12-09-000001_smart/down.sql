DROP TABLE smart_sessions;
