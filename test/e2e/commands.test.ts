// status, history, verify, delete and migrate through the CLI, including 8 migrators at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { MIGRATIONS } from '../../src/generated/migrations.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';

describe('query and admin commands', async () => {
  it('8 concurrent migrate processes on an empty database all exit 0 and apply each migration once', async () => {
    const env = cliEnv(await freshDatabase('migrate'));
    const results = await Promise.all(Array.from({ length: 8 }, () => runCli(['migrate', '--json'], { env })));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const applied = results.flatMap((result) => JSON.parse(result.stdout).applied as string[]);
    // Every migration of sql/ (embedded at build time), whatever their number.
    const all = MIGRATIONS.map((migration) => migration.name).sort();
    assert.ok(all.includes('0001_init.sql'));
    assert.deepEqual(applied.sort(), all, 'exactly one process applied each migration');
    const rows = await query(env['DATABASE_URL']!, 'SELECT version FROM baileys_keeper.migrations');
    assert.equal(rows.length, all.length);
  });

  const url = await freshDatabase('commands');
  const env = cliEnv(url);
  const dir = await tempDir('bot');
  await writeSession(dir, { preKeys: 4 });
  const files = (await readTree(dir)).size;
  assert.equal((await runCli(['backup', '--dir', dir, '--session', 'alpha'], { env })).code, 0);

  it('status lists sessions with a masked phone number, as a table and as JSON', async () => {
    const text = await runCli(['status'], { env });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^SESSION +GENERATION +LAST BACKUP +FILES +BYTES +REGISTERED +PROTECTED +LEASE HOLDER$/m);
    // Stored by a one-shot backup, watched by no keeper: not protected, and the table says why.
    assert.match(text.stdout, new RegExp(`^alpha +1 +\\S+ +${files} +.* yes \\(5511\\*+4321\\) +no \\(not_watched since \\S+\\) +-$`, 'm'));
    assert.doesNotMatch(text.stdout, /987654321/);
    const json = JSON.parse((await runCli(['status', '--json', '--session', 'alpha'], { env })).stdout);
    assert.deepEqual(Object.keys(json.sessions[0]).sort(), [
      'bytes',
      'files',
      'generation',
      'lease_holder',
      'logged_out_at',
      'phone',
      'protected',
      'reasons',
      'registered',
      'removed',
      'session_id',
      'since',
      'state',
      'updated_at',
    ]);
    assert.equal(json.sessions[0].registered, true);
    assert.equal(json.sessions[0].state, 'paired');
    assert.deepEqual([json.sessions[0].protected, json.sessions[0].reasons], [false, ['not_watched']]);
    assert.equal((await runCli(['status', '--session', 'nobody'], { env })).code, 3);
  });

  it('history lists generations with what changed', async () => {
    const json = JSON.parse((await runCli(['history', '--session', 'alpha', '--json'], { env })).stdout);
    assert.equal(json.generations.length, 1);
    assert.deepEqual(
      { ...json.generations[0], created_at: 'x' },
      {
        generation: 1,
        created_at: 'x',
        files_changed: files,
        files_deleted: 0,
        total_files: files,
        total_bytes: json.generations[0].total_bytes,
        reason: 'backup',
      },
    );
  });

  it('verify passes on sound data', async () => {
    const result = await runCli(['verify', '--session', 'alpha'], { env });
    assert.equal(result.code, 0);
    assert.match(result.stdout, new RegExp(`ok: ${files} stored file versions of session alpha match their checksums`));
  });

  it('delete needs --yes, refuses while a sidecar holds the lease, then deletes everything', async () => {
    const noYes = await runCli(['delete', '--session', 'alpha'], { env });
    assert.equal(noYes.code, 64);
    assert.match(noYes.stderr, /add --yes/);
    await query(
      url,
      "UPDATE baileys_keeper.sessions SET lease_owner = 'pod-1:7', lease_token = lease_token " +
        "+ 1, lease_expires_at = now() + interval '1 minute' WHERE session_id = 'alpha'",
    );
    const busy = await runCli(['delete', '--session', 'alpha', '--yes'], { env });
    assert.equal(busy.code, 1);
    assert.match(messages(busy.stderr), /in use by pod-1:7/);
    const backupWhileLeased = await runCli(['backup', '--dir', dir, '--session', 'alpha'], { env });
    assert.equal(backupWhileLeased.code, 1);
    assert.match(messages(backupWhileLeased.stderr), /being written by pod-1:7/);
    await query(url, "UPDATE baileys_keeper.sessions SET lease_owner = NULL, lease_expires_at = NULL WHERE session_id = 'alpha'");
    const deleted = await runCli(['delete', '--session', 'alpha', '--yes'], { env });
    assert.equal(deleted.code, 0);
    for (const table of ['sessions', 'generations', 'files']) {
      assert.deepEqual(await query(url, `SELECT 1 FROM baileys_keeper.${table} WHERE session_id = 'alpha'`), [], table);
    }
    assert.equal((await runCli(['delete', '--session', 'alpha', '--yes'], { env })).code, 3);
  });

  it('a backup of a missing directory says so (exit 64)', async () => {
    const result = await runCli(['backup', '--dir', '/nonexistent/auth_info'], { env });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /directory \/nonexistent\/auth_info does not exist/);
  });

  it('refuses over the CLI to replace a registered session with unpaired creds (exit 1), and --allow-replace overrides', async () => {
    const fresh = await tempDir('unpaired');
    await writeSession(fresh, { preKeys: 1, registered: false });
    assert.equal((await runCli(['backup', '--dir', dir, '--session', 'beta'], { env })).code, 0);
    const refused = await runCli(['backup', '--dir', fresh, '--session', 'beta'], { env });
    assert.equal(refused.code, 1);
    assert.match(messages(refused.stderr), /refused: the stored session is registered to 5511\*+4321.*--allow-replace/);
    const allowed = await runCli(['backup', '--dir', fresh, '--session', 'beta'], { env: { ...env, KEEPER_ALLOW_REPLACE: 'true' } });
    assert.equal(allowed.code, 0, allowed.stderr);
  });
});
