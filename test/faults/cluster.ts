// The PostgreSQL servers of a fault suite: one shared server with a fresh database per run, and a
// private server, started on demand, that the scenarios allowed to kill PostgreSQL may SIGKILL and
// restart on the same port (only one run uses it at a time).
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { startEmbedded, type EmbeddedServer } from '../../src/embedded-postgres.js';
import { withClient } from '../../harness/db.js';

const log = pino({ level: process.env['TEST_LOG'] ?? 'silent' });
/** How long a killed server gets to come back (its orphaned backends must exit first), ms. */
const RESTART_TIMEOUT_MS = 60_000;

/** A server started from a private data dir, which a run may kill and restart. */
export class PrivateServer {
  private constructor(
    private readonly dataDir: string,
    private server: EmbeddedServer,
    readonly port: number,
  ) {}

  static async start(label: string): Promise<PrivateServer> {
    // World-traversable: as root the server runs as `postgres` and must reach it.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), `bk-faults-${label}-`));
    await chmod(dataDir, 0o755);
    const server = await startEmbedded(dataDir, log);
    return new PrivateServer(dataDir, server, server.port);
  }

  get url(): string {
    return this.server.url;
  }

  /** SIGKILLs the postmaster: no shutdown checkpoint, the next start runs crash recovery. */
  kill(): void {
    process.kill(this.server.pid, 'SIGKILL');
  }

  /** Starts the server again on the same port, retrying while the killed one's backends linger. */
  async restart(): Promise<void> {
    const deadline = Date.now() + RESTART_TIMEOUT_MS;
    for (;;) {
      try {
        this.server = await startEmbedded(this.dataDir, log, { port: this.port });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async stop(): Promise<void> {
    await this.server.stop().catch(() => undefined);
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** A fresh database on the server of `adminUrl`; returns its URL and how to drop it. */
export async function freshDatabase(adminUrl: string, label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bk_faults_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
