-- Session lifecycle (SPEC "Session lifecycle"): a logout the keeper saw happen (the bot wiped or unpaired its
-- paired login while watched) or an operator's `logout` is recorded on the session, so that `restore` writes no
-- login until the bot pairs again, and the logged-out login is not stored again by accident.
-- logged_out_identity: the fingerprint of the logged-out login (its phone number and identity key, hashed),
-- so that a backup of that same login afterwards is refused while a new pairing is stored.
-- pending_identity_key: the guard refused unpaired creds over a paired login (a logout it did not see); their
-- identity key survives the QR scan, so the login they become is a re-pairing, stored, not another bot's login.

ALTER TABLE sessions
  ADD COLUMN logged_out_generation bigint,
  ADD COLUMN logged_out_at timestamptz,
  ADD COLUMN logged_out_identity text,
  ADD COLUMN logged_out_by text CHECK (logged_out_by IN ('seen', 'hand')),
  ADD COLUMN pending_identity_key text;

COMMENT ON COLUMN sessions.logged_out_generation IS 'The logout generation while the session is logged out; NULL when it is not.';
COMMENT ON COLUMN sessions.logged_out_at IS 'When the session was logged out (the database clock); NULL when it is not logged out.';
COMMENT ON COLUMN sessions.logged_out_identity IS 'Fingerprint (sha256 hex) of the logged-out login; NULL when it is not logged out or the login was unknown.';
COMMENT ON COLUMN sessions.logged_out_by IS 'seen: the keeper saw the bot drop its login (that login coming back ends the logout); hand: the logout command or API (it stays refused).';
COMMENT ON COLUMN sessions.pending_identity_key IS 'Identity key fingerprint of unpaired creds the guard refused over a paired login: once paired, that login is stored.';
