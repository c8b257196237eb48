-- With --sessions-dir, a folder whose name is no session id is kept under a mapped id (src/names.ts,
-- docs/many-sessions.md "Folder names"). Its original name is stored here so that `restore --sessions-dir`
-- recreates it exactly and status shows which folder the id belongs to. NULL: the folder is the id minus
-- the prefix (every session kept before this column existed), or the session has no folder.
ALTER TABLE sessions ADD COLUMN folder text;
