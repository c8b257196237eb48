// Torn writes are never stored: the previous version is kept and the tear is reported.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';

describe('torn writes', async () => {
  const url = await freshDatabase('torn');
  const env = cliEnv(url);

  async function storedHead(session: string, name: string): Promise<string | undefined> {
    const rows = await query<{ content: Buffer }>(
      url,
      'SELECT content FROM baileys_keeper.files WHERE session_id = $1 AND name = $2 AND generation_to IS NULL',
      [session, name],
    );
    return rows[0]?.content.toString('utf8');
  }

  for (const [label, tear] of [
    ['an empty creds.json', (text: string) => text.slice(0, 0)],
    ['a half-written creds.json', (text: string) => text.slice(0, Math.floor(text.length / 2))],
  ] as const) {
    it(`keeps the stored creds when the directory has ${label}`, async () => {
      const session = `creds-${label.length}`;
      const dir = await tempDir('torn');
      await writeSession(dir, { preKeys: 2 });
      assert.equal((await runCli(['backup', '--dir', dir, '--session', session], { env })).code, 0);
      const good = await readFile(path.join(dir, 'creds.json'), 'utf8');
      await writeFile(path.join(dir, 'creds.json'), tear(good));
      await writeFile(path.join(dir, 'pre-key-9.json'), '{"fresh":true}');
      const result = await runCli(['backup', '--dir', dir, '--session', session], { env });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /generation 2 .*1 changed, 0 deleted.*1 not stored/);
      assert.match(messages(result.stderr), /not stored: .*creds.*previously stored version is kept/);
      assert.equal(await storedHead(session, 'creds.json'), good);
      assert.equal(await storedHead(session, 'pre-key-9.json'), '{"fresh":true}');
    });
  }

  it('never stores a truncated key file, nor one that was never stored before', async () => {
    const dir = await tempDir('torn-key');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'keys'], { env })).code, 0);
    const good = await readFile(path.join(dir, 'pre-key-1.json'), 'utf8');
    await writeFile(path.join(dir, 'pre-key-1.json'), good.slice(0, 20));
    await writeFile(path.join(dir, 'session-5511.0.json'), '{"_sessions":{"05');
    const result = await runCli(['backup', '--dir', dir, '--session', 'keys', '--json'], { env });
    assert.equal(result.code, 0);
    assert.deepEqual(JSON.parse(result.stdout), {
      session_id: 'keys',
      result: 'noop',
      kind: 'noop',
      generation: 1,
      held: 2,
      held_back: [],
    });
    assert.equal(await storedHead('keys', 'pre-key-1.json'), good);
    assert.equal(await storedHead('keys', 'session-5511.0.json'), undefined);
  });
});
