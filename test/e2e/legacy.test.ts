// import-legacy on a table created with exactly the DDL of the Flask session API (docs/http-api.md).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadEverything, writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';

const LEGACY_DDL = `CREATE TABLE whatsapp_sessions (id SERIAL PRIMARY KEY, session_id VARCHAR(100) DEFAULT 'default' UNIQUE,
  session_data JSONB NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP
  DEFAULT CURRENT_TIMESTAMP);`;

describe('import-legacy', async () => {
  const url = await freshDatabase('legacy');
  const env = cliEnv(url);
  await query(url, LEGACY_DDL);
  const bot = await tempDir('legacy-bot');
  await writeSession(bot, { preKeys: 15, sessions: 4, senderKeys: 2, appStateKeys: 2 });
  const files = Object.fromEntries(
    await Promise.all((await readdir(bot)).map(async (name) => [name, await readFile(path.join(bot, name), 'utf8')])),
  );
  const insert = (sessionId: string, data: unknown) =>
    query(url, 'INSERT INTO whatsapp_sessions (session_id, session_data) VALUES ($1, $2)', [sessionId, JSON.stringify(data)]);
  await insert('default', files);
  await insert('second', { 'creds.json': files['creds.json'], 'pre-key-1.json': files['pre-key-1.json'] });
  await insert('bad-name', { ...files, '../../evil.json': '{}' });
  await insert('torn', { ...files, 'pre-key-1.json': '{"private":' });
  await insert('has space', files);
  await insert('not-text', { 'creds.json': { nested: true } });
  const generations = async () => Number((await query<{ n: string }>(url, 'SELECT count(*) AS n FROM baileys_keeper.generations'))[0]!.n);

  it('imports the good rows as generations, and reports and skips the bad ones whole (exit 4)', async () => {
    const result = await runCli(['import-legacy', '--all'], { env });
    assert.equal(result.code, 4, result.stdout + result.stderr);
    assert.match(result.stdout, /^imported +default: generation 1 \(\d+ files\)$/m);
    assert.match(result.stdout, /^imported +second: generation 1 \(2 files\)$/m);
    assert.match(result.stdout, /^skipped +bad-name: file "\.\.\/\.\.\/evil\.json": .*path separator/m);
    assert.match(result.stdout, /^skipped +torn: file "pre-key-1\.json": .*not valid JSON/m);
    assert.match(result.stdout, /^skipped +has space: the session_id/m);
    assert.match(result.stdout, /^skipped +not-text: file "creds\.json" is not text/m);
    assert.match(messages(result.stderr), /skipped session torn/);
    for (const skipped of ['bad-name', 'torn', 'has space', 'not-text']) {
      assert.deepEqual(
        await query(url, 'SELECT 1 FROM baileys_keeper.files WHERE session_id = $1', [skipped]),
        [],
        `${skipped}: nothing half-imported`,
      );
    }
  });

  it('restores an imported session into a directory Baileys loads, deep-equal', async () => {
    const dir = path.join(await tempDir('restored'), 'auth_info');
    assert.equal((await runCli(['restore', '--dir', dir], { env })).code, 0);
    const expected = await loadEverything(bot);
    const actual = await loadEverything(dir);
    assert.deepEqual(actual.creds, expected.creds);
    assert.deepEqual(actual.keys, expected.keys);
  });

  it('is idempotent: importing twice adds nothing', async () => {
    const before = await generations();
    const again = await runCli(['import-legacy', '--all', '--json'], { env });
    assert.equal(again.code, 4);
    const report = JSON.parse(again.stdout) as { sessions: { session_id: string; result: string }[] };
    assert.deepEqual(
      report.sessions.filter((s) => s.result !== 'skipped').map((s) => [s.session_id, s.result]),
      [
        ['default', 'unchanged'],
        ['second', 'unchanged'],
      ],
    );
    assert.equal(await generations(), before);
    const one = await runCli(['import-legacy', '--session', 'second'], { env });
    assert.equal(one.code, 0);
    assert.match(one.stdout, /^unchanged +second/m);
  });

  it('says what is wrong with a missing row, a missing table, or a bad flag combination', async () => {
    const missing = await runCli(['import-legacy', '--session', 'nobody'], { env });
    assert.equal(missing.code, 3);
    assert.match(messages(missing.stderr), /no row with session_id nobody/);
    const table = await runCli(['import-legacy', '--all', '--table', 'sessions_v0'], { env });
    assert.equal(table.code, 64);
    assert.match(messages(table.stderr), /table sessions_v0 does not exist/);
    const both = await runCli(['import-legacy', '--all', '--session', 'x'], { env });
    assert.equal(both.code, 64);
    const injection = await runCli(['import-legacy', '--all', '--table', 'x; DROP TABLE whatsapp_sessions'], { env });
    assert.equal(injection.code, 64);
    assert.equal((await query(url, 'SELECT count(*) AS n FROM whatsapp_sessions'))[0]!['n'], '6');
  });
});
