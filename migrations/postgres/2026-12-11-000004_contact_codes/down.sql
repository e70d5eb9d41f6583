DROP TABLE contact_codes;
