DROP INDEX patients_alt_phone;
ALTER TABLE patients DROP COLUMN alt_phone_index;
ALTER TABLE patients DROP COLUMN alt_phone_enc;
DROP INDEX ehr_writes_due;
DROP TABLE ehr_writes;
