// History that lasts, measured: a session churned by the real Baileys writer over simulated weeks (the
// generations' times are set as if the bot had run that long, and thinning is told the simulated
// time), kept once with the retention schedule and once with the count-only policy, side by side.
// Per simulated day: retained generations, file rows, table bytes (with TOAST and indexes), dead tuples
// and how far back history reaches. And what one thinning pass costs on a 10,000-file session.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { openDatabase, type Database } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import type { Logger } from '../src/log.js';
import { DEFAULT_RETENTION, parseRetention, type RetentionPolicy } from '../src/store/retention.js';
import { readNamed, readSnapshot } from '../src/snapshot.js';
import { SessionStore, type Lease } from '../src/store/index.js';
import { ChurnBot } from '../harness/churn.js';

const DAY_MS = 86_400_000;
const fast = { retryDelaysMs: [20, 50] };

export interface RetentionPlan {
  days: number;
  /** Simulated time between generations, minutes. */
  everyMinutes: number;
}

export interface RetentionDayRow {
  day: number;
  policy: string;
  generations: number;
  fileRows: number;
  tableBytes: number;
  deadTuples: number;
  /** Age of the oldest retained generation, days: how far back `restore --at` can go. */
  reachDays: number;
}

export interface ThinningCost {
  files: number;
  generationsBefore: number;
  generationsDeleted: number;
  fileVersionsDeleted: number;
  transactions: number;
  ms: number;
  msPerTransaction: number;
}

interface Kept {
  name: string;
  policy: RetentionPolicy;
  schema: string;
  db: Database;
  store: SessionStore;
  lease: Lease;
}

async function open(databaseUrl: string, schema: string, log: Logger): Promise<{ db: Database; store: SessionStore; lease: Lease }> {
  const db = await openDatabase({ url: databaseUrl, schema, log });
  await migrate(db);
  const store = new SessionStore(db);
  const lease = (await store.acquireLease('bench', 'bench:retention', 24 * 3_600_000))!;
  return { db, store, lease };
}

/** Simulates `plan.days` of churn; one row per simulated day and policy. */
export async function simulateRetention(databaseUrl: string, dir: string, plan: RetentionPlan, log: Logger): Promise<RetentionDayRow[]> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const policies = [
    { name: `schedule ${DEFAULT_RETENTION}, keep 100`, policy: parseRetention(DEFAULT_RETENTION, 100), schema: 'bench_retention_schedule' },
    { name: 'count only: keep 100', policy: parseRetention('none', 100), schema: 'bench_retention_count' },
  ];
  const kept: Kept[] = [];
  for (const p of policies) kept.push({ ...p, ...(await open(databaseUrl, p.schema, log)) });
  const bot = await ChurnBot.open(dir, { preKeys: 60, seed: 7 });
  const rows: RetentionDayRow[] = [];
  const stepMs = plan.everyMinutes * 60_000;
  const start = Date.now() - plan.days * DAY_MS;
  const steps = Math.round((plan.days * DAY_MS) / stepMs);
  const perDay = Math.round(DAY_MS / stepMs);
  const thinEvery = Math.max(1, Math.round(3_600_000 / stepMs)); // the sidecar thins about hourly at this rate
  for (let i = 1; i <= steps; i++) {
    await bot.burst(3);
    const snapshot = await readSnapshot(dir, fast);
    const at = new Date(start + i * stepMs);
    for (const k of kept) {
      const result = await k.store.backup('bench', snapshot, { lease: k.lease, allowReplace: true, reason: 'bench' });
      if (result.kind === 'success') {
        await k.db.query(`UPDATE ${k.db.schema}.generations SET created_at = $2 WHERE session_id = 'bench' AND generation = $1`, [
          result.generation,
          at,
        ]);
      }
      if (i % thinEvery === 0) await k.store.thin('bench', k.policy, { now: at });
    }
    if (i % perDay === 0) {
      for (const k of kept) {
        const {
          rows: [stats],
        } = await admin.query<{ generations: string; file_rows: string; bytes: string; dead: string; oldest: Date }>(
          `SELECT (SELECT count(*) FROM ${k.db.schema}.generations) AS generations,
                  (SELECT count(*) FROM ${k.db.schema}.files) AS file_rows,
                  pg_total_relation_size('${k.schema}.files') + pg_total_relation_size('${k.schema}.generations') AS bytes,
                  (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = $1) AS dead,
                  (SELECT min(created_at) FROM ${k.db.schema}.generations) AS oldest`,
          [k.schema],
        );
        rows.push({
          day: i / perDay,
          policy: k.name,
          generations: Number(stats!.generations),
          fileRows: Number(stats!.file_rows),
          tableBytes: Number(stats!.bytes),
          deadTuples: Number(stats!.dead),
          reachDays: (at.getTime() - stats!.oldest.getTime()) / DAY_MS,
        });
      }
    }
  }
  await bot.close();
  for (const k of kept) await k.db.close();
  await admin.end();
  return rows;
}

/**
 * One thinning pass over a session of `dir`'s size: `generations` backups of 20 changed files each,
 * spread over `spanHours` hours, then the default schedule applied.
 */
export async function thinningCost(
  databaseUrl: string,
  dir: string,
  generations: number,
  spanHours: number,
  log: Logger,
): Promise<ThinningCost> {
  const { db, store, lease } = await open(databaseUrl, 'bench_thinning', log);
  const first = await readSnapshot(dir, fast);
  await store.backup('bench', first, { lease, allowReplace: true, reason: 'bench' });
  const names = [...first.files.keys()].filter((name) => name.startsWith('pre-key-')).slice(0, 200);
  const start = Date.now() - spanHours * 3_600_000;
  for (let i = 0; i < generations; i++) {
    const changed = names.slice((i * 20) % names.length, ((i * 20) % names.length) + 20);
    for (const name of changed) await writeFile(path.join(dir, name), JSON.stringify({ bench: i, name }));
    const result = await store.backup('bench', await readNamed(dir, changed, fast), {
      lease,
      allowReplace: true,
      reason: 'bench',
      scope: new Set(changed),
    });
    if (result.kind === 'success') {
      await db.query(`UPDATE ${db.schema}.generations SET created_at = $2 WHERE session_id = 'bench' AND generation = $1`, [
        result.generation,
        new Date(start + (i * spanHours * 3_600_000) / generations),
      ]);
    }
  }
  const started = performance.now();
  const thinned = await store.thin('bench', parseRetention(DEFAULT_RETENTION, 100));
  const ms = performance.now() - started;
  await db.close();
  return {
    files: first.files.size,
    generationsBefore: generations + 1,
    generationsDeleted: thinned.generations,
    fileVersionsDeleted: thinned.files,
    transactions: thinned.transactions,
    ms,
    msPerTransaction: ms / Math.max(1, thinned.transactions),
  };
}
