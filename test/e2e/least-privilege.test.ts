// The least-privilege SQL of docs/security.md, each block run as written (a dedicated database, a shared one, the
// one-off grants of import-legacy), then the whole round trip as that role: not a superuser, no CREATE
// on the database, owner of its schema only; in the dedicated database no rights on public at all.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { adminQuery, freshDatabase } from '../support/db.js';
import { query, withClient } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { REPO } from '../../harness/paths.js';
import { startService, waitFor } from '../../harness/sidecar.js';

/** The SQL blocks of docs/security.md's "Least-privilege database role" section: dedicated, shared, import-legacy grants. */
async function readmeSql(): Promise<string[]> {
  const page = await readFile(path.join(REPO, 'docs', 'security.md'), 'utf8');
  const from = page.indexOf('\n## Least-privilege database role\n');
  assert.notEqual(from, -1, 'docs/security.md has a "Least-privilege database role" section');
  const section = page.slice(from, page.indexOf('\n## ', from + 1));
  const blocks = [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!);
  assert.equal(blocks.length, 3, 'docs/security.md has the dedicated, shared and import-legacy SQL');
  return blocks;
}

const LEGACY_DDL = `CREATE TABLE public.whatsapp_sessions (id SERIAL PRIMARY KEY, session_id VARCHAR(100) DEFAULT 'default' UNIQUE,
  session_data JSONB NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`;

const [dedicatedSql, sharedSql, legacySql] = await readmeSql();

