-- Issue 11 F5b: a Consent is found by its own id through an index, and a
-- search pages in SQL, so a request opens (decrypts) only the Consents it
-- returns. consent_id is the FHIR Consent's id (a Consent with several
-- channels × purposes is several rows, id-0, id-1, …: part is the row's
-- place), categories its category codes as |code|code| for the search.
ALTER TABLE consents ADD COLUMN consent_id TEXT NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consents ADD COLUMN categories TEXT;
UPDATE consents SET consent_id = id;
-- Rows written as id-N beside an id-0 are the parts of Consent id.
UPDATE consents
   SET consent_id = substr(id, 1, length(rtrim(id, '0123456789')) - 1),
       part = CAST(substr(id, length(rtrim(id, '0123456789')) + 1) AS INTEGER)
 WHERE rtrim(id, '0123456789') <> id
   AND rtrim(id, '0123456789') LIKE '%-'
   AND EXISTS (SELECT 1 FROM consents o
                WHERE o.id = substr(consents.id, 1, length(rtrim(consents.id, '0123456789')) - 1) || '-0');
-- Herald's own Consents carry LOINC 59284-0; those the API or the EHR import
-- recorded before stay NULL, and the search reads their category from the
-- Consent itself.
UPDATE consents SET categories = '|59284-0|' WHERE source NOT IN ('api', 'ehr-import');
CREATE INDEX consents_consent_id ON consents (consent_id, part);
CREATE INDEX consents_page ON consents (part, recorded_at, id);
CREATE INDEX consents_patient_page ON consents (patient_fhir_id, part, recorded_at, id);
