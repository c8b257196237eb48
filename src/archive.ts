// tar export and import of a generation. An archive is untrusted input: every entry is checked
// and the first bad one rejects the whole archive, so nothing of it is stored.
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { IntegrityError, KeeperError, UsageError } from './errors.js';
import { MAX_INCOMING_FILES, SnapshotBuilder } from './incoming.js';
import { invalidNameReason, quoteName, skippedNameReason } from './names.js';
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

/** Reads all of `input` (up to MAX_ARCHIVE_BYTES) and parses it as a (optionally gzipped) tar: see parseArchive. */
export async function readArchive(input: Readable): Promise<ArchiveSnapshot> {
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

/** What `import` takes from an archive: the directory's files, and where they were. */
export interface ArchiveSnapshot extends Snapshot {
  /** The one top-level directory holding the files (`tar czf x.tgz auth_info`), or null for files at the top. */
  readonly directory: string | null;
  /** Entries left out as a backup leaves them out of a directory (dotfiles, `*.tmp`), by their names in the archive. */
  readonly skipped: readonly string[];
}

/** How to make an archive import takes, said with every refusal of an archive's shape: both are a whole auth directory. */
const ARCHIVE_FORMS = 'make it with `tar czf x.tgz auth_info` or `tar czf x.tgz -C auth_info .`, or use `baileys-keeper export`';

/**
 * Parses a tar (or .tar.gz) of one auth directory into a snapshot. Accepted layouts (docs/commands.md
 * "export, import"): the files at the top (export's own, `-C auth_info .` with its `./` names), or inside one
 * top-level directory of any name (`tar czf x.tgz auth_info`), directory entries included. What a backup of
 * the directory would leave out is skipped: dotfiles, dot-directories with what they hold (the keeper's own
 * `.baileys-keeper-*` set-asides) and `*.tmp`.
 *
 * Throws UsageError (exit 64) for what is not such an archive — not a tar (or compressed otherwise than
 * gzip), no files, several top-level directories, files both at the top and in a directory, deeper
 * sub-directories, absolute paths, `..`, links, devices, FIFOs — and IntegrityError (exit 4) for an archive
 * that is damaged or holds a file the backup rules refuse (torn JSON, a non-creds creds.json, an unsafe name,
 * over the size limit, a name twice). An archive is whole or nothing: a gzip stream must end with its trailer
 * (CRC and length checked) and a tar with its end-of-archive marker, so an archive cut anywhere (even exactly
 * at an entry boundary, where every entry read looks fine) is refused instead of being taken for a directory
 * whose other files were deleted. Zero bytes after the end (tar's record padding) are accepted; anything else
 * after it is refused.
 */
export async function parseArchive(data: Buffer): Promise<ArchiveSnapshot> {
  const tarData = data[0] === 0x1f && data[1] === 0x8b ? gunzipWhole(data) : data;
  checkIsTar(tarData, data.length);
  const entries = await readEntries(tarData);
  const { directory, inside } = layoutOf(entries);
  const skipped: string[] = [];
  // The archive's shape first (usage errors), then the files' contents (integrity), whatever their order.
  const files: { entry: Entry; name: string }[] = [];
  for (const entry of entries) {
    const path = inside(entry);
    if (path.length === 0) {
      if (entry.type === 'directory') continue; // the auth directory itself
      throw new UsageError(
        `archive entry ${quoteName(entry.name)} is refused: it is a file, and also the directory the other entries are in; nothing was stored`,
      );
    }
    // Never backed up from a directory, so never imported from its archive (a dot-directory with all it holds).
    if (skippedNameReason(path[0]!) === 'dotfile' || (path.length === 1 && entry.type === 'file' && skippedNameReason(path[0]!))) {
      if (entry.type === 'file') skipped.push(entry.name);
      continue;
    }
    if (path.length > 1 || entry.type === 'directory') {
      const folder = [...(directory === null ? [] : [directory]), ...(entry.type === 'directory' ? path : path.slice(0, -1))];
      const chain = sharedFolder(entries);
      throw new UsageError(
        `archive entry ${quoteName(entry.name)} is refused: it is in a sub-directory (${folder.join('/')}/) of the auth directory, ` +
          'and an archive of one auth directory holds only its files: ' +
          (chain.length > 1
            ? `every file is under ${chain.join('/')}/, as tar keeps the path it is given: run tar from its parent ` +
              `(tar czf x.tgz -C ${chain.slice(0, -1).join('/')} ${chain.at(-1)})`
            : `${ARCHIVE_FORMS} (one session each)`) +
          '; nothing was stored',
      );
    }
    files.push({ entry, name: path[0]! });
  }
  const builder = new SnapshotBuilder();
  for (const { entry, name } of files) {
    const problem = invalidNameReason(name) ?? builder.add(name, entry.content);
    if (problem) throw new IntegrityError(`archive entry ${quoteName(entry.name)} is rejected: ${problem}; nothing was stored`);
  }
  if (builder.snapshot.files.size === 0)
    throw new UsageError(
      `the archive holds no files to import${skipped.length > 0 ? ` (only ${skipped.length} dotfiles or *.tmp files, which are never stored)` : ''}; ` +
        'nothing was stored. Importing it would record every stored file as deleted: to discard a login use ' +
        '`baileys-keeper logout`, to drop a session `baileys-keeper delete`',
    );
  return { ...builder.snapshot, directory, skipped };
}

/**
 * The one directory that directly holds every file of the archive, as a path (`home/me/bot/auth_info` for
 * `tar czf x.tgz /home/me/bot/auth_info`); empty when the files are in several.
 */
function sharedFolder(entries: readonly Entry[]): string[] {
  const folders = entries.filter((entry) => entry.type === 'file').map((entry) => entry.parts.slice(0, -1).join('/'));
  const [first] = folders;
  return first !== undefined && folders.every((folder) => folder === first) ? first.split('/') : [];
}

/** An entry of an archive: its name as written, what it is, its path parts (no `.` or empty ones), its contents. */
interface Entry {
  name: string;
  type: 'file' | 'directory';
  parts: string[];
  content: Buffer;
}

/**
 * Every entry of a tar that is whole (see parseArchive): the entry kinds and paths that cannot be in an
 * archive of one directory are refused as they come (UsageError), a damaged or cut archive at its end
 * (IntegrityError). Contents are read only for files within the size limit.
 */
async function readEntries(tarData: Buffer): Promise<Entry[]> {
  // v7 headers too (checkIsTar let them in by their checksum); every header's checksum is still checked.
  // (an option of tar-stream 3 that its typings lack)
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const source = Readable.from([tarData]);
  source.pipe(extract);
  const entries: Entry[] = [];
  // Where the last entry's padded contents end: the end-of-archive marker must start there.
  let entriesEnd = 0;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const reject = (why: string): never => {
        throw new IntegrityError(`archive entry ${quoteName(header.name)} is rejected: ${why}; nothing was stored`);
      };
      const refuse = (why: string): never => {
        throw new UsageError(`archive entry ${quoteName(header.name)} is refused: ${why}; nothing was stored`);
      };
      if (entries.length >= MAX_ARCHIVE_ENTRIES) reject(`the archive has more than ${MAX_ARCHIVE_ENTRIES} entries`);
      // tar-stream skips zero blocks and reads on, so an entry after an end-of-archive marker (a second
      // archive appended, or junk that parses) would be taken in silently: refuse a zero block before it.
      const headerAt = entryHeaderOffset(entry);
      if (zeroBlockBetween(tarData, entriesEnd, headerAt))
        reject('it comes after an end-of-archive marker (zero blocks); the archive is two archives or damaged');
      entriesEnd = headerAt + TAR_BLOCK + padded(header.size ?? 0);
      const type = header.type === 'contiguous-file' ? 'file' : header.type;
      if (type !== 'file' && type !== 'directory')
        return refuse(`it is a ${type ?? 'non-file'} entry; only regular files, and the one directory holding them, are imported`);
      if (header.name.startsWith('/')) refuse('it is an absolute path; the files of an auth directory have relative names');
      const parts = header.name.split('/');
      if (parts.includes('..')) refuse('its path climbs out of the directory with ".."');
      // Checked from the header first, so an oversize entry is refused before it is read.
      if ((header.size ?? 0) > MAX_FILE_BYTES) reject(`it is ${header.size} bytes, over the ${MAX_FILE_BYTES}-byte limit`);
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      // `./x`, `a//b` and `a/./b` name what tar extracts as `x` and `a/b`.
      entries.push({ name: header.name, type, parts: parts.filter((part) => part !== '' && part !== '.'), content: Buffer.concat(chunks) });
    }
  } catch (error) {
    source.destroy();
    if (error instanceof KeeperError) throw error;
    const cut = /unexpected end/i.test((error as Error).message);
    // A whole archive followed by less than a block of junk also ends "unexpectedly" for tar-stream.
    if (cut && hasEndMarker(tarData, entriesEnd)) checkEndOfArchive(tarData, entriesEnd, entries.length);
    throw new IntegrityError(
      cut
        ? `the archive is cut short: its last entry is incomplete (${tarData.length} bytes of tar); ` +
            'nothing was stored. Export it again or copy the whole file'
        : `the archive is damaged after ${entries.length} entries (${(error as Error).message}); nothing was stored. ` +
            'Export it again or copy the whole file',
      { cause: error },
    );
  }
  checkEndOfArchive(tarData, entriesEnd, entries.length);
  return entries;
}

