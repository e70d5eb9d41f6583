-- The repaired times of future-dated rows stay repaired.
ALTER TABLE consents DROP COLUMN future_dated;
ALTER TABLE consents DROP COLUMN stated_at;
