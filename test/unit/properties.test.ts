// Property-based tests (fast-check) for the code that takes untrusted input: file names, directory
// snapshots and tar imports. Whatever the input: nothing is written outside the directory, nothing
// throws anything but our documented errors, and no torn file is ever accepted for storage.
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import tar from 'tar-stream';
import { packArchive, parseArchive } from '../../src/archive.js';
import { CREDS_FILE, parseCreds } from '../../src/creds.js';
import { IntegrityError, UsageError } from '../../src/errors.js';
import { invalidNameReason } from '../../src/names.js';
import { materialise } from '../../src/restore.js';
import { readSnapshot, type Snapshot } from '../../src/snapshot.js';
import { tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';

// Enough runs to shake out edge cases, few enough that the file takes seconds on a busy machine.
const PURE_RUNS = 2_000;
const FS_RUNS = 60;

/** Names built from the pieces that make paths dangerous, plus arbitrary (binary-range) strings. */
const nameArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc
    .array(fc.constantFrom('..', '.', '/', '\\', '\0', '\n', 'a', 'creds.json', 'pre-key-1.json', '.tmp', '%2e', '\u202e', '~'), {
      minLength: 1,
      maxLength: 6,
    })
    .map((parts) => parts.join('')),
  fc.string({ unit: 'grapheme', minLength: 250, maxLength: 260 }),
);

const validCreds = JSON.stringify({
  noiseKey: { private: 'a', public: 'b' },
  signedIdentityKey: { private: 'c', public: 'd' },
  signedPreKey: { keyId: 1 },
  advSecretKey: 'e',
  registrationId: 42,
  me: { id: '5511987654321:7@s.whatsapp.net' },
});

/** Every stored file is complete: JSON parses, creds.json is a creds object, and names are safe. */
function assertNothingTorn(snapshot: Snapshot): void {
  for (const [name, file] of snapshot.files) {
    assert.equal(invalidNameReason(name), null, `stored an unsafe name ${JSON.stringify(name)}`);
    if (name.endsWith('.json')) assert.doesNotThrow(() => JSON.parse(file.content.toString('utf8')), `stored torn JSON ${name}`);
    if (name === CREDS_FILE) assert.ok(parseCreds(file.content.toString('utf8')), 'stored an incomplete creds.json');
  }
}

/** Everything under `root`, relative, recursively. */
/** How an archive may be refused: damaged or holding a file the rules refuse (exit 4), or not one of a directory (exit 64). */
function refusedArchive(error: unknown): error is IntegrityError | UsageError {
  return error instanceof IntegrityError || error instanceof UsageError;
}

async function listAll(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true });
  return entries.map(String).sort();
}