/**
 * Refuses, as a usage error, input that is not a tar at all: empty, compressed otherwise than with gzip, or
 * without a ustar/GNU header at its start. `bytes` is the size of the input as given (before gunzip).
 */
function checkIsTar(data: Buffer, bytes: number): void {
  const refuse = (what: string): never => {
    throw new UsageError(`${what}; nothing was stored. import reads a tar or .tar.gz of one auth directory: ${ARCHIVE_FORMS}`);
  };
  if (bytes === 0) refuse('the archive is empty (0 bytes)');
  if (data.length === 0) refuse('the archive is an empty gzip stream');
  // ustar, pax and GNU tar all write "ustar" at offset 257 of every header; an archive of no entries is its
  // marker; a v7 header (tar --format=v7) has no magic, only its checksum.
  if (data.length >= 263 && data.toString('latin1', 257, 262) === 'ustar') return;
  if (data.length >= TAR_BLOCK && (isZeroBlock(data, 0) || headerChecksumHolds(data))) return;
  const compressed = OTHER_COMPRESSIONS.find(({ magic }) => magic.every((byte, i) => data[i] === byte));
  if (compressed)
    refuse(`the archive is ${compressed.name}, which import does not read: ${compressed.instead} (plain tar and gzip are read)`);
  refuse(`the input is not a tar archive (no tar header at its start, ${bytes} bytes)`);
}

