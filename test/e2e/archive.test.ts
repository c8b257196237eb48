// export / import through the CLI: round trip, and a rejected archive stores nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import tar from 'tar-stream';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';

async function tarOf(
  entries: { name: string; type?: 'file' | 'symlink' | 'link'; content?: string; linkname?: string }[],
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  for (const entry of entries) pack.entry({ name: entry.name, type: entry.type ?? 'file', linkname: entry.linkname }, entry.content ?? '');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe('export and import', async () => {
  const url = await freshDatabase('archive');
  const env = cliEnv(url);
  const bot = await tempDir('bot');
  await writeSession(bot, { preKeys: 8 });
  assert.equal((await runCli(['backup', '--dir', bot, '--session', 'source'], { env })).code, 0);

  it('exports a generation and imports it as another session, file for file', async () => {
    const out = path.join(await tempDir('export'), 'session.tar');
    const exported = await runCli(['export', '--session', 'source', '--output', out], { env });
    assert.equal(exported.code, 0, exported.stderr);
    const imported = await runCli(['import', '--session', 'copy', '--input', out], { env });
    assert.equal(imported.code, 0, imported.stderr);
    const fileCount = (await readTree(bot)).size;
    assert.match(imported.stdout, new RegExp(`generation 1 of session copy: ${fileCount} changed`));
    const dir = path.join(await tempDir('restore'), 'auth_info');
    assert.equal((await runCli(['restore', '--session', 'copy', '--dir', dir], { env })).code, 0);
    assert.deepEqual(await readTree(dir), await readTree(bot));
  });

  it('streams a tar to stdout and reads one from stdin', async () => {
    const exported = await runCli(['export', '--session', 'source'], { env });
    assert.equal(exported.code, 0);
    assert.equal(exported.stdoutBytes.subarray(257, 262).toString(), 'ustar', 'stdout is a tar');
    const imported = await runCli(['import', '--session', 'piped'], { env, input: exported.stdoutBytes });
    assert.equal(imported.code, 0, imported.stderr);
    // A tar made with plain `tar -C dir .` style names imports too.
    const again = await runCli(['import', '--session', 'piped', '--json'], { env, input: exported.stdoutBytes });
    assert.equal(JSON.parse(again.stdout).result, 'noop');
  });

  // What is not an archive of one directory is a usage error (64); damage and files the backup rules refuse, 4.
  const cases: [string, () => Promise<Buffer>, RegExp, 4 | 64][] = [
    [
      'a symlink',
      () => tarOf([{ name: 'creds.json', type: 'symlink', linkname: '/etc/passwd' }]),
      /"creds\.json" is refused: it is a symlink entry/,
      64,
    ],
    [
      'a hard link',
      () =>
        tarOf([
          { name: 'pre-key-1.json', content: '{}' },
          { name: 'pre-key-2.json', type: 'link', linkname: 'pre-key-1.json' },
        ]),
      /"pre-key-2\.json" is refused: it is a link entry/,
      64,
    ],
    ['path traversal', () => tarOf([{ name: '../../etc/cron.d/evil', content: 'x' }]), /"\.\.\/\.\.\/etc\/cron\.d\/evil" is refused/, 64],
    ['an absolute path', () => tarOf([{ name: '/tmp/evil.json', content: '{}' }]), /"\/tmp\/evil\.json" is refused/, 64],
    [
      'two auth directories',
      () =>
        tarOf([
          { name: 'alice/creds.json', content: '{}' },
          { name: 'bob/creds.json', content: '{}' },
        ]),
      /2 top-level directories/,
      64,
    ],
    ['garbage', async () => Buffer.from('definitely not a tar file '.repeat(30)), /not a tar archive/, 64],
    ['an archive of no files', () => tarOf([]), /holds no files to import/, 64],
    ['a torn JSON file', () => tarOf([{ name: 'pre-key-1.json', content: '{"priv' }]), /"pre-key-1\.json" is rejected: .*JSON/, 4],
    [
      'a torn JSON file in the directory',
      () => tarOf([{ name: 'auth_info/pre-key-1.json', content: '{"priv' }]),
      /"auth_info\/pre-key-1\.json" is rejected: .*JSON/,
      4,
    ],
  ];
  for (const [label, make, pattern, code] of cases) {
    it(`refuses ${label} with exit ${code}, naming it, and stores nothing`, async () => {
      const before = await query(url, 'SELECT count(*) AS n FROM baileys_keeper.generations');
      const result = await runCli(['import', '--session', 'source'], { env, input: await make() });
      assert.equal(result.code, code, result.stderr);
      assert.match(messages(result.stderr), pattern);
      assert.match(messages(result.stderr), /nothing was stored/);
      assert.deepEqual(await query(url, 'SELECT count(*) AS n FROM baileys_keeper.generations'), before);
    });
  }

  it('imports `tar czf x.tgz auth_info` made by GNU tar: restore gives the directory back, file for file', async () => {
    const parent = path.dirname(bot);
    const archive = path.join(await tempDir('gnu'), 'x.tgz');
    await promisify(execFile)('tar', ['-czf', archive, '-C', parent, path.basename(bot)]);
    await writeFile(path.join(bot, '.keeper-probe'), '');
    const imported = await runCli(['import', '--session', 'from-tar', '--input', archive], { env });
    assert.equal(imported.code, 0, imported.stderr);
    const dir = path.join(await tempDir('restore-tar'), 'auth_info');
    assert.equal((await runCli(['restore', '--session', 'from-tar', '--dir', dir], { env })).code, 0);
    assert.deepEqual(await readTree(dir), await readTree(bot));
    // The same login through `-C auth_info .` (./ names) is the same set: nothing changes.
    const dot = await promisify(execFile)('tar', ['-cf', '-', '-C', bot, '.'], { encoding: 'buffer', maxBuffer: 64 << 20 });
    const again = await runCli(['import', '--session', 'from-tar', '--json'], { env, input: dot.stdout });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).result, 'noop');
    assert.match(messages(again.stderr), /left out 1 archive entries that a backup never stores .*"\.\/\.keeper-probe"/);
  });

  /** Where each entry of a tar ends (header and padded contents), read from its headers. */
  function entryEnds(data: Buffer): number[] {
    const ends: number[] = [];
    for (let at = 0; at + 512 <= data.length && data[at] !== 0; ) {
      const size = Number.parseInt(
        data
          .subarray(at + 124, at + 136)
          .toString()
          .replace(/\0.*$/, '')
          .trim() || '0',
        8,
      );
      at += 512 + Math.ceil(size / 512) * 512;
      ends.push(at);
    }
    return ends;
  }

  const generationsOf = (session: string) =>
    query(url, 'SELECT count(*)::int AS n FROM baileys_keeper.generations WHERE session_id = $1', [session]).then((rows) => rows[0]!.n);

  it('refuses an export cut at an entry boundary, plain or gzipped, with exit 4 and stores nothing', async () => {
    const exported = (await runCli(['export', '--session', 'source'], { env })).stdoutBytes;
    const ends = entryEnds(exported);
    assert.ok(ends.length > 14, `the export has ${ends.length} entries`);
    // The session holds the whole set: a cut import would record the missing files as deleted.
    assert.equal((await runCli(['import', '--session', 'cut'], { env, input: exported })).code, 0);
    for (const [label, input] of [
      ['plain', exported.subarray(0, ends[13])],
      ['gzipped', gzipSync(exported.subarray(0, ends[13]))],
      ['gzip cut', gzipSync(exported).subarray(0, 200)],
      ['mid-entry', exported.subarray(0, ends[13]! + 700)],
    ] as const) {
      const result = await runCli(['import', '--session', 'cut'], { env, input });
      assert.equal(result.code, 4, `${label}: ${result.stderr}`);
      assert.match(messages(result.stderr), /cut short.*nothing was stored/, label);
      assert.equal(await generationsOf('cut'), 1, `${label}: a generation was stored`);
    }
    const whole = await runCli(['import', '--session', 'cut', '--json'], { env, input: gzipSync(exported) });
    assert.equal(JSON.parse(whole.stdout).result, 'noop', 'the whole gzipped export imports as the same set');
  });

  it('imports an export cut anywhere only when uncut: otherwise exit 4 (64 before a header) and no generation (property)', async () => {
    const exported = (await runCli(['export', '--session', 'source'], { env })).stdoutBytes;
    const gzipped = gzipSync(exported);
    const ends = entryEnds(exported);
    const variant = fc.oneof(
      fc.constantFrom(...ends, exported.length).map((cut) => ({ data: exported, cut })),
      fc.integer({ min: 1, max: exported.length }).map((cut) => ({ data: exported, cut })),
      fc.integer({ min: 1, max: gzipped.length }).map((cut) => ({ data: gzipped, cut })),
    );
    let session = 0;
    await fc.assert(
      fc.asyncProperty(variant, async ({ data, cut }) => {
        const id = `prop-${++session}`;
        const result = await runCli(['import', '--session', id], { env, input: data.subarray(0, cut) });
        if (cut === data.length) {
          assert.equal(result.code, 0, result.stderr);
          const stored = await query(url, 'SELECT count(*)::int AS n FROM baileys_keeper.files WHERE session_id = $1', [id]);
          assert.equal(stored[0]!.n, ends.length, 'every entry is stored');
        } else {
          // A cut before the first header shows no tar at all (64); any other cut is damage (4).
          const noTar = (data === exported && cut < 263) || cut < 2;
          assert.equal(result.code, noTar ? 64 : 4, `cut at ${cut} of ${data.length}: ${result.stderr}`);
          assert.equal(await generationsOf(id), 0, `cut at ${cut}: a generation was stored`);
        }
      }),
      // Each run is a CLI process; the cheap exhaustive checks are in test/unit/properties.test.ts.
      { numRuns: 8, examples: [[{ data: exported, cut: exported.length }]] },
    );
  });

  it('says what to do when --input is missing or export has nothing', async () => {
    const missing = await runCli(['import', '--input', '/nonexistent/session.tar'], { env });
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /cannot read --input \/nonexistent\/session\.tar \(ENOENT\)/);
    const none = await runCli(['export', '--session', 'nobody', '--output', path.join(await tempDir('x'), 'x.tar')], { env });
    assert.equal(none.code, 3);
  });

  it('backs up only regular files: links and dotfiles in the directory are ignored', async () => {
    const dir = await tempDir('links');
    await writeSession(dir, { preKeys: 1 });
    const secret = path.join(await tempDir('outside'), 'secret.json');
    await writeFile(secret, '{"secret":1}');
    await symlink(secret, path.join(dir, 'session-evil.json'));
    await writeFile(path.join(dir, '.npmrc'), 'x');
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'links'], { env })).code, 0);
    const names = await query<{ name: string }>(url, "SELECT name FROM baileys_keeper.files WHERE session_id = 'links' ORDER BY name");
    const regular = [...(await readTree(dir)).keys()].sort();
    assert.deepEqual(
      names.map((row) => row.name),
      regular,
    );
    assert.ok(!regular.includes('session-evil.json') && !regular.includes('.npmrc'));
  });
});
