// Where the database is, as README "Database connection" says: --database-url / DATABASE_URL (URI or libpq key=value), else the
// PG* variables, else the embedded default; and the exit code for each way that can go wrong.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { CLI } from '../../harness/paths.js';

/** The PG* variables that say what `url` says (a Bitnami or CloudNativePG Secret has them as keys). */
function variablesFor(url: string): Record<string, string | undefined> {
  const parsed = new URL(url);
  return {
    DATABASE_URL: undefined,
    PGHOST: parsed.hostname,
    PGPORT: parsed.port,
    PGDATABASE: parsed.pathname.slice(1),
    PGUSER: decodeURIComponent(parsed.username),
    PGPASSWORD: decodeURIComponent(parsed.password),
  };
}

describe('database configuration', async () => {
  const url = await freshDatabase('dbconfig');

  it('--database-url notaurl is a usage error (64), not a failed host lookup', async () => {
    const result = await runCli(['status', '--database-url', 'notaurl'], { env: cliEnv(url) });
    assert.equal(result.code, 64, result.stderr);
    assert.match(result.stderr, /--database-url is not a PostgreSQL connection string: use postgres:\/\/user:password@host:5432\/dbname/);
    assert.doesNotMatch(result.stderr, /ENOTFOUND|getaddrinfo/);
  });

  it('no database configured and a read-only working directory: exit 2, saying to set DATABASE_URL or --data-dir', async () => {
    const cwd = await tempDir('read-only-cwd');
    await chmod(cwd, 0o555);
    // root may write anywhere a mode allows, so as root the working directory is a read-only tmpfs (as a
    // container's read-only root filesystem is); as anyone else, mode 0555 is enough.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', cwd], { encoding: 'utf8' });
      assert.equal(mounted.status, 0, `cannot mount a read-only tmpfs as root: ${mounted.stderr}`);
    }
    const env = cliEnv('', { DATABASE_URL: undefined, HOME: cwd });
    const child = spawn(process.execPath, [CLI, 'status'], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Unmounted before the temporary directory is removed (a mount point cannot be).
    const result = await collect(child).finally(() => asRoot && spawnSync('umount', [cwd]));
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(
      messages(result.stderr),
      /embedded PostgreSQL cannot create its data dir .*\.baileys-keeper \((EACCES|EROFS)\): set DATABASE_URL .* or --data-dir/,
    );
    assert.doesNotMatch(result.stderr, /unexpected error/);
  });

  it(
    'the PG* variables alone reach the server (a plaintext one: ' + "libpq's default prefer falls back), with no embedded server started",
    async () => {
      const env = cliEnv('', { ...variablesFor(url), KEEPER_SESSION_ID: 'from-variables' });
      const dir = await tempDir('variables-bot');
      await writeSession(dir, { preKeys: 2 });
      const backup = await runCli(['backup', '--dir', dir], { env });
      assert.equal(backup.code, 0, backup.stderr);
      assert.doesNotMatch(backup.stderr, /embedded/);
      const status = await runCli(['status'], { env: cliEnv(url) });
      assert.match(status.stdout, /^from-variables +1 /m, 'stored in the database the variables name');
    },
  );

  it("libpq's key=value settings work as DATABASE_URL", async () => {
    const parsed = new URL(url);
    const conninfo =
      `host=${parsed.hostname} port=${parsed.port} dbname=${parsed.pathname.slice(1)} ` +
      `user=${decodeURIComponent(parsed.username)} ` +
      `password='${decodeURIComponent(parsed.password).replace(/['\\]/g, '\\$&')}' sslmode=disable`;
    const env = cliEnv(conninfo, { KEEPER_SESSION_ID: 'conninfo' });
    const dir = await tempDir('conninfo-bot');
    await writeSession(dir, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', dir], { env })).code, 0);
    const target = await tempDir('conninfo-restored');
    assert.equal((await runCli(['restore', '--dir', target], { env })).code, 0);
    assert.deepEqual(await readTree(target), await readTree(dir));
  });

  it('a server asking for a password when none is configured: exit 2 saying where to put it', async () => {
    const result = await runCli(['status'], {
      env: cliEnv('', { ...variablesFor(url), PGPASSWORD: undefined, PGPASSFILE: '/nonexistent/pgpass' }),
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      messages(result.stderr),
      /asks for a password, but none is configured: put it in DATABASE_URL .*PGPASSWORD or a password file/,
    );
  });

  it('an unsupported parameter, or a libpq variable the keeper does not support, is refused by name (64)', async () => {
    const withParameter = new URL(url);
    withParameter.searchParams.set('keepalives_idle', '30');
    const parameter = await runCli(['status'], { env: cliEnv(withParameter.toString()) });
    assert.equal(parameter.code, 64);
    assert.match(parameter.stderr, /the parameter keepalives_idle is not supported/);
    const variable = await runCli(['status'], { env: cliEnv(url, { PGSERVICE: 'prod' }) });
    assert.equal(variable.code, 64);
    assert.match(variable.stderr, /PGSERVICE is set, but the keeper does not support it/);
  });
});
