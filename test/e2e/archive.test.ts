// export / import through the CLI: round trip, and a rejected archive stores nothing.
import assert from 'node:assert/strict';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
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

  const cases: [string, () => Promise<Buffer>, RegExp][] = [
    [
      'a symlink',
      () => tarOf([{ name: 'creds.json', type: 'symlink', linkname: '/etc/passwd' }]),
      /"creds\.json" is rejected: it is a symlink entry/,
    ],
    [
      'a hard link',
      () =>
        tarOf([
          { name: 'pre-key-1.json', content: '{}' },
          { name: 'pre-key-2.json', type: 'link', linkname: 'pre-key-1.json' },
        ]),
      /"pre-key-2\.json" is rejected: it is a link entry/,
    ],
    ['path traversal', () => tarOf([{ name: '../../etc/cron.d/evil', content: 'x' }]), /"\.\.\/\.\.\/etc\/cron\.d\/evil" is rejected/],
    ['an absolute path', () => tarOf([{ name: '/tmp/evil.json', content: '{}' }]), /"\/tmp\/evil\.json" is rejected/],
    ['a torn JSON file', () => tarOf([{ name: 'pre-key-1.json', content: '{"priv' }]), /"pre-key-1\.json" is rejected: .*JSON/],
    ['garbage', async () => Buffer.from('definitely not a tar file '.repeat(30)), /not a valid tar archive/],
  ];
  for (const [label, make, pattern] of cases) {
    it(`rejects ${label} with exit 4, naming it, and stores nothing`, async () => {
      const before = await query(url, 'SELECT count(*) AS n FROM baileys_keeper.generations');
      const result = await runCli(['import', '--session', 'source'], { env, input: await make() });
      assert.equal(result.code, 4, result.stderr);
      assert.match(messages(result.stderr), pattern);
      assert.match(messages(result.stderr), /nothing was stored/);
      assert.deepEqual(await query(url, 'SELECT count(*) AS n FROM baileys_keeper.generations'), before);
    });
  }

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
