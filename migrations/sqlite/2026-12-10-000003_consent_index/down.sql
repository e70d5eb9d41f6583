DROP INDEX consents_patient_page;
DROP INDEX consents_page;
DROP INDEX consents_consent_id;
ALTER TABLE consents DROP COLUMN categories;
ALTER TABLE consents DROP COLUMN part;
ALTER TABLE consents DROP COLUMN consent_id;
