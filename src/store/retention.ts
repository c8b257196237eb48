// Which generations a session keeps: a grandfather-father-son thinning schedule by age, over a floor
// of the newest N. Pure functions over (generation, created_at), so the rules are tested with any clock.
//
// A schedule is a list of tiers "AGE:INTERVAL": a generation up to AGE old is kept if it is the newest
// of its INTERVAL-long slot (slots are aligned to the Unix epoch, so 1d slots are UTC days), or always
// with INTERVAL "all". Older than the last AGE: pruned. The head and the newest `keep` are always kept.
// Because slots are aligned, a generation that represents its 1h slot also represents its 10m slot:
// thinning as a generation ages only ever drops what a coarser tier would drop too.
import { UsageError } from '../errors.js';

/** The `--retention` default (README "History and retention"): every generation of the last hour, then 10 min, 1 h, 1 d slots. */
export const DEFAULT_RETENTION = '1h:all,24h:10m,7d:1h,30d:1d';

export interface RetentionTier {
  /** Up to this age, ms. */
  maxAgeMs: number;
  /** One generation per slot of this length, ms; null keeps every generation. */
  intervalMs: number | null;
}

export interface RetentionPolicy {
  /** The schedule as written (for history and logs). */
  text: string;
  /** Tiers by increasing age; empty: only `keep` (and the head) are kept. */
  tiers: readonly RetentionTier[];
  /** The newest this many generations are kept whatever their age (>= 1). */
  keep: number;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
export const RETENTION_GRAMMAR =
  'a comma-separated list of AGE:INTERVAL tiers with increasing ages, e.g. 1h:all,24h:10m,7d:1h,30d:1d ' +
  '(durations are a whole number with s, m, h, d or w; INTERVAL is "all" to keep every generation up to AGE, or a duration ' +
  "not longer than AGE and a multiple of every younger tier's interval); " +
  'or "none" to keep only the newest --keep generations';

function duration(text: string): number | null {
  const match = /^(\d{1,6})([smhdw])$/.exec(text);
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  return ms > 0 ? ms : null;
}

/**
 * Parses a `--retention` schedule (RETENTION_GRAMMAR) with the `--keep` floor. Throws UsageError
 * (exit 64) naming the bad tier and showing the grammar.
 */
export function parseRetention(raw: string, keep: number, label = '--retention / KEEPER_RETENTION'): RetentionPolicy {
  const text = raw.trim();
  const fail = (why: string): never => {
    throw new UsageError(`invalid ${label} ${JSON.stringify(raw)}: ${why}. Write ${RETENTION_GRAMMAR}`);
  };
  if (text === 'none') return Object.freeze({ text, tiers: Object.freeze([]), keep });
  if (text === '') fail('it is empty');
  const tiers: RetentionTier[] = [];
  for (const part of text.split(',').map((entry) => entry.trim())) {
    const [ageText, intervalText, extra] = part.split(':');
    if (ageText === undefined || intervalText === undefined || extra !== undefined)
      fail(`tier ${JSON.stringify(part)} is not AGE:INTERVAL`);
    const maxAgeMs = duration(ageText!);
    if (maxAgeMs === null) fail(`tier ${JSON.stringify(part)}: ${JSON.stringify(ageText)} is not a duration`);
    const intervalMs = intervalText === 'all' ? null : duration(intervalText!);
    if (intervalText !== 'all' && intervalMs === null)
      fail(`tier ${JSON.stringify(part)}: ${JSON.stringify(intervalText)} is not a duration or "all"`);
    const previous = tiers.at(-1);
    if (previous && maxAgeMs! <= previous.maxAgeMs) fail(`tier ${JSON.stringify(part)} is not older than the tier before it`);
    if (intervalMs !== null && intervalMs > maxAgeMs!) fail(`tier ${JSON.stringify(part)}: the interval is longer than the age`);
    // Each slot must lie inside one slot of every older tier, or thinning could drop what an older tier wants.
    const finer = tiers.findLast((tier) => tier.intervalMs !== null)?.intervalMs ?? null;
    if (finer !== null && (intervalMs === null || intervalMs % finer !== 0)) {
      fail(
        `tier ${JSON.stringify(part)}: its interval must be a multiple of ` +
          `the younger tiers' intervals (${formatDuration(finer)} before it)`,
      );
    }
    tiers.push(Object.freeze({ maxAgeMs: maxAgeMs!, intervalMs }));
  }
  return Object.freeze({ text, tiers: Object.freeze(tiers), keep });
}

export interface Dated {
  generation: number;
  createdAt: Date;
}

/**
 * The generations `policy` keeps at `now`, out of `generations` (any order, the head among them).
 * Always keeps the head (the largest number) and the newest `policy.keep`.
 */
export function retainedGenerations(generations: readonly Dated[], policy: RetentionPolicy, now: Date): Set<number> {
  const newestFirst = [...generations].sort((a, b) => b.generation - a.generation);
  const kept = new Set(newestFirst.slice(0, Math.max(1, policy.keep)).map((g) => g.generation));
  // A slot's representative is its newest generation among all of them, whatever tier each is in: so
  // a generation dropped once is never the one a coarser tier would want later (nested slots).
  const newestInSlot = new Map<string, number>();
  for (const tier of policy.tiers) {
    if (tier.intervalMs === null) continue;
    for (const g of newestFirst) {
      const slot = `${tier.intervalMs}:${Math.floor(g.createdAt.getTime() / tier.intervalMs)}`;
      if (!newestInSlot.has(slot)) newestInSlot.set(slot, g.generation);
    }
  }
  for (const g of newestFirst) {
    const age = now.getTime() - g.createdAt.getTime();
    const tier = policy.tiers.find((candidate) => age <= candidate.maxAgeMs);
    if (!tier) continue;
    if (
      tier.intervalMs === null ||
      newestInSlot.get(`${tier.intervalMs}:${Math.floor(g.createdAt.getTime() / tier.intervalMs)}`) === g.generation
    )
      kept.add(g.generation);
  }
  return kept;
}

/** One line per tier for `history`: how many retained generations fall in it. */
export function describeRetention(generations: readonly Dated[], policy: RetentionPolicy, now: Date): string[] {
  const lines = [`retention ${policy.text}, and always the newest ${policy.keep} generation${policy.keep === 1 ? '' : 's'}`];
  let from = 0;
  for (const tier of policy.tiers) {
    const count = generations.filter((g) => {
      const age = now.getTime() - g.createdAt.getTime();
      return (from === 0 || age > from) && age <= tier.maxAgeMs;
    }).length;
    const each = tier.intervalMs === null ? 'every generation' : `one per ${formatDuration(tier.intervalMs)}`;
    lines.push(`  ${formatDuration(from)}–${formatDuration(tier.maxAgeMs)} old: ${count} retained (${each})`);
    from = tier.maxAgeMs;
  }
  const older = generations.filter((g) => now.getTime() - g.createdAt.getTime() > from).length;
  if (policy.tiers.length > 0 || older > 0)
    lines.push(`  older than ${formatDuration(from)}: ${older} retained (the newest ${policy.keep} and the head only)`);
  return lines;
}

/** 90000 → "1m30s"; 0 → "0s". */
export function formatDuration(ms: number): string {
  let left = Math.round(ms / 1000);
  if (left === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, seconds] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (left >= seconds) {
      parts.push(`${Math.floor(left / seconds)}${unit}`);
      left %= seconds;
    }
  }
  return parts.join('');
}
