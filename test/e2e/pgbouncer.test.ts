// Behind a real PgBouncer in transaction mode (the README says it works; this proves it): three
// migrators at once, a backup, a sidecar under a churning Baileys bot, and a restore, all through the
// pooler. PgBouncer's Debian package is installed by CI, which sets KEEPER_TEST_REQUIRE_PGBOUNCER=1 so
// the test cannot silently skip there.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MIGRATIONS } from '../../src/generated/migrations.js';
import { writeSession } from '../../harness/baileys.js';
import { ChurnBot } from '../../harness/churn.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { adminQuery, adminUrl } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { CHURN_BOT } from '../../harness/paths.js';
import { PGBOUNCER, startPgBouncer, type PgBouncer } from '../../harness/pgbouncer.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';

const required = process.env['KEEPER_TEST_REQUIRE_PGBOUNCER'] === '1';

describe('behind PgBouncer in transaction mode', {
  skip: !PGBOUNCER && !required ? 'pgbouncer is not installed (CI installs it and runs this file)' : false,
}, () => {
  // Fewer server connections (3) than clients, so transactions of different processes share them.
  let bouncer: PgBouncer | null = null;
  let direct = ''; // the database itself, for the checks
  let pooled = ''; // the same database through PgBouncer
  const suffix = randomBytes(3).toString('hex');
  const role = `keeper_bouncer_${suffix}`;
  const database = `bk_pgbouncer_${suffix}`;
  const password = randomBytes(12).toString('base64url');

  before(async () => {
    assert.ok(PGBOUNCER, 'KEEPER_TEST_REQUIRE_PGBOUNCER=1 but there is no pgbouncer');
    const server = new URL(adminUrl());
    await adminQuery(`CREATE DATABASE ${database}`);
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await adminQuery(`GRANT ALL ON DATABASE "${database}" TO ${role}`);
    direct = `postgres://${role}:${password}@${server.hostname}:${server.port}/${database}`;

    bouncer = await startPgBouncer(direct, { poolSize: 3 });
    pooled = bouncer.url;
    const version = spawnSync(PGBOUNCER!, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
    assert.ok(version, 'pgbouncer reports its version');
  });

  after(async () => {
    await bouncer?.stop();
    if (process.env['KEEPER_TEST_KEEP_DB'] !== '1') {
      await adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await adminQuery(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('migrates from three processes at once: every migration applied exactly once', async () => {
    const env = cliEnv(pooled, { KEEPER_SCHEMA: 'bk_three' });
    const results = await Promise.all([1, 2, 3].map(() => runCli(['migrate'], { env })));
    for (const result of results) assert.equal(result.code, 0, `${result.stderr}\n${bouncer!.log()}`);
    assert.match(bouncer!.log(), new RegExp(`login attempt: db=${database} user=${role}`), 'the clients went through PgBouncer');
    const rows = await query<{ version: number }>(direct, 'SELECT version FROM bk_three.migrations ORDER BY version');
    assert.deepEqual(
      rows.map((row) => row.version),
      MIGRATIONS.map((migration) => migration.version),
    );
  });

  it('backs up and restores through the pooler', async () => {
    const env = cliEnv(pooled, { KEEPER_SESSION_ID: 'pooled-backup' });
    const dir = await tempDir('pgbouncer-bot');
    await writeSession(dir, { preKeys: 10 });
    const backup = await runCli(['backup', '--dir', dir], { env });
    assert.equal(backup.code, 0, backup.stderr);
    assert.deepEqual(diffTrees(await storedHead(direct, 'pooled-backup'), await readTree(dir)), []);
    const target = await tempDir('pgbouncer-restored');
    const restore = await runCli(['restore', '--dir', target], { env });
    assert.equal(restore.code, 0, restore.stdout);
    assert.deepEqual(await readTree(target), await readTree(dir));
  });

  it('runs a sidecar under a churning Baileys bot through the pooler; the stored head equals the directory, and restores', async () => {
    const env = cliEnv(pooled);
    const dir = await tempDir('pgbouncer-live');
    await (await ChurnBot.open(dir, { seed: 5 })).close();
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'pooled-live', '--shutdown-quiet', '200', '--debounce', '200', '--max-delay', '1000'],
      env,
    );
    try {
      await waitFor(
        async () => ((await service.get('/readyz')).status === 200 ? true : null),
        15_000,
        () => service.output.join('\n'),
        service.exited,
      );
      const bot = spawn(process.execPath, [CHURN_BOT, dir, '--rate', '25', '--seed', '13'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      bot.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await waitFor(() => (out.includes('ready') ? true : null), 20_000);
      await new Promise((resolve) => setTimeout(resolve, 5000));
      bot.kill('SIGTERM');
      await new Promise((resolve) => bot.once('exit', resolve));
      assert.ok(Number(/stopped (\d+)/.exec(out)?.[1] ?? 0) > 20, `the bot churned: ${out}`);
      await waitFor(async () => ((await service.metric('baileys_keeper_backup_lag_seconds')) === 0 ? true : null), 15_000);
      assert.deepEqual(diffTrees(await storedHead(direct, 'pooled-live'), await readTree(dir)), [], 'head equals the directory');
      assert.ok((await service.metric('baileys_keeper_backups_total{result="success"}')) >= 2, 'backed up during the churn');
    } finally {
      assert.equal((await service.stop()).code, 0, service.output.join('\n'));
    }
    const restored = await tempDir('pgbouncer-live-restored');
    const restore = await runCli(['restore', '--dir', restored, '--session', 'pooled-live'], { env });
    assert.equal(restore.code, 0, restore.stdout);
    assert.deepEqual(await readTree(restored), await readTree(dir));
  });
});