describe('properties of untrusted input', () => {
  it('a name that passes validation is one plain entry directly inside the directory', () => {
    const dir = '/srv/auth';
    fc.assert(
      fc.property(nameArb, (name) => {
        if (invalidNameReason(name) !== null) return;
        const resolved = path.resolve(dir, name);
        assert.equal(path.dirname(resolved), dir);
        assert.equal(path.basename(resolved), name);
        assert.ok(!name.startsWith('.') && !name.endsWith('.tmp'));
      }),
      { numRuns: PURE_RUNS },
    );
  });

  it('restoring any list of files writes only inside the directory, or refuses and writes nothing', async () => {
    const root = await tempDir('prop-restore');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ name: nameArb, content: fc.uint8Array({ maxLength: 64 }) }), { maxLength: 6 }),
        async (files) => {
          await rm(root, { recursive: true, force: true });
          await mkdir(root);
          const dir = path.join(root, 'auth');
          const restoreFiles = files.map((f) => ({ name: f.name, content: Buffer.from(f.content) }));
          const allValid = restoreFiles.every((f) => invalidNameReason(f.name) === null);
          try {
            await materialise(dir, restoreFiles, testLog);
            assert.ok(allValid, 'an invalid name was accepted');
            const expected = new Set(restoreFiles.map((f) => f.name));
            assert.deepEqual(await readdir(root), ['auth']);
            assert.deepEqual(new Set(await readdir(dir)), expected);
          } catch (error) {
            if (!(error instanceof IntegrityError)) throw error;
            assert.ok(!allValid, `refused valid names: ${(error as Error).message}`);
            assert.deepEqual(await listAll(root), [], 'a refused restore wrote something');
          }
        },
      ),
      { numRuns: FS_RUNS },
    );
  });

  it('reading a directory of arbitrary bytes never throws and never accepts a torn JSON file or creds.json', async () => {
    const dir = await tempDir('prop-snapshot');
    const fast = { retryDelaysMs: [0] };
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.oneof(fc.string({ maxLength: 60 }), fc.json()),
        fc.integer({ min: 0, max: validCreds.length - 1 }),
        async (bytes, text, cut) => {
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir);
          await writeFile(path.join(dir, 'pre-key-1.json'), bytes);
          await writeFile(path.join(dir, 'session-1.json'), text);
          await writeFile(path.join(dir, 'app-state-sync-key-x.json'), validCreds.slice(0, cut));
          await writeFile(path.join(dir, CREDS_FILE), validCreds.slice(0, cut)); // every strict prefix is a torn write
          await writeFile(path.join(dir, 'lid-mapping-1'), bytes); // no .json: stored as it is
          const snapshot = await readSnapshot(dir, fast);
          assertNothingTorn(snapshot);
          assert.ok(!snapshot.files.has(CREDS_FILE), 'a truncated creds.json was accepted');
          assert.ok(snapshot.held.has(CREDS_FILE));
          assert.ok(snapshot.files.has('lid-mapping-1'));
        },
      ),
      { numRuns: FS_RUNS },
    );
  });

  it('importing arbitrary bytes or a damaged export either refuses it (exit 4 or 64) or stores only complete, safely named files', async () => {
    const good = await packArchive(
      [
        { name: CREDS_FILE, content: Buffer.from(validCreds) },
        { name: 'pre-key-1.json', content: Buffer.from('{"private":"x"}') },
      ],
      new Date(0),
    );
    const damaged = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
      fc.integer({ min: 0, max: good.length - 1 }).map((cut) => good.subarray(0, cut)),
      fc
        .array(fc.tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 })
        .map((flips) => {
          const copy = Buffer.from(good);
          for (const [at, mask] of flips) copy[at]! ^= mask;
          return copy;
        }),
    );
    await fc.assert(
      fc.asyncProperty(damaged, async (data) => {
        try {
          assertNothingTorn(await parseArchive(data));
        } catch (error) {
          if (!refusedArchive(error)) throw error;
        }
      }),
      { numRuns: 400 },
    );
  });

  it('an export cut anywhere (plain or gzipped) is refused whole; only the uncut archive gives every entry', async () => {
    const files = Array.from({ length: 24 }, (_, i) => ({
      name: `session-${i}.json`,
      content: Buffer.from(JSON.stringify({ n: i, pad: 'p'.repeat((i * 97) % 700) })),
    }));
    const plain = await packArchive(files, new Date(0));
    const gzipped = gzipSync(plain);
    // Cuts at block boundaries are where every entry read still looks whole: weight them.
    const cutOf = (data: Buffer) =>
      fc.oneof(
        fc.integer({ min: 0, max: data.length }),
        fc.integer({ min: 0, max: Math.floor(data.length / 512) }).map((block) => block * 512),
      );
    const variant = fc.oneof(
      cutOf(plain).map((cut) => ({ data: plain, cut })),
      cutOf(gzipped).map((cut) => ({ data: gzipped, cut })),
    );
    await fc.assert(
      fc.asyncProperty(variant, async ({ data, cut }) => {
        try {
          const snapshot = await parseArchive(data.subarray(0, cut));
          assert.equal(cut, data.length, `a cut at ${cut} of ${data.length} bytes was accepted`);
          assert.deepEqual([...snapshot.files.keys()].sort(), files.map((f) => f.name).sort());
        } catch (error) {
          if (!refusedArchive(error)) throw error;
          // Under a header's first 263 bytes a plain tar (under 2 bytes a gzip stream) shows no tar at all (exit
          // 64); any other cut is damage (exit 4).
          assert.equal(error.exitCode, (data === plain && cut < 263) || cut < 2 ? 64 : 4, error.message);
          assert.notEqual(cut, data.length, `the uncut archive was refused: ${error.message}`);
        }
      }),
      { numRuns: PURE_RUNS / 4 },
    );
  });

  it('a tar of arbitrary entries (traversal names, links, devices, torn JSON) never lands outside the directory', async () => {
    const root = await tempDir('prop-tar');
    const entryArb = fc.record({
      name: fc.oneof(
        nameArb,
        nameArb.map((name) => `../${name}`),
        nameArb.map((name) => `/${name}`),
      ),
      type: fc.constantFrom('file', 'file', 'file', 'symlink', 'link', 'directory', 'character-device', 'fifo') as fc.Arbitrary<
        tar.Header['type']
      >,
      content: fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
        fc.constantFrom(Buffer.from(validCreds), Buffer.from(validCreds.slice(0, 20))),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(entryArb, { maxLength: 5 }), async (entries) => {
        const pack = tar.pack();
        const chunks: Buffer[] = [];
        const done = new Promise<void>((resolve, reject) => {
          pack.on('end', resolve);
          pack.on('error', reject);
        });
        pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
        for (const entry of entries) {
          const isFile = entry.type === 'file';
          pack.entry(
            {
              name: entry.name,
              type: entry.type,
              linkname: isFile ? undefined : '../../etc/passwd',
              size: isFile ? entry.content.length : 0,
            },
            isFile ? entry.content : Buffer.alloc(0),
          );
        }
        pack.finalize();
        await done;
        let snapshot: Snapshot;
        try {
          snapshot = await parseArchive(Buffer.concat(chunks));
        } catch (error) {
          if (!refusedArchive(error)) throw error;
          return;
        }
        assertNothingTorn(snapshot);
        await rm(root, { recursive: true, force: true });
        await mkdir(root);
        await materialise(path.join(root, 'auth'), [...snapshot.files.values()], testLog);
        assert.deepEqual(await readdir(root), ['auth']);
        const written = await listAll(path.join(root, 'auth'));
        assert.deepEqual(written, [...snapshot.files.keys()].sort());
      }),
      { numRuns: FS_RUNS * 2 },
    );
  });
});
