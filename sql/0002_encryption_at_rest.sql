-- Encryption at rest (README "Security"). No new columns: files.key_id was reserved by 0001.
-- A row with key_id NULL is plaintext: content is the file, sha256 its SHA-256.
-- A row with key_id set is encrypted under that key: content is nonce (12 bytes) || AES-256-GCM
-- ciphertext || tag (16 bytes), authenticated together with (session_id, name, generation_from);
-- sha256 then holds an HMAC-SHA-256 keyed by a subkey of the same key, never a plaintext hash.

ALTER TABLE files
  ADD CONSTRAINT files_key_id_form CHECK (key_id IS NULL OR key_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  ADD CONSTRAINT files_ciphertext_length CHECK (key_id IS NULL OR octet_length(content) >= 28);

COMMENT ON COLUMN files.key_id IS 'NULL: plaintext row. Otherwise the id of the key that encrypted content (fp-… ids are derived from the key).';
COMMENT ON COLUMN files.content IS 'The file (key_id NULL), or nonce || AES-256-GCM ciphertext || tag bound to (session_id, name, generation_from).';
COMMENT ON COLUMN files.sha256 IS 'SHA-256 of the file (key_id NULL), or HMAC-SHA-256 over (session_id, name, file) with a subkey of the key.';
COMMENT ON COLUMN files.size IS 'Size of the file in bytes (before encryption).';
COMMENT ON COLUMN sessions.registered_jid IS 'creds.me.id of the head creds.json, NULL while unpaired; only the masked number when encryption is on.';
