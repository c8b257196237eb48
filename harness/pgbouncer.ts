// A real PgBouncer in transaction mode in front of a PostgreSQL, for the tests and the bench: the Debian
// package's binary, started with a generated config (as `nobody` when run as root, which it refuses).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, portAccepts } from '../src/embedded-postgres.js';
import { waitFor } from './sidecar.js';

/** The pgbouncer binary, or null when it is not installed. */
export const PGBOUNCER: string | null =
  ['pgbouncer', '/usr/sbin/pgbouncer'].find((file) => spawnSync(file, ['--version']).status === 0) ?? null;
/** PgBouncer refuses to run as root; as root it runs as nobody. */
const NOBODY = 65534;

export interface PgBouncer {
  /** `direct` with PgBouncer's host and port. */
  url: string;
  port: number;
  /** What it printed so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in transaction mode for the database and role of `direct` (a URL with user and
 * password), at most `poolSize` server connections, and waits until it accepts connections.
 */
export async function startPgBouncer(direct: string, options: { poolSize: number; maxClients?: number }): Promise<PgBouncer> {
  if (!PGBOUNCER) throw new Error('pgbouncer is not installed (Debian: apt-get install pgbouncer)');
  const server = new URL(direct);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const database = decodeURIComponent(server.pathname.slice(1));
  const configDir = await mkdtemp(path.join(os.tmpdir(), 'bk-pgbouncer-'));
  await chmod(configDir, 0o755);
  const port = await freePort();
  const userlist = path.join(configDir, 'userlist.txt');
  await writeFile(userlist, `"${user}" "${password}"\n`, { mode: 0o644 });
  const ini = path.join(configDir, 'pgbouncer.ini');
  await writeFile(
    ini,
    [
      '[databases]',
      `${database} = host=${server.hostname} port=${server.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${userlist}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      `max_client_conn = ${options.maxClients ?? 200}`,
      'server_reset_query =',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn(PGBOUNCER, [ini], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await waitFor(
    async () => ((await portAccepts(port)) ? true : null),
    15_000,
    () => `pgbouncer did not start:\n${log}`,
    exited,
  );
  const pooled = new URL(direct);
  pooled.hostname = '127.0.0.1';
  pooled.port = String(port);
  return {
    url: pooled.toString(),
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      await rm(configDir, { recursive: true, force: true });
    },
  };
}
