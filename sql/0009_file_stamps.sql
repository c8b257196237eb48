-- A fleet that starts from what is stored (docs/many-sessions.md "Start-up"): each current file version
-- records the metadata of the file its content was read from — device, inode, size, modification and change
-- times in ns ("dev:ino:size:mtime_ns:ctime_ns", git's index rule) — so that a restarted keeper compares
-- its directory with the head by metadata and reads only what differs. NULL: not known (the read was within
-- the racy window of a write, an API write or import, or a version stored before this column existed).

ALTER TABLE files ADD COLUMN stamp text;

COMMENT ON COLUMN files.stamp IS 'Metadata of the file this version was read from (dev:ino:size:mtime_ns:ctime_ns); NULL when not known.';
