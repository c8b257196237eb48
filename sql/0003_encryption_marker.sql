-- The encryption marker (README "Security"): from which generation on a session is encrypted, so a
-- plaintext row where none can legitimately be is refused instead of trusted by its unkeyed sha256.
-- encrypted_since = M: every row visible at generation M or later is encrypted; a plaintext row is
-- pre-encryption history only when generation_to <= M. encrypted_since_mac is HMAC-SHA-256, under the
-- change-detection subkey of key encrypted_since_key_id, over (session_id, M): a database writer cannot
-- move, copy or invent it. NULL everywhere: the session has never been written encrypted.

ALTER TABLE sessions
  ADD COLUMN encrypted_since bigint,
  ADD COLUMN encrypted_since_key_id text,
  ADD COLUMN encrypted_since_mac bytea;

COMMENT ON COLUMN sessions.encrypted_since IS 'First generation written encrypted (rekey lowers it to 1); plaintext rows visible at or after it are refused.';
COMMENT ON COLUMN sessions.encrypted_since_key_id IS 'Key whose hash subkey computed encrypted_since_mac.';
COMMENT ON COLUMN sessions.encrypted_since_mac IS 'HMAC-SHA-256 over (session_id, encrypted_since) with that subkey.';
