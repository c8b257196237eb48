-- Protection (SPEC "Protection"): what the session's writer last measured — whether everything in its
-- directory is stored in the head — so that `status` in another process can show it. Written by the lease
-- holder when the state changes; read as "not watched" while no lease is live (no keeper measures it).
-- protection_reasons: NULL never reported; '{}' protected; else the short words (lagging, unreadable…).

ALTER TABLE sessions
  ADD COLUMN protection_reasons text[],
  ADD COLUMN protection_since timestamptz;

COMMENT ON COLUMN sessions.protection_reasons IS 'Why the writer last found the session unprotected; empty when protected, NULL when never reported.';
COMMENT ON COLUMN sessions.protection_since IS 'Since when it has not been protected (the writer''s clock); NULL when protected.';
