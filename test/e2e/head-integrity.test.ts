// A head that does not add up (rows deleted or edited by hand) is an integrity failure: restore exits 4
// naming it instead of "no backup … QR code", verify fails, status shows the damage.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const T = 'baileys_keeper';

describe('a head that does not add up', async () => {
  const url = await freshDatabase('head_integrity');
  const env = cliEnv(url);

  /**
   * A session with two generations: 1 the whole directory, 2 a changed pre-key (closing its version
   * of generation 1) and a new one. Returns the directory as generation 1 held it.
   */
  async function twoGenerations(session: string, { onlyNewFile = false } = {}): Promise<Map<string, string>> {
    const bot = await tempDir(`bot-${session}`);
    await writeSession(bot, { preKeys: 3 });
    assert.equal((await runCli(['backup', '--dir', bot, '--session', session], { env })).code, 0);
    const first = await readTree(bot);
    if (!onlyNewFile) await writeFile(path.join(bot, 'pre-key-1.json'), '{"changed":true}');
    await writeFile(path.join(bot, 'pre-key-99.json'), '{"added":true}');
    assert.equal((await runCli(['backup', '--dir', bot, '--session', session], { env })).code, 0);
    return first;
  }

  const cases: { label: string; session: string; onlyNewFile?: boolean; tamper: string[]; said: RegExp }[] = [
    {
      label: 'the head generation row deleted',
      session: 'row-deleted',
      tamper: [`DELETE FROM ${T}.generations WHERE session_id = $1 AND generation = 2`],
      said: /head generation 2 has no row and is past the newest stored generation, 1/,
    },
    {
      label: 'head_generation past the stored generations',
      session: 'past',
      tamper: [`UPDATE ${T}.sessions SET head_generation = 9 WHERE session_id = $1`],
      said: /head generation 9 has no row and is past the newest stored generation, 2/,
    },
    {
      label: 'every generation row deleted',
      session: 'no-rows',
      tamper: [`DELETE FROM ${T}.generations WHERE session_id = $1`],
      said: /head generation 2 has no row and no generation row is stored/,
    },
    {
      label: 'the head row deleted and the head moved back (file rows of a generation with no row)',
      session: 'moved-back',
      tamper: [
        `DELETE FROM ${T}.generations WHERE session_id = $1 AND generation = 2`,
        `UPDATE ${T}.sessions SET head_generation = 1 WHERE session_id = $1`,
      ],
      said: /file versions were replaced or deleted by generation 2, past its head generation 1/,
    },
    {
      label: 'the same when generation 2 only added a file',
      session: 'moved-back-new',
      onlyNewFile: true,
      tamper: [
        `DELETE FROM ${T}.generations WHERE session_id = $1 AND generation = 2`,
        `UPDATE ${T}.sessions SET head_generation = 1 WHERE session_id = $1`,
      ],
      said: /file versions were written by generation 2, past its head generation 1/,
    },
    {
      label: 'head_generation set to 0 over stored generations',
      session: 'zeroed',
      tamper: [`UPDATE ${T}.sessions SET head_generation = 0 WHERE session_id = $1`],
      said: /generation 2 is stored past its head generation 0/,
    },
  ];

  for (const { label, session, onlyNewFile, tamper, said } of cases) {
    it(`${label}: restore exits 4 naming it, verify fails, status shows the damage`, async () => {
      await twoGenerations(session, { onlyNewFile });
      for (const sql of tamper) await query(url, sql, [session]);
      const dir = path.join(await tempDir(`restore-${session}`), 'auth_info');

      for (const extra of [[], ['--dry-run'], ['--require-backup']]) {
        const restored = await runCli(['restore', '--dir', dir, '--session', session, ...extra], { env });
        assert.equal(restored.code, 4, `${extra.join(' ')}: ${restored.stdout}`);
        const text = messages(restored.stdout);
        assert.match(text, /does not add up/);
        assert.match(text, said);
        assert.doesNotMatch(text, /no backup|QR code/);
      }
      assert.deepEqual(await readdir(dir).catch(() => []), [], 'nothing was written');

      const verified = await runCli(['verify', '--session', session], { env });
      assert.equal(verified.code, 4, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /^FAILED {2}head: /m);
      assert.match(verified.stdout, said);
      assert.doesNotMatch(verified.stdout, /^ok:/m);

      const status = await runCli(['status', '--session', session], { env });
      assert.equal(status.code, 0);
      assert.match(status.stdout, new RegExp(`^${session} +\\d+ +DAMAGED `, 'm'));
      assert.match(status.stdout, said);
      const json = JSON.parse((await runCli(['status', '--session', session, '--json'], { env })).stdout);
      assert.ok(
        json.sessions[0].damage.some((line: string) => said.test(line)),
        JSON.stringify(json),
      );
    });
  }

  it('a backup over a head whose row is missing records totals counted from the rows', async () => {
    await twoGenerations('totals');
    await query(url, `DELETE FROM ${T}.generations WHERE session_id = $1 AND generation = 2`, ['totals']);
    const bot = await tempDir('bot-totals-next');
    await writeSession(bot, { preKeys: 4 });
    assert.equal((await runCli(['backup', '--dir', bot, '--session', 'totals', '--allow-replace'], { env })).code, 0);
    const [row] = await query<{ total_files: number; total_bytes: string }>(
      url,
      `SELECT total_files, total_bytes FROM ${T}.generations WHERE session_id = $1 ORDER BY generation DESC LIMIT 1`,
      ['totals'],
    );
    const [rows] = await query<{ files: string; bytes: string }>(
      url,
      `SELECT count(*) AS files, sum(size) AS bytes FROM ${T}.files WHERE session_id = $1 AND generation_to IS NULL`,
      ['totals'],
    );
    assert.deepEqual([Number(row!.total_files), Number(row!.total_bytes)], [Number(rows!.files), Number(rows!.bytes)]);
  });

  it('the listing of every session flags damage the indexes show; a sound session shows none', async () => {
    await twoGenerations('sound');
    const status = await runCli(['status'], { env });
    assert.match(status.stdout, /^row-deleted +2 +DAMAGED /m);
    assert.match(status.stdout, /^moved-back +1 +DAMAGED /m);
    assert.doesNotMatch(status.stdout, /^sound .*DAMAGED/m);
    assert.doesNotMatch(status.stdout, /session sound:/);
    const json = JSON.parse((await runCli(['status', '--json'], { env })).stdout);
    assert.equal(json.sessions.find((s: { session_id: string }) => s.session_id === 'sound').damage, undefined);
    assert.equal((await runCli(['verify', '--session', 'sound'], { env })).code, 0);
  });

  it('restore --sessions-dir fails with 4 for a damaged session, even one whose head was set to 0', async () => {
    for (const id of ['fleet-a', 'fleet-b', 'fleet-ok']) await twoGenerations(id);
    await query(url, `DELETE FROM ${T}.generations WHERE session_id = 'fleet-a' AND generation = 2`);
    await query(url, `UPDATE ${T}.sessions SET head_generation = 0 WHERE session_id = 'fleet-b'`);
    const parent = await tempDir('fleet');
    const result = await runCli(['restore', '--sessions-dir', parent, '--session-prefix', 'fleet-'], { env });
    assert.equal(result.code, 4, result.stdout);
    const text = messages(result.stdout);
    assert.match(text, /session fleet-a could not be restored: the head of session fleet-a does not add up/);
    assert.match(text, /session fleet-b could not be restored: the head of session fleet-b does not add up: generation 2 is stored past/);
    assert.match(text, /1 restored, 0 already logged in, 0 empty, 0 removed \(not restored\), 2 failed/);
  });

  it('an older generation that verifies is named, and restoring it explicitly works', async () => {
    const first = await twoGenerations('way-out');
    await query(url, `DELETE FROM ${T}.generations WHERE session_id = $1 AND generation = 2`, ['way-out']);
    const dir = path.join(await tempDir('way-out'), 'auth_info');
    const refused = await runCli(['restore', '--dir', dir, '--session', 'way-out'], { env });
    assert.equal(refused.code, 4);
    assert.match(messages(refused.stdout), /Generation 1 \(.*\) verifies: restore it with --generation 1/);
    const older = await runCli(['restore', '--dir', dir, '--session', 'way-out', '--generation', '1'], { env });
    assert.equal(older.code, 0, older.stdout);
    assert.deepEqual(await readTree(dir), first);
  });
});
