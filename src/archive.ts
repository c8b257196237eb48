// tar export and import of a generation. An archive is untrusted input: every entry is checked
// and the first bad one rejects the whole archive, so nothing of it is stored.
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { IntegrityError } from './errors.js';
import { MAX_INCOMING_FILES, SnapshotBuilder } from './incoming.js';
import { invalidNameReason, quoteName } from './names.js';
import { MAX_FILE_BYTES, type Snapshot } from './snapshot.js';

/** Most entries an imported archive may have: the same bound as every incoming generation. */
export const MAX_ARCHIVE_ENTRIES = MAX_INCOMING_FILES;
/** Largest archive read, bytes (compressed or not). */
export const MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024;

export interface ArchiveFile {
  name: string;
  content: Buffer;
}

/** A tar with one regular file per entry, mode 0600, stamped with `mtime`. */
export async function packArchive(files: readonly ArchiveFile[], mtime: Date): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const file of files) {
    pack.entry({ name: file.name, size: file.content.length, mode: 0o600, mtime, type: 'file' }, file.content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Reads all of `input` (up to MAX_ARCHIVE_BYTES) and parses it as a (optionally gzipped) tar. */
export async function readArchive(input: Readable): Promise<Snapshot> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of input) {
    total += (chunk as Buffer).length;
    if (total > MAX_ARCHIVE_BYTES) throw new IntegrityError(`the archive is over ${MAX_ARCHIVE_BYTES} bytes; nothing was stored`);
    chunks.push(chunk as Buffer);
  }
  return parseArchive(Buffer.concat(chunks));
}

/** Size of a tar block, bytes: headers and contents are padded to it. */
const TAR_BLOCK = 512;
/** The end-of-archive marker: two zero blocks (POSIX ustar). */
const TAR_END_MARKER = 2 * TAR_BLOCK;

/**
 * Parses a tar (or .tar.gz) into a snapshot; throws IntegrityError naming the first bad entry, or what
 * makes the archive incomplete. An archive is whole or nothing: a gzip stream must end with its trailer
 * (CRC and length checked) and a tar must end with its end-of-archive marker, so an archive cut anywhere
 * (even exactly at an entry boundary, where every entry read looks fine) is refused instead of being
 * taken for a directory whose other files were deleted. Zero bytes after the end (tar's record padding)
 * are accepted; anything else after it is refused.
 */
export async function parseArchive(data: Buffer): Promise<Snapshot> {
  if (data.length === 0)
    throw new IntegrityError('the archive is empty: expected a tar made by `baileys-keeper export`; nothing was stored');
  const tarData = data[0] === 0x1f && data[1] === 0x8b ? gunzipWhole(data) : data;
  const builder = new SnapshotBuilder();
  const extract = tar.extract();
  const source = Readable.from([tarData]);
  source.pipe(extract);
  let entries = 0;
  // Where the last entry's padded contents end: the end-of-archive marker must start there.
  let entriesEnd = 0;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const reject = (why: string): never => {
        throw new IntegrityError(`archive entry ${quoteName(header.name)} is rejected: ${why}; nothing was stored`);
      };
      if (++entries > MAX_ARCHIVE_ENTRIES) reject(`the archive has more than ${MAX_ARCHIVE_ENTRIES} entries`);
      // tar-stream skips zero blocks and reads on, so an entry after an end-of-archive marker (a second
      // archive appended, or junk that parses) would be taken in silently: refuse a zero block before it.
      const headerAt = entryHeaderOffset(entry);
      if (zeroBlockBetween(tarData, entriesEnd, headerAt))
        reject('it comes after an end-of-archive marker (zero blocks); the archive is two archives or damaged');
      entriesEnd = headerAt + TAR_BLOCK + padded(header.size ?? 0);
      const name = header.name.startsWith('./') ? header.name.slice(2) : header.name;
      if (header.type === 'directory' && (name === '' || name === '.' || name === './')) {
        entry.resume();
        continue;
      }
      if (header.type !== 'file' && header.type !== 'contiguous-file')
        reject(`it is a ${header.type ?? 'non-file'} entry; only regular files are accepted`);
      if (header.name.startsWith('/')) reject('it is an absolute path');
      const bad = invalidNameReason(name);
      if (bad) reject(bad);
      // Checked from the header first, so an oversize entry is refused before it is read.
      if ((header.size ?? 0) > MAX_FILE_BYTES) reject(`it is ${header.size} bytes, over the ${MAX_FILE_BYTES}-byte limit`);
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      const problem = builder.add(name, Buffer.concat(parts));
      if (problem) reject(problem);
    }
  } catch (error) {
    source.destroy();
    if (error instanceof IntegrityError) throw error;
    const cut = /unexpected end/i.test((error as Error).message);
    // A whole archive followed by less than a block of junk also ends "unexpectedly" for tar-stream.
    if (cut && hasEndMarker(tarData, entriesEnd)) checkEndOfArchive(tarData, entriesEnd, entries);
    throw new IntegrityError(
      cut
        ? `the archive is cut short: its last entry is incomplete (${tarData.length} bytes of tar); ` +
            'nothing was stored. Export it again or copy the whole file'
        : `the input is not a valid tar archive (${(error as Error).message}); nothing was stored`,
      { cause: error },
    );
  }
  checkEndOfArchive(tarData, entriesEnd, entries);
  return builder.snapshot;
}