/** Whether the first 512 bytes are a tar header by its checksum: the sum of its bytes, the checksum field counted as spaces. */
function headerChecksumHolds(data: Buffer): boolean {
  let sum = 8 * 0x20;
  for (let i = 0; i < TAR_BLOCK; i++) if (i < 148 || i >= 156) sum += data[i]!;
  const stored = data.toString('latin1', 148, 156).replace(/[\0 ]+/g, '');
  return /^[0-7]+$/.test(stored) && Number.parseInt(stored, 8) === sum;
}

/** Formats people may hand import instead of a tar or .tar.gz, by their leading bytes. */
const OTHER_COMPRESSIONS: { magic: number[]; name: string; instead: string }[] = [
  { magic: [0x42, 0x5a, 0x68], name: 'bzip2-compressed', instead: 'decompress it first (bzip2 -dc x.tar.bz2 | baileys-keeper import)' },
  {
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    name: 'xz-compressed',
    instead: 'decompress it first (xz -dc x.tar.xz | baileys-keeper import)',
  },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: 'zstd-compressed', instead: 'decompress it first (zstd -dc x.tar.zst | baileys-keeper import)' },
  { magic: [0x50, 0x4b, 0x03, 0x04], name: 'a zip archive', instead: 'make a tar instead' },
];

/**
 * Where the auth directory is in an archive: one top-level directory holding everything (any name, also a
 * dotted one) — `directory`, stripped by `inside` — or the archive's top itself (null). Refuses (UsageError)
 * an archive whose top holds several directories, or files beside a directory; dotted names at the top of a
 * files-at-the-top archive are left for parseArchive to skip.
 */
function layoutOf(entries: readonly Entry[]): { directory: string | null; inside: (entry: Entry) => string[] } {
  const top = new Set(entries.filter((entry) => entry.parts.length > 0).map((entry) => entry.parts[0]!));
  const isDirectory = (name: string) =>
    entries.some((entry) => entry.parts[0] === name && (entry.parts.length > 1 || entry.type === 'directory'));
  const within = (name: string) => ({
    directory: name,
    inside: (entry: Entry) => (entry.parts[0] === name ? entry.parts.slice(1) : entry.parts),
  });
  const [only] = top;
  if (top.size === 1 && isDirectory(only!)) return within(only!);
  const visible = [...top].filter((name) => !name.startsWith('.'));
  const directories = visible.filter(isDirectory);
  const files = visible.filter((name) => !isDirectory(name));
  // One directory beside dotted leftovers (`.DS_Store`): the directory is the auth directory.
  if (directories.length === 1 && files.length === 0) return within(directories[0]!);
  const refuse = (why: string): never => {
    throw new UsageError(`${why}; nothing was stored. import reads an archive of one auth directory: ${ARCHIVE_FORMS}`);
  };
  if (files.length === 0 && directories.length > 1)
    refuse(
      `the archive holds ${directories.length} top-level directories (${directories.slice(0, 3).join('/, ')}/${directories.length > 3 ? ', …' : ''}), ` +
        'and import stores one session: make one archive per auth directory',
    );
  if (directories.length > 0)
    refuse(`the archive holds files at its top (${quoteName(files[0] ?? '')}) and a directory (${directories[0]}/) beside them`);
  return { directory: null, inside: (entry) => entry.parts };
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
