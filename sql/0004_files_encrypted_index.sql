-- Every backup asks whether a session holds encrypted rows when it has no encryption marker (see
-- 0003): for the common plaintext session that EXISTS would otherwise read all of the session's rows,
-- every backup. This partial index is empty for plaintext sessions, so the answer costs one probe.
CREATE INDEX files_encrypted ON files (session_id) WHERE key_id IS NOT NULL;