/** Decompresses a whole gzip stream; a cut, corrupt or junk-followed stream is an IntegrityError. */
function gunzipWhole(data: Buffer): Buffer {
  let result: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    // info: the engine tells how many compressed bytes made up the stream(s), to find what follows them.
    result = gunzipSync(data, { maxOutputLength: MAX_ARCHIVE_BYTES, info: true }) as unknown as typeof result;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'Z_BUF_ERROR'
        ? 'the gzip stream is cut short (its end and checksum are missing)'
        : `the gzip stream is corrupt (${(error as Error).message})`;
    throw new IntegrityError(`the archive looks gzip-compressed but ${why}; nothing was stored. Export it again or copy the whole file`, {
      cause: error,
    });
  }
  // zlib stops quietly at bytes that do not start another gzip member; zeros (padding) are harmless.
  const rest = data.subarray(result.engine.bytesWritten);
  if (rest.some((byte) => byte !== 0))
    throw new IntegrityError(
      `the archive has ${rest.length} bytes of unexpected data after its gzip stream; nothing was stored. ` +
        'Import the file export wrote, unchanged',
    );
  return result.buffer;
}

/** Where an entry's own header block starts: tar-stream gives the offset just after it. */
function entryHeaderOffset(entry: { header: tar.Header }): number {
  return (entry.header as { byteOffset?: number }).byteOffset! - TAR_BLOCK;
}

function padded(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

function isZeroBlock(data: Buffer, at: number): boolean {
  for (let i = at; i < at + TAR_BLOCK; i++) if (data[i] !== 0) return false;
  return true;
}

/** True when a whole zero block lies in [from, to): only long-name/pax headers may sit between entries. */
function zeroBlockBetween(data: Buffer, from: number, to: number): boolean {
  for (let at = from; at + TAR_BLOCK <= to; at += TAR_BLOCK) if (isZeroBlock(data, at)) return true;
  return false;
}

function hasEndMarker(data: Buffer, at: number): boolean {
  return data.length >= at + TAR_END_MARKER && isZeroBlock(data, at) && isZeroBlock(data, at + TAR_BLOCK);
}

/** The end-of-archive marker must follow the last entry, and only zero padding may follow it. */
function checkEndOfArchive(data: Buffer, entriesEnd: number, entries: number): void {
  if (!hasEndMarker(data, entriesEnd))
    throw new IntegrityError(
      `the archive is cut short: it ends after ${entries} entries without tar's end-of-archive marker, so ` +
        'files may be missing; nothing was stored. Export it again or copy the whole file',
    );
  const rest = data.subarray(entriesEnd + TAR_END_MARKER);
  if (rest.some((byte) => byte !== 0))
    throw new IntegrityError(
      `the archive has ${rest.length} bytes of unexpected data after its end-of-archive marker; nothing was stored. ` +
        'Import the file export wrote, unchanged',
    );
}
