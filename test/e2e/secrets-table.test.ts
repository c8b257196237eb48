// No secret in any output, whatever shape the database settings take (issue 14): every way of giving
// the password × every command (and restore's retry lines against a closed port, the sidecar's HTTP
// answers, --help), at log level debug, grepping everything for the password, the API token and the
// encryption key — whole, percent-encoded, and any piece of 4 or more characters.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli, type CliResult } from '../../harness/cli.js';
import { adminQuery, freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { freePort } from '../support/net.js';
import { secretPieces } from '../support/secrets.js';
import { startService, waitFor } from '../../harness/sidecar.js';

/** A password without special characters, and one with every character a URL or key=value gives a meaning to. */
const PLAIN_PASSWORD = 'Kq7vXzR3wJt9LmPb';
const SPECIAL_PASSWORD = "Q#vX@%Kz/?Jw:!Rq'\\ Yb";

interface Shape {
  name: string;
  /** The environment that gives the database settings, for a server on `port`. */
  env(port: number): Record<string, string | undefined>;
  /** The password this shape carries (what must never be printed). */
  password: string;
  /** Exit code of a command that should work (64 when the shape is refused). */
  ok: number;
}

describe('no secret in any output, for every shape of database settings', async () => {
  const url = new URL(await freshDatabase('secrets_table'));
  const database = url.pathname.slice(1);
  const suffix = randomBytes(3).toString('hex');
  const plainRole = `keeper_plain_${suffix}`;
  const specialRole = `keeper_special_${suffix}`;
  for (const [role, password] of [
    [plainRole, PLAIN_PASSWORD],
    [specialRole, SPECIAL_PASSWORD],
  ] as const) {
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    await adminQuery(`GRANT ALL ON DATABASE "${database}" TO ${role}`);
  }
  after(async () => {
    // Registered after freshDatabase's hook, so the database (and what the roles own in it) is gone by now.
    for (const role of [plainRole, specialRole]) await adminQuery(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  });

  const token = randomBytes(24).toString('hex');
  const key = randomBytes(32);
  const pgpassDir = await tempDir('secrets-pgpass');
  const pgpass = path.join(pgpassDir, 'pgpass');
  const escaped = SPECIAL_PASSWORD.replace(/[:\\]/g, '\\$&');
  await writeFile(pgpass, `${url.hostname}:*:${database}:${specialRole}:${escaped}\n`, { mode: 0o600 });
  const host = url.hostname;
  const at = (role: string, password: string, port: number) =>
    `postgres://${role}:${encodeURIComponent(password)}@${host}:${port}/${database}`;

  const shapes: Shape[] = [
    {
      name: 'URL, plain password',
      password: PLAIN_PASSWORD,
      ok: 0,
      env: (port) => ({ DATABASE_URL: at(plainRole, PLAIN_PASSWORD, port) }),
    },
    {
      name: 'URL, percent-encoded special characters',
      password: SPECIAL_PASSWORD,
      ok: 0,
      env: (port) => ({ DATABASE_URL: at(specialRole, SPECIAL_PASSWORD, port) }),
    },
    {
      name: 'URL, unencoded special characters',
      password: SPECIAL_PASSWORD,
      ok: 64,
      env: (port) => ({ DATABASE_URL: `postgres://${specialRole}:${SPECIAL_PASSWORD}@${host}:${port}/${database}` }),
    },
    {
      name: 'URL, password as a parameter',
      password: SPECIAL_PASSWORD,
      ok: 0,
      env: (port) => ({
        DATABASE_URL: `postgres://${specialRole}@${host}:${port}/${database}?password=${encodeURIComponent(SPECIAL_PASSWORD)}`,
      }),
    },
    {
      name: 'key=value settings',
      password: SPECIAL_PASSWORD,
      ok: 0,
      env: (port) => ({
        DATABASE_URL: `host=${host} port=${port} dbname=${database} user=${specialRole} password='${SPECIAL_PASSWORD.replace(/['\\]/g, '\\$&')}'`,
      }),
    },
    {
      name: 'PG* variables with PGPASSWORD',
      password: SPECIAL_PASSWORD,
      ok: 0,
      env: (port) => ({
        DATABASE_URL: undefined,
        PGHOST: host,
        PGPORT: String(port),
        PGDATABASE: database,
        PGUSER: specialRole,
        PGPASSWORD: SPECIAL_PASSWORD,
      }),
    },
    {
      name: 'URL without password, pgpass file',
      password: SPECIAL_PASSWORD,
      ok: 0,
      env: (port) => ({ DATABASE_URL: `postgres://${specialRole}@${host}:${port}/${database}`, PGPASSFILE: pgpass }),
    },
  ];

  const secretsOf = (shape: Shape): Record<string, string[]> => ({
    'database password': [
      shape.password,
      encodeURIComponent(shape.password),
      ...secretPieces(shape.password),
      ...secretPieces(encodeURIComponent(shape.password)),
    ],
    'API token': [token, ...secretPieces(token, 10)],
    'encryption key': [key.toString('base64'), key.toString('hex'), key.toString('base64').slice(0, 12)],
  });

  /** Runs every command for one shape; returns each command's output. */
  async function everyCommand(shape: Shape, index: number): Promise<Map<string, string>> {
    const outputs = new Map<string, string>();
    const session = `secrets-${index}`;
    const schema = shape.password === PLAIN_PASSWORD ? 'bk_secrets_plain' : 'bk_secrets_special';
    const env = (port: number, extra: Record<string, string> = {}) =>
      cliEnv('', {
        ...shape.env(port),
        KEEPER_LOG_LEVEL: 'debug',
        KEEPER_SESSION_ID: session,
        KEEPER_SCHEMA: schema,
        KEEPER_ENCRYPTION_KEY: key.toString('base64'),
        ...extra,
      });
    const port = Number(url.port);
    const record = (name: string, result: CliResult, expected: number) => {
      outputs.set(name, result.stdout + result.stderr);
      assert.equal(result.code, expected, `${shape.name}, ${name}:\n${result.stdout}\n${result.stderr}`);
    };
    const dir = await tempDir(`secrets-table-${index}`);
    await writeSession(dir, { preKeys: 2 });

    const unreachable = await runCli(['restore', '--dir', await tempDir('secrets-unreachable'), '--wait', '2'], {
      env: env(await freePort()),
    });
    record('restore (closed port, retrying)', unreachable, shape.ok === 0 ? 2 : shape.ok);
    if (shape.ok === 0) assert.match(unreachable.stdout, /database unreachable, retrying/, 'the retry lines are there to be checked');
    record('migrate', await runCli(['migrate'], { env: env(port) }), shape.ok);
    record('backup', await runCli(['backup', '--dir', dir], { env: env(port) }), shape.ok);
    record('status', await runCli(['status'], { env: env(port) }), shape.ok);
    record('history', await runCli(['history'], { env: env(port) }), shape.ok);
    record('restore', await runCli(['restore', '--dir', await tempDir('secrets-restored')], { env: env(port) }), shape.ok);
    record('status --help', await runCli(['status', '--help'], { env: env(port) }), 0);
    if (shape.ok !== 0) {
      record('sidecar', await runCli(['sidecar', '--dir', dir, '--listen', '127.0.0.1:0'], { env: env(port) }), shape.ok);
      return outputs;
    }
    const sidecar = await startService(['sidecar', '--dir', dir], env(port, { KEEPER_API_TOKEN: token }));
    const answers: string[] = [];
    try {
      await waitFor(
        async () => ((await sidecar.get('/readyz')).status === 200 ? true : null),
        30_000,
        () => sidecar.output.join('\n'),
        sidecar.exited,
      );
      for (const route of ['/readyz', '/healthz', '/metrics']) answers.push((await sidecar.get(route)).text);
      const status = await fetch(`http://127.0.0.1:${sidecar.port}/api/session/status`, { headers: { authorization: `Bearer ${token}` } });
      answers.push(await status.text());
    } finally {
      const ended = await sidecar.stop('SIGTERM');
      outputs.set('sidecar (SIGTERM) and its HTTP answers', [...sidecar.output, ...answers].join('\n'));
      assert.equal(ended.code, 0, sidecar.output.join('\n'));
    }
    return outputs;
  }

  it('prints no password, token or key for any shape, command or retry line', async () => {
    const results = await Promise.all(shapes.map((shape, index) => everyCommand(shape, index)));
    const leaks: string[] = [];
    for (const [index, shape] of shapes.entries()) {
      for (const [command, output] of results[index]!) {
        for (const [label, forms] of Object.entries(secretsOf(shape))) {
          const found = forms.find((form) => output.includes(form));
          if (found !== undefined) leaks.push(`${shape.name} × ${command}: ${label} (${JSON.stringify(found)})`);
        }
      }
    }
    assert.deepEqual(leaks, []);
  });
});