for (const [kind, readmeBlock] of [
  ['dedicated', dedicatedSql!],
  ['shared', sharedSql!],
] as const) {
  describe(`least-privilege role in a ${kind} database`, async () => {
    const adminUrl = await freshDatabase(`lp_${kind}`);
    const database = new URL(adminUrl).pathname.slice(1);
    const role = `bk_role_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    const asRole = (sql: string) =>
      sql
        .replace(/\b(ROLE|TO|FROM|AUTHORIZATION) baileys_keeper\b/g, `$1 ${role}`)
        .replace(/\bDATABASE bots\b/g, `DATABASE "${database}"`)
        .replace("'change-me'", `'${password}'`);
    await withClient(adminUrl, (client) => client.query(asRole(readmeBlock)));
    after(async () => {
      await adminQuery(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await adminQuery(`DROP ROLE IF EXISTS ${role}`);
    });
    const roleUrl = new URL(adminUrl);
    roleUrl.username = role;
    roleUrl.password = password;
    const key = randomBytes(32).toString('base64');
    const env = (extra: Record<string, string | undefined> = {}) =>
      cliEnv(roleUrl.toString(), { KEEPER_SESSION_ID: 'lp', KEEPER_ENCRYPTION_KEY: key, ...extra });
    const rightsOf = async () =>
      (
        await query<Record<string, boolean>>(
          adminUrl,
          `SELECT r.rolsuper AS superuser, r.rolcreatedb AS createdb, r.rolcreaterole AS createrole,
                  has_database_privilege($1, current_database(), 'CREATE') AS create_schema,
                  has_database_privilege($1, current_database(), 'TEMP') AS temp,
                  has_schema_privilege($1, 'public', 'USAGE') AS public_usage,
                  has_schema_privilege($1, 'public', 'CREATE') AS public_create
             FROM pg_roles r WHERE r.rolname = $1`,
          [role],
        )
      )[0];

    it('the role has no rights beyond its schema (and, shared, what PUBLIC keeps)', async () => {
      const none = {
        superuser: false,
        createdb: false,
        createrole: false,
        create_schema: false,
        temp: false,
        public_usage: false,
        public_create: false,
      };
      // In a shared database PUBLIC is left alone: its TEMP and USAGE on public (PostgreSQL 15+: no CREATE) still apply.
      assert.deepEqual(await rightsOf(), kind === 'dedicated' ? none : { ...none, temp: true, public_usage: true });
      const [others] = await query<{ connect: boolean }>(
        adminUrl,
        "SELECT has_database_privilege('public', current_database(), 'CONNECT') AS connect",
      );
      assert.equal(others!.connect, kind === 'shared', 'only the dedicated block touches what every other role may do');
    });

    it('runs migrate, backup, sidecar, status, verify, restore, export, import, rekey and delete as that role', async () => {
      const run = async (args: string[], extra: Record<string, string | undefined> = {}, options: { input?: Buffer } = {}) => {
        const result = await runCli(args, { env: env(extra), ...options });
        assert.equal(result.code, 0, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
        return result;
      };
      await run(['migrate']);
      const owners = await query<{ tableowner: string }>(
        adminUrl,
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'baileys_keeper'",
      );
      assert.deepEqual(owners, [{ tableowner: role }]);

      const dir = await tempDir('lp-bot');
      const auth = await writeSession(dir, { preKeys: 5 });
      await run(['backup', '--dir', dir]);
      const service = await startService(['sidecar', '--dir', dir], env({ KEEPER_DEBOUNCE_MS: '100', KEEPER_MAX_DELAY_MS: '500' }));
      try {
        await auth.state.keys.set({ 'pre-key': { '9': Curve.generateKeyPair() } });
        await waitFor(
          async () => ((await service.metric('baileys_keeper_generation')) >= 2 ? true : null),
          30_000,
          () => service.output.join('\n'),
          service.exited,
        );
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
      await run(['rekey'], {
        KEEPER_ENCRYPTION_KEY: undefined,
        KEEPER_ENCRYPTION_KEYS: `next:${randomBytes(32).toString('base64')},first:${key}`,
      });
      await run(['delete', '--session', 'lp-copy', '--yes']);
    });

    it('a schema the role may not create is reported with the SQL that creates it', async () => {
      const result = await runCli(['migrate', '--schema', 'elsewhere'], { env: env() });
      assert.equal(result.code, 2);
      assert.match(
        messages(result.stderr),
        /schema elsewhere does not exist and this database role may not create it: as an administrator run CREATE SCHEMA "elsewhere" AUTHORIZATION/,
      );
    });

    it("import-legacy reads the Flask session API's table in public with the one-off grants of docs/security.md, which are then taken back", async () => {
      const bot = await tempDir(`lp-legacy-${kind}`);
      await writeSession(bot, { preKeys: 2 });
      await query(adminUrl, LEGACY_DDL);
      await query(adminUrl, "INSERT INTO public.whatsapp_sessions (session_id, session_data) VALUES ('legacy', $1)", [
        JSON.stringify(Object.fromEntries(await readTree(bot))),
      ]);
      const denied = await runCli(['import-legacy', '--all'], { env: env() });
      assert.notEqual(denied.code, 0, "without the grants the role cannot read the Flask session API's table");
      const [grant, revoke] = legacySql!.split(/^-- baileys-keeper import-legacy.*$/m);
      await withClient(adminUrl, (client) => client.query(asRole(grant!)));
      const imported = await runCli(['import-legacy', '--all'], { env: env() });
      assert.equal(imported.code, 0, imported.stdout + imported.stderr);
      const target = await tempDir(`lp-legacy-restored-${kind}`);
      assert.equal((await runCli(['restore', '--session', 'legacy', '--dir', target], { env: env() })).code, 0);
      assert.deepEqual(await readTree(target), await readTree(bot));
      await withClient(adminUrl, (client) => client.query(asRole(revoke!)));
      const [table] = await query<{ select: boolean }>(
        adminUrl,
        "SELECT has_table_privilege($1, 'public.whatsapp_sessions', 'SELECT') AS select",
        [role],
      );
      assert.equal(table!.select, false);
      assert.equal((await rightsOf())!['public_usage'], kind === 'shared', 'USAGE on public is back to what the block gave');
    });
  });
}
