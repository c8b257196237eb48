-- Sessions, generations and temporally versioned files (DESIGN.md "Storage model").
-- Runs with search_path set to the keeper's schema, so names here are unqualified.

CREATE TABLE sessions (
  session_id        text PRIMARY KEY,
  head_generation   bigint NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  -- creds.me.id of the head creds.json; NULL while the session is not paired. Masked in all output.
  registered_jid    text,
  -- Single-writer lease with a fencing token that grows at every acquisition.
  lease_owner       text,
  lease_token       bigint NOT NULL DEFAULT 0,
  lease_expires_at  timestamptz
);

CREATE TABLE generations (
  session_id     text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
  generation     bigint NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  reason         text NOT NULL,
  files_changed  integer NOT NULL,
  files_deleted  integer NOT NULL,
  total_files    integer NOT NULL,
  total_bytes    bigint NOT NULL,
  PRIMARY KEY (session_id, generation)
);

-- A row is visible at generation G when generation_from <= G < generation_to (NULL: still current).
CREATE TABLE files (
  session_id       text NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
  name             text NOT NULL,
  generation_from  bigint NOT NULL,
  generation_to    bigint,
  sha256           bytea NOT NULL,
  size             integer NOT NULL,
  content          bytea NOT NULL,
  key_id           text,
  PRIMARY KEY (session_id, name, generation_from),
  CHECK (generation_to IS NULL OR generation_to > generation_from)
);

CREATE UNIQUE INDEX files_current ON files (session_id, name) WHERE generation_to IS NULL;
CREATE INDEX files_closed ON files (session_id, generation_to) WHERE generation_to IS NOT NULL;
