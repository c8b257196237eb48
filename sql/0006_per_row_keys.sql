-- Per-row encryption keys (docs/security.md "Encryption at rest"). Rows written before this keep their
-- format and stay readable; nothing is rewritten here (rekey moves them to the new format).
-- cipher_version says how an encrypted row's content is sealed:
--   NULL (format 1, every row written before this column existed): nonce (12 bytes) || AES-256-GCM
--     ciphertext || tag (16 bytes) under the one content subkey of key key_id, shared by all sessions;
--   2 (format 2): salt (16 random bytes) || nonce (12) || ciphertext || tag (16), where the AES-256 key is
--     HKDF-SHA-256 of a subkey of key key_id, with the salt as salt and the session id in the info: a key
--     per row, so GCM's limit of 2^32 random-nonce encryptions per key no longer applies.
-- Both bind the ciphertext to (session_id, name, generation_from) as additional data. Adding a nullable
-- column without a default rewrites no row; the CHECK only reads the table once.

ALTER TABLE files
  ADD COLUMN cipher_version smallint,
  ADD CONSTRAINT files_cipher_version CHECK (
    cipher_version IS NULL OR (key_id IS NOT NULL AND cipher_version >= 2 AND octet_length(content) >= 44)
  );

COMMENT ON COLUMN files.cipher_version IS
  'NULL: plaintext (key_id NULL) or format 1 (one content key per key_id). 2: a key per row from HKDF(salt, session_id).';
COMMENT ON COLUMN files.content IS
  'The file (key_id NULL); nonce || AES-256-GCM ciphertext || tag (format 1); salt || nonce || ciphertext || tag (format 2). '
  'Bound to (session_id, name, generation_from).';
