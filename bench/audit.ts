// What the periodic comparison of a directory with its head costs (SPEC "Protection"): the audit (one
// readdir and one lstat per file, contents only where metadata changed) next to the full rescan it
// replaced (every file read, hashed and compared with the stored digests in one noop backup), on a large
// session, at rest and with a few files changed. CPU is the process's own (user + system), from
// process.cpuUsage; ratios within one run are what to read (the machine is shared).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { auditDirectory, StampBook, wallNowNs } from '../src/audit.js';
import { migrate } from '../src/db/migrate.js';
import { openDatabase } from '../src/db/pool.js';
import type { Logger } from '../src/log.js';
import { readNamed, readSnapshot } from '../src/snapshot.js';
import { SessionStore } from '../src/store/index.js';
import { ChurnBot } from '../harness/churn.js';

const fast = { retryDelaysMs: [20, 50] };
/** The default --interval: audits per hour = 3,600,000 / this. */
const INTERVAL_MS = 120_000;

export interface AuditPlan {
  /** Files in the session (mostly pre-keys, as large real sessions are). */
  files: number;
  /** Repetitions of each measurement. */
  rounds: number;
}

export interface AuditRow {
  method: string;
  state: string;
  files: number;
  /** Median CPU per comparison, ms. */
  cpuMs: number;
  /** Median wall time per comparison, ms. */
  wallMs: number;
  /** CPU per hour at the default --interval (2 min), s. */
  cpuSecondsPerHour: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(fn: () => Promise<unknown>): Promise<{ cpuMs: number; wallMs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - started };
}

/** Measures audit and full rescan on a session of `plan.files` files stored in `databaseUrl` (schema bench_audit). */
export async function measureAudit(databaseUrl: string, work: string, plan: AuditPlan, log: Logger): Promise<AuditRow[]> {
  const dir = path.join(work, 'audit-session');
  const bot = await ChurnBot.open(dir, { preKeys: Math.max(10, plan.files - 25), seed: 11 });
  await bot.step();
  const db = await openDatabase({ url: databaseUrl, schema: 'bench_audit', log });
  const rows: AuditRow[] = [];
  try {
    await migrate(db);
    const store = new SessionStore(db);
    const lease = (await store.acquireLease('audit', 'bench:audit', 3_600_000))!;
    const book = new StampBook();
    const storeAll = async () => {
      const readStartedNs = wallNowNs();
      const snapshot = await readSnapshot(dir, fast);
      await store.backup('audit', snapshot, { lease, allowReplace: false, reason: 'bench' });
      book.record(snapshot.files.values(), [], true, readStartedNs);
      return snapshot.files.size;
    };
    const files = await storeAll();
    // Files written just before the first read are "racy" (read again at the next audit): let them age.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await storeAll();

    const measure = async (method: string, state: string, fn: () => Promise<unknown>, before?: () => Promise<unknown>) => {
      const cpu: number[] = [];
      const wall: number[] = [];
      for (let i = 0; i < plan.rounds; i++) {
        await before?.();
        const result = await timed(fn);
        cpu.push(result.cpuMs);
        wall.push(result.wallMs);
      }
      const cpuMs = median(cpu);
      rows.push({ method, state, files, cpuMs, wallMs: median(wall), cpuSecondsPerHour: (cpuMs * (3_600_000 / INTERVAL_MS)) / 1000 });
    };

    const fullRescan = () =>
      readSnapshot(dir, fast).then((snapshot) => store.backup('audit', snapshot, { lease, allowReplace: false, reason: 'rescan' }));
    await measure('full rescan (read, hash, compare)', 'at rest', fullRescan);
    await measure('audit (metadata)', 'at rest', async () => {
      const result = await auditDirectory(dir, book);
      if (result.differ.length > 0) throw new Error(`the audit of a quiet directory found ${result.differ.length} differences`);
    });
    // One key batch of the real writer since the last comparison: the audit finds it and reads only that.
    const churn = async () => {
      await bot.step();
      await new Promise((resolve) => setTimeout(resolve, 2_100)); // past the racy window
    };
    await measure(
      'audit (metadata) + read what differs',
      'after a key batch',
      async () => {
        const result = await auditDirectory(dir, book);
        const readStartedNs = wallNowNs();
        const snapshot = await readNamed(dir, result.differ, fast);
        await store.backup('audit', snapshot, { lease, allowReplace: false, reason: 'audit', scope: new Set(result.differ) });
        book.record(
          snapshot.files.values(),
          result.differ.filter((name) => !snapshot.files.has(name)),
          false,
          readStartedNs,
        );
      },
      churn,
    );
    await measure('full rescan (read, hash, compare)', 'after a key batch', fullRescan, churn);
  } finally {
    await db.close();
  }
  return rows;
}

/** The Markdown table of `rows`. */
export function auditReport(rows: readonly AuditRow[], header: string): string {
  const lines = [
    header,
    '',
    '| method | directory | files | CPU per comparison | wall time | CPU per hour at --interval 2 min |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.method} | ${row.state} | ${row.files} | ${row.cpuMs.toFixed(1)} ms | ${row.wallMs.toFixed(1)} ms | ${row.cpuSecondsPerHour.toFixed(2)} s |`,
    ),
  ];
  const rest = rows.find((row) => row.state === 'at rest' && row.method.startsWith('audit'));
  const full = rows.find((row) => row.state === 'at rest' && row.method.startsWith('full'));
  if (rest && full)
    lines.push('', `At rest the audit costs ${((rest.cpuMs / full.cpuMs) * 100).toFixed(1)} % of the CPU of a full rescan.`);
  return `${lines.join('\n')}\n`;
}

/** Writes the audit part's results next to the others. */
export async function writeAuditResults(out: string, rows: readonly AuditRow[], table: string): Promise<void> {
  await writeFile(path.join(out, 'audit.json'), `${JSON.stringify(rows, null, 2)}\n`);
  await writeFile(path.join(out, 'audit.md'), table);
}
