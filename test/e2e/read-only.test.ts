// The commands that only read (status, history, verify, export) take the schema as it is: they never
// create or upgrade it, say when nothing is stored yet or when the schema is older than the keeper, and
// leave the database exactly as they found it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { migrate } from '../../src/db/migrate.js';
import { openDatabase } from '../../src/db/pool.js';
import { MIGRATIONS } from '../../src/generated/migrations.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';

const LATEST = Math.max(...MIGRATIONS.map((migration) => migration.version));

/** Every read-only command, for session `session`, writing an export under `dir`. */
const readers = (session: string, dir: string): string[][] => [
  ['status'],
  ['status', '--json'],
  ['status', '--session', session],
  ['history', '--session', session],
  ['verify', '--session', session],
  ['export', '--session', session, '--output', path.join(dir, 'x.tar')],
];

/** The whole content of the keeper's schema (its tables in name order, each table's rows), or null without one. */
async function fingerprint(url: string): Promise<string | null> {
  const tables = await query<{ name: string }>(
    url,
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'baileys_keeper' ORDER BY table_name",
  );
  const [schema] = await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'baileys_keeper'");
  if (schema!.n === 0) return null;
  const parts: string[] = [];
  for (const { name } of tables) {
    const [row] = await query<{ digest: string }>(
      url,
      `SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest FROM baileys_keeper."${name}" t`,
    );
    parts.push(`${name}:${row!.digest}`);
  }
  return parts.join(',');
}

describe('read-only commands and the schema', () => {
  it('with no schema: nothing is stored yet (status lists none, the others exit 3), and no schema is created', async () => {
    const url = await freshDatabase('read-none');
    const env = cliEnv(url);
    const dir = await tempDir('none');
    for (const args of readers('my-bot', dir)) {
      const result = await runCli(args, { env });
      const said = messages(result.stdout + result.stderr);
      assert.match(said, /nothing is stored yet: schema baileys_keeper does not exist in this database/, args.join(' '));
      if (args[0] === 'status' && args.length <= 2) {
        assert.equal(result.code, 0, `${args.join(' ')}: ${said}`);
        if (args[1] === '--json') assert.deepEqual(JSON.parse(result.stdout), { sessions: [] });
        else assert.match(result.stdout, /no sessions stored yet/);
      } else assert.equal(result.code, 3, `${args.join(' ')}: ${said}`);
    }
    assert.equal(await fingerprint(url), null, 'no schema was created');
  });

  it('with an empty schema an administrator made for the keeper: nothing is stored yet, and it stays empty', async () => {
    const url = await freshDatabase('read-empty');
    const env = cliEnv(url);
    await query(url, 'CREATE SCHEMA baileys_keeper');
    const status = await runCli(['status'], { env });
    assert.equal(status.code, 0, status.stderr);
    assert.match(messages(status.stderr), /nothing is stored yet: schema baileys_keeper holds no keeper tables in this database/);
    const history = await runCli(['history', '--session', 'my-bot'], { env });
    assert.equal(history.code, 3, history.stderr);
    assert.equal(await fingerprint(url), '', 'the schema has no tables still');
  });

  it('with a schema older than the keeper: says which versions and to run migrate, exit 1, and changes nothing', async () => {
    const url = await freshDatabase('read-old');
    const env = cliEnv(url);
    const old = LATEST - 2;
    const db = await openDatabase({ url, schema: 'baileys_keeper', log: testLog });
    try {
      await migrate(
        db,
        MIGRATIONS.filter((migration) => migration.version <= old),
      );
    } finally {
      await db.close();
    }
    const before = await fingerprint(url);
    const dir = await tempDir('old');
    for (const args of readers('my-bot', dir)) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(
        messages(result.stderr),
        new RegExp(`schema baileys_keeper is at version ${old}, this keeper needs ${LATEST}: run 'baileys-keeper migrate'`),
        args.join(' '),
      );
    }
    assert.equal(await fingerprint(url), before, 'the database is as it was');
    const [version] = await query<{ v: number }>(url, 'SELECT max(version)::int AS v FROM baileys_keeper.migrations');
    assert.equal(version!.v, old);
    // migrate brings it up to date, and the same commands then work.
    assert.equal((await runCli(['migrate'], { env })).code, 0);
    assert.equal((await runCli(['status'], { env })).code, 0);
  });

  it('with a current schema: they read and leave every row as it was', async () => {
    const url = await freshDatabase('read-current');
    const env = cliEnv(url);
    const bot = await tempDir('bot');
    await writeSession(bot, { preKeys: 3 });
    assert.equal((await runCli(['backup', '--dir', bot, '--session', 'my-bot'], { env })).code, 0);
    const before = await fingerprint(url);
    const dir = await tempDir('current');
    for (const args of readers('my-bot', dir)) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    }
    assert.equal(await fingerprint(url), before);
  });
});
