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

/** Parses a tar (or .tar.gz) into a snapshot; throws IntegrityError naming the first bad entry. */
export async function parseArchive(data: Buffer): Promise<Snapshot> {
  if (data.length === 0)
    throw new IntegrityError('the archive is empty: expected a tar made by `baileys-keeper export`; nothing was stored');
  let tarData = data;
  if (data[0] === 0x1f && data[1] === 0x8b) {
    try {
      tarData = gunzipSync(data, { maxOutputLength: MAX_ARCHIVE_BYTES });
    } catch (error) {
      throw new IntegrityError(
        `the archive looks gzip-compressed but cannot be decompressed (${(error as Error).message}); nothing was stored`,
        { cause: error },
      );
    }
  }
  const builder = new SnapshotBuilder();
  const extract = tar.extract();
  const source = Readable.from([tarData]);
  source.pipe(extract);
  let entries = 0;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const reject = (why: string): never => {
        throw new IntegrityError(`archive entry ${quoteName(header.name)} is rejected: ${why}; nothing was stored`);
      };
      if (++entries > MAX_ARCHIVE_ENTRIES) reject(`the archive has more than ${MAX_ARCHIVE_ENTRIES} entries`);
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
    throw new IntegrityError(`the input is not a valid tar archive (${(error as Error).message}); nothing was stored`, { cause: error });
  }
  return builder.snapshot;
}
