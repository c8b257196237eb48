// What every command gets: its config, a logger, output streams, and a way to reach the store.
import os from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config.js';
import { DEFAULT_LEASE_TTL_MS } from '../config.js';
import { openDatabaseWithRetry, type Database } from '../db/connection.js';
import { startEmbedded } from '../db/embedded.js';
import { migrate } from '../db/migrate.js';
import { RefusedError } from '../errors.js';
import type { Logger } from '../log.js';
import { SessionStore, type Lease } from '../store.js';

export interface Context {
  config: Config;
  log: Logger;
  stdout: Writable;
  stdin: Readable;
}

/** This process's identity as a lease owner: host:pid. */
export function leaseOwner(): string {
  return `${os.hostname()}:${process.pid}`;
}

/**
 * Connects (retrying an unreachable database for up to waitMs), migrates, runs fn with the store,
 * and always closes what it opened, including an embedded server it started.
 */
export async function withStore<T>(
  ctx: Context,
  fn: (store: SessionStore, db: Database, schema: { version: number; applied: string[] }) => Promise<T>,
  waitMs = 0,
  target?: DatabaseTarget,
): Promise<T> {
  const log = ctx.log.child({ component: 'db' });
  const own = target ? null : await databaseTarget(ctx);
  try {
    const db = await openDatabaseWithRetry({ url: (target ?? own)!.url, schema: ctx.config.schema, log, waitMs });
    try {
      const schema = await migrate(db);
      if (schema.applied.length > 0) log.info({ version: schema.version, applied: schema.applied }, 'schema migrated');
      return await fn(new SessionStore(db), db, schema);
    } finally {
      await db.close();
    }
  } finally {
    await own?.stop();
  }
}

/** Where the database is: DATABASE_URL, or the embedded server (started here) when none is given. */
export interface DatabaseTarget {
  url: string;
  /** Stops the embedded server if this process started it. */
  stop(): Promise<void>;
}

export async function databaseTarget(ctx: Context): Promise<DatabaseTarget> {
  if (ctx.config.databaseUrl !== null) return { url: ctx.config.databaseUrl, stop: async () => undefined };
  const server = await startEmbedded(ctx.config.dataDir, ctx.log.child({ component: 'db' }));
  return { url: server.url, stop: () => server.stop() };
}

/** Runs fn holding the session's single-writer lease; refuses while another writer (a sidecar) holds it. */
export async function withLease<T>(store: SessionStore, sessionId: string, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = await store.acquireLease(sessionId, leaseOwner(), DEFAULT_LEASE_TTL_MS);
  if (!lease) {
    const holder = await store.leaseHolder(sessionId);
    throw new RefusedError(
      `session ${sessionId} is being written by ${holder?.owner ?? 'another process'} (lease until ${holder?.expiresAt.toISOString() ?? 'soon'}): ` +
        "its sidecar backs the directory up already; use its HTTP API, or stop it first",
    );
  }
  try {
    return await fn(lease);
  } finally {
    await store.releaseLease(sessionId, lease);
  }
}

/** Writes one line of a command's result to stdout. */
export function print(ctx: Context, line: string): void {
  ctx.stdout.write(`${line}\n`);
}

export function printJson(ctx: Context, value: unknown): void {
  ctx.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Renders rows as aligned columns under a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
