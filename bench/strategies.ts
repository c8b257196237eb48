// The three ways to keep a Baileys directory in PostgreSQL, each behind the same small interface.
//   keeper     baileys-keeper's incremental generations, through its real code (SessionStore + snapshot)
//   baseline A the whole directory as one JSONB {file: text} row, upserted at every backup
//   baseline B a gzip'd tar of the whole directory as one bytea per backup (whatsapp-web.js RemoteAuth style)
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import pg from 'pg';
import { packArchive, parseArchive } from '../src/archive.js';
import { openDatabase, type Database } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import type { Logger } from '../src/log.js';
import { materialise } from '../src/restore.js';
import { listCandidates, readNamed, readSnapshot } from '../src/snapshot.js';
import { SessionStore, type Lease } from '../src/store/index.js';
import { countingProxy } from './proxy.js';

export interface Strategy {
  name: 'keeper' | 'A' | 'B';
  /** Backs up `dir`; `changed` names the files known to have changed (the keeper's sidecar knows them). */
  backup(dir: string, changed?: readonly string[]): Promise<void>;
  restore(into: string): Promise<number>;
  /** Bytes sent to PostgreSQL so far. */
  sent(): number;
  /** Bytes the strategy's tables (with indexes and TOAST) take now. */
  tableBytes(): Promise<number>;
  close(): Promise<void>;
}

async function tableBytes(url: string, tables: string[]): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ bytes: string }>(
      'SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0) AS bytes FROM unnest($1::text[]) AS t',
      [tables],
    );
    return Number(rows[0]!.bytes);
  } finally {
    await client.end();
  }
}

/** The keeper, with its own schema and a held lease, as a sidecar has. */
export async function keeperStrategy(databaseUrl: string, schema: string, sessionId: string, log: Logger): Promise<Strategy> {
  const proxy = await countingProxy(databaseUrl);
  const db: Database = await openDatabase({ url: proxy.url, schema, log });
  await migrate(db);
  const store = new SessionStore(db);
  const lease: Lease = (await store.acquireLease(sessionId, 'bench:1', 3_600_000))!;
  const fast = { retryDelaysMs: [20, 50] };
  return {
    name: 'keeper',
    async backup(dir, changed) {
      // The sidecar's path: with known changed names it reads and compares only those.
      const snapshot = changed ? await readNamed(dir, changed, fast) : await readSnapshot(dir, fast);
      await store.backup(sessionId, snapshot, { lease, allowReplace: true, reason: 'bench', scope: changed ? new Set(changed) : null });
    },
    async restore(into) {
      const { files } = (await store.loadPoint(sessionId, {}))!;
      await materialise(into, files, log);
      return files.length;
    },
    sent: () => proxy.sent(),
    tableBytes: () => tableBytes(databaseUrl, [`${schema}.files`, `${schema}.generations`, `${schema}.sessions`]),
    async close() {
      await db.close();
      await proxy.close();
    },
  };
}

/** Every file as it is now; one deleted between listing and reading is left out (the bot used it up). */
async function readDirectory(dir: string): Promise<{ name: string; content: Buffer }[]> {
  const names = await listCandidates(dir);
  const files = await Promise.all(
    names.map(async (name): Promise<{ name: string; content: Buffer } | null> => {
      try {
        return { name, content: await readFile(path.join(dir, name)) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    }),
  );
  return files.filter((file): file is { name: string; content: Buffer } => file !== null);
}

/** A baseline's connection through its own counting proxy, and the parts of Strategy every baseline shares. */
async function baselineConnection(databaseUrl: string, table: string, ddl: string) {
  const proxy = await countingProxy(databaseUrl);
  const client = new pg.Client({ connectionString: proxy.url });
  await client.connect();
  await client.query(ddl);
  const shared: Pick<Strategy, 'sent' | 'tableBytes' | 'close'> = {
    sent: () => proxy.sent(),
    tableBytes: () => tableBytes(databaseUrl, [table]),
    async close() {
      await client.end();
      await proxy.close();
    },
  };
  return { client, shared };
}

/** Baseline A: the existing system's one JSONB row per session, rewritten whole at every backup. */
export async function jsonbStrategy(databaseUrl: string, table: string, sessionId: string, log: Logger): Promise<Strategy> {
  const { client, shared } = await baselineConnection(
    databaseUrl,
    table,
    `CREATE TABLE IF NOT EXISTS ${table} (id SERIAL PRIMARY KEY, session_id VARCHAR(100) DEFAULT 'default' UNIQUE,
       session_data JSONB NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`,
  );
  return {
    ...shared,
    name: 'A',
    async backup(dir) {
      const data = Object.fromEntries((await readDirectory(dir)).map((file) => [file.name, file.content.toString('utf8')]));
      await client.query(
        `INSERT INTO ${table} (session_id, session_data) VALUES ($1, $2)
         ON CONFLICT (session_id) DO UPDATE SET session_data = EXCLUDED.session_data, updated_at = CURRENT_TIMESTAMP`,
        [sessionId, JSON.stringify(data)],
      );
    },
    async restore(into) {
      const { rows } = await client.query<{ session_data: Record<string, string> }>(
        `SELECT session_data FROM ${table} WHERE session_id = $1`,
        [sessionId],
      );
      const files = Object.entries(rows[0]!.session_data).map(([name, text]) => ({ name, content: Buffer.from(text, 'utf8') }));
      // Same atomic, fsynced writer as the keeper, so restore times compare storage, not writing.
      await materialise(into, files, log);
      return files.length;
    },
  };
}

/** Baseline B: RemoteAuth style, a compressed archive of the whole directory per backup (the previous one deleted). */
export async function archiveStrategy(databaseUrl: string, table: string, sessionId: string, log: Logger): Promise<Strategy> {
  const { client, shared } = await baselineConnection(
    databaseUrl,
    table,
    `CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, session_id text ` +
      `NOT NULL, archive bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  );
  return {
    ...shared,
    name: 'B',
    async backup(dir) {
      const archive = gzipSync(await packArchive(await readDirectory(dir), new Date()));
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${table} (session_id, archive) VALUES ($1, $2)`, [sessionId, archive]);
      await client.query(`DELETE FROM ${table} WHERE session_id = $1 AND id < currval(pg_get_serial_sequence('${table}', 'id'))`, [
        sessionId,
      ]);
      await client.query('COMMIT');
    },
    async restore(into) {
      const { rows } = await client.query<{ archive: Buffer }>(
        `SELECT archive FROM ${table} WHERE session_id = $1 ORDER BY id DESC LIMIT 1`,
        [sessionId],
      );
      const snapshot = await parseArchive(gunzipSync(rows[0]!.archive));
      const files = [...snapshot.files.values()].map((file) => ({ name: file.name, content: file.content }));
      // Same atomic, fsynced writer as the keeper, so restore times compare storage, not writing.
      await materialise(into, files, log);
      return files.length;
    },
  };
}

/** Files directly in `dir` (what a strategy has to carry). */
export async function countFiles(dir: string): Promise<number> {
  return (await readdir(dir)).filter((name) => !name.startsWith('.')).length;
}
