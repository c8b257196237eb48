// The README's least-privilege SQL, run as written, then the whole round trip as that role: not a
// superuser, no CREATE on the database, no rights on public, owner of its schema only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { writeSession } from '../support/baileys.js';
import { cliEnv, messages, runCli } from '../support/cli.js';
import { adminQuery, freshDatabase, query, withClient } from '../support/db.js';
import { readTree, tempDir } from '../support/fs.js';
import { REPO } from '../support/paths.js';
import { startService, waitFor } from '../support/sidecar.js';

/** The SQL block of the README's "Least-privilege database role" section. */
async function readmeSql(): Promise<string> {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Least-privilege database role'));
  const match = /```sql\n([\s\S]*?)```/.exec(section);
  assert.ok(match, 'the README has the SQL');
  return match[1]!;
}

describe('least-privilege role', async () => {
  const adminUrl = await freshDatabase('leastpriv');
  const database = new URL(adminUrl).pathname.slice(1);
  const role = `bk_role_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const sql = (await readmeSql())
    .replace(/\b(ROLE|TO|AUTHORIZATION) baileys_keeper\b/g, `$1 ${role}`)
    .replace(/\bDATABASE bots\b/g, `DATABASE "${database}"`)
    .replace("'change-me'", `'${password}'`);
  await withClient(adminUrl, (client) => client.query(sql));
  after(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });
  const roleUrl = new URL(adminUrl);
  roleUrl.username = role;
  roleUrl.password = password;
  const key = randomBytes(32).toString('base64');
  const env = (extra: Record<string, string> = {}) => cliEnv(roleUrl.toString(), { KEEPER_SESSION_ID: 'lp', KEEPER_ENCRYPTION_KEY: key, ...extra });

  it('the role has no rights beyond its schema', async () => {
    const [rights] = await query<Record<string, boolean>>(
      adminUrl,
      `SELECT r.rolsuper AS superuser, r.rolcreatedb AS createdb, r.rolcreaterole AS createrole,
              has_database_privilege($1, current_database(), 'CREATE') AS create_schema,
              has_database_privilege($1, current_database(), 'TEMP') AS temp,
              has_schema_privilege($1, 'public', 'USAGE') AS public_usage,
              has_schema_privilege($1, 'public', 'CREATE') AS public_create
         FROM pg_roles r WHERE r.rolname = $1`,
      [role],
    );
    assert.deepEqual(rights, { superuser: false, createdb: false, createrole: false, create_schema: false, temp: false, public_usage: false, public_create: false });
  });

  it('runs migrate, backup, sidecar, status, verify, restore, export, import, rekey and delete as that role', async () => {
    const run = async (args: string[], extra: Record<string, string> = {}, options: { input?: Buffer } = {}) => {
      const result = await runCli(args, { env: env(extra), ...options });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
      return result;
    };
    await run(['migrate']);
    const owners = await query<{ tableowner: string }>(adminUrl, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'baileys_keeper'");
    assert.deepEqual(owners, [{ tableowner: role }]);

    const dir = await tempDir('lp-bot');
    const auth = await writeSession(dir, { preKeys: 5 });
    await run(['backup', '--dir', dir]);
    const service = await startService(['sidecar', '--dir', dir], env({ KEEPER_DEBOUNCE_MS: '100', KEEPER_MAX_DELAY_MS: '500' }));
    try {
      await auth.state.keys.set({ 'pre-key': { '9': Curve.generateKeyPair() } });
      await waitFor(async () => ((await service.metric('baileys_keeper_generation')) >= 2 ? true : null), 30_000, () => service.output.join('\n'), service.exited);
    } finally {
      assert.equal((await service.stop()).code, 0, service.output.join('\n'));
    }
    assert.match((await run(['status'])).stdout, /^lp +2 /m);
    await run(['verify']);
    const target = await tempDir('lp-restored');
    await run(['restore', '--dir', target]);
    assert.deepEqual(await readTree(target), await readTree(dir));
    const tar = (await run(['export'])).stdoutBytes;
    await run(['import', '--session', 'lp-copy'], {}, { input: tar });
    await run(['rekey'], { KEEPER_ENCRYPTION_KEY: '', KEEPER_ENCRYPTION_KEYS: `next:${randomBytes(32).toString('base64')},first:${key}` });
    await run(['delete', '--session', 'lp-copy', '--yes']);
  });

  it('a schema the role may not create is reported with the SQL that creates it', async () => {
    const result = await runCli(['migrate', '--schema', 'elsewhere'], { env: env() });
    assert.equal(result.code, 2);
    assert.match(messages(result.stderr), /schema elsewhere does not exist and this database role may not create it: as an administrator run CREATE SCHEMA "elsewhere" AUTHORIZATION/);
  });
});
