// The price of a crash, in chats: `run -- bot` SIGKILLed (bot and keeper together) at a random instant
// of a conversation that never pauses, the next container restored from the head, every chat probed
// from the peers' side (harness/continuity.ts). Measured with the default --max-delay and a
// smaller one; each crash on a session of its own.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { crashed, serviceLauncher, stopNewPod } from '../harness/continuity.js';

export interface ContinuityPlan {
  /** Crashes per timing. */
  crashes: number;
  contacts: number;
  groups: number;
  /** Exchanges before the talk during which the crash comes. */
  exchanges: number;
}

export interface ContinuityRow {
  debounceMs: number;
  maxDelayMs: number;
  crashes: number;
  /** How old the stored head was at the kill, ms. */
  headAgeMsMean: number;
  headAgeMsMax: number;
  /** Exchanges completed after the head's commit. */
  exchangesBehindMean: number;
  exchangesBehindMax: number;
  chats: number;
  /** Chats whose next message failed to decrypt at first, in either direction. */
  broken: number;
  /** Broken chats that retry receipts brought back without anyone writing again. */
  recovered: number;
  lost: number;
}

/** The timings measured: the defaults, and a smaller --max-delay (with the debounce it must cover). */
export const CRASH_TIMINGS = [
  { debounceMs: 1000, maxDelayMs: 1000 },
  { debounceMs: 100, maxDelayMs: 250 },
] as const;

export async function measureContinuity(
  databaseUrl: string,
  work: string,
  plan: ContinuityPlan,
  say: (line: string) => void,
): Promise<ContinuityRow[]> {
  const rows: ContinuityRow[] = [];
  for (const { debounceMs, maxDelayMs } of CRASH_TIMINGS) {
    const ages: number[] = [];
    const behind: number[] = [];
    let [chats, broken, recovered, lost] = [0, 0, 0, 0];
    for (let i = 0; i < plan.crashes; i++) {
      const session = `bench-crash-${maxDelayMs}-${i}`;
      const workDir = path.join(work, session);
      await mkdir(workDir, { recursive: true });
      const kills: Array<() => Promise<void>> = [];
      try {
        const result = await crashed({
          url: databaseUrl,
          session,
          workDir,
          seed: maxDelayMs * 1000 + i,
          contacts: plan.contacts,
          groups: plan.groups,
          exchanges: plan.exchanges,
          start: serviceLauncher(databaseUrl, session, ['--shutdown-quiet', '200', '--lease-ttl', '2000']),
          keeperArgs: ['--debounce', String(debounceMs), '--max-delay', String(maxDelayMs)],
          track: (kill) => kills.push(kill),
        });
        await stopNewPod(result.newPod);
        ages.push(result.staleness!.headAgeMs);
        behind.push(result.staleness!.exchangesAfterHead);
        chats += result.report.chats.length;
        broken += result.report.broken;
        recovered += result.report.recovered;
        lost += result.report.lost;
      } finally {
        for (const kill of kills) await kill().catch(() => undefined);
      }
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
    const row = {
      debounceMs,
      maxDelayMs,
      crashes: plan.crashes,
      headAgeMsMean: mean(ages),
      headAgeMsMax: Math.max(0, ...ages),
      exchangesBehindMean: mean(behind),
      exchangesBehindMax: Math.max(0, ...behind),
      chats,
      broken,
      recovered,
      lost,
    };
    rows.push(row);
    say(`crash, max-delay ${maxDelayMs} ms: ${JSON.stringify(row)}`);
  }
  return rows;
}

/** The docs/performance.md and latest.md table of the rows. */
export function continuityTable(rows: readonly ContinuityRow[]): string[] {
  const md = [
    '| debounce / max-delay | crashes | head age at the kill (mean / max) | exchanges ' +
      'behind (mean / max) | chats probed | broken | recovered by retry receipts | lost |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    md.push(
      `| ${r.debounceMs} / ${r.maxDelayMs} ms | ${r.crashes} | ${r.headAgeMsMean.toFixed(0)} / ` +
        `${r.headAgeMsMax} ms | ${r.exchangesBehindMean.toFixed(1)} / ${r.exchangesBehindMax} | ${r.chats} | ` +
        `${r.broken} (${((100 * r.broken) / Math.max(1, r.chats)).toFixed(0)} %) | ${r.recovered} | ${r.lost} |`,
    );
  }
  return md;
}
