// The retention schedule: parsing (every mistake is a usage error showing the grammar) and which
// generations it keeps, on a fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { UsageError } from '../../src/errors.js';
import {
  DEFAULT_RETENTION,
  describeRetention,
  formatDuration,
  parseRetention,
  retainedGenerations,
  type Dated,
} from '../../src/store/retention.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2026-11-29T12:00:00Z');

/** One generation every `everyMs` over the `spanMs` before NOW, oldest first (numbers 1…). */
function history(spanMs: number, everyMs: number): Dated[] {
  const out: Dated[] = [];
  for (let t = NOW.getTime() - spanMs, n = 1; t <= NOW.getTime(); t += everyMs, n++) out.push({ generation: n, createdAt: new Date(t) });
  return out;
}

describe('retention schedule', () => {
  it('parses the default and "none"', () => {
    const policy = parseRetention(DEFAULT_RETENTION, 100);
    assert.deepEqual(policy.tiers, [
      { maxAgeMs: HOUR, intervalMs: null },
      { maxAgeMs: DAY, intervalMs: 10 * 60_000 },
      { maxAgeMs: 7 * DAY, intervalMs: HOUR },
      { maxAgeMs: 30 * DAY, intervalMs: DAY },
    ]);
    assert.deepEqual(parseRetention('none', 5).tiers, []);
    assert.deepEqual(parseRetention(' 2w:1d ', 1).tiers, [{ maxAgeMs: 14 * DAY, intervalMs: DAY }]);
  });

  for (const [raw, why] of [
    ['', /it is empty/],
    ['1h', /"1h" is not AGE:INTERVAL/],
    ['1h:all:x', /is not AGE:INTERVAL/],
    ['1x:all', /"1x" is not a duration/],
    ['0h:all', /"0h" is not a duration/],
    ['1h:sometimes', /"sometimes" is not a duration or "all"/],
    ['24h:10m,1h:all', /is not older than the tier before it/],
    ['1h:2h', /the interval is longer than the age/],
    ['24h:10m,7d:7m', /must be a multiple of the younger tiers' intervals/],
    ['24h:10m,7d:all', /must be a multiple/],
  ] as const) {
    it(`refuses ${JSON.stringify(raw)} with exit 64 and the grammar`, () => {
      assert.throws(
        () => parseRetention(raw, 100),
        (error: unknown) =>
          error instanceof UsageError && error.exitCode === 64 && why.test(error.message) && /AGE:INTERVAL tiers/.test(error.message),
      );
    });
  }

  it('keeps, by default, every generation of the last hour, then one per 10 min, per hour, per day; nothing past 30 days', () => {
    const all = history(40 * DAY, 60_000); // a generation a minute for 40 days
    const kept = retainedGenerations(all, parseRetention(DEFAULT_RETENTION, 1), NOW);
    const ageOf = (g: number) => NOW.getTime() - all[g - 1]!.createdAt.getTime();
    const count = (from: number, to: number) => [...kept].filter((g) => ageOf(g) > from && ageOf(g) <= to).length;
    assert.equal(count(-1, HOUR), 61, 'every one of the last hour');
    assert.ok(Math.abs(count(HOUR, DAY) - 138) <= 1, `one per 10 minutes for a day: ${count(HOUR, DAY)}`);
    assert.ok(Math.abs(count(DAY, 7 * DAY) - 144) <= 1, `one per hour for a week: ${count(DAY, 7 * DAY)}`);
    assert.ok(Math.abs(count(7 * DAY, 30 * DAY) - 23) <= 1, `one per day for a month: ${count(7 * DAY, 30 * DAY)}`);
    assert.equal(count(30 * DAY, Infinity), 0);
    assert.ok(kept.size < 400, `bounded: ${kept.size} of ${all.length}`);
  });

  it('always keeps the head and the newest --keep, however old', () => {
    const old = history(90 * DAY, 30 * DAY); // 4 generations, the newest 0 days old
    const ancient = old.map((g) => ({ ...g, createdAt: new Date(g.createdAt.getTime() - 365 * DAY) }));
    assert.deepEqual([...retainedGenerations(ancient, parseRetention(DEFAULT_RETENTION, 1), NOW)], [4]);
    assert.deepEqual([...retainedGenerations(ancient, parseRetention('none', 3), NOW)].sort(), [2, 3, 4]);
  });

  it('a generation thinned away is never one a later thinning would have kept (slots nest)', () => {
    const policy = parseRetention(DEFAULT_RETENTION, 2);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 45 * DAY }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 20 * DAY }),
        fc.array(fc.integer({ min: 0, max: 20 * DAY }), { maxLength: 20 }),
        (ages, later, newer) => {
          const old = [...ages].sort((a, b) => b - a).map((age, i) => ({ generation: i + 1, createdAt: new Date(NOW.getTime() - age) }));
          const first = retainedGenerations(old, policy, NOW);
          // Time passes (and maybe new generations arrive): what survives must be a subset of what survived.
          const then = new Date(NOW.getTime() + later);
          const added = newer
            .filter((offset) => offset <= later)
            .sort((a, b) => a - b)
            .map((offset, i) => ({ generation: old.length + i + 1, createdAt: new Date(NOW.getTime() + offset) }));
          const second = retainedGenerations([...old.filter((g) => first.has(g.generation)), ...added], policy, then);
          for (const g of second) assert.ok(g > old.length || first.has(g));
          // Thinning twice keeps, of the old generations, what one thinning at the later time keeps of
          // those the first pass left: the first pass removed nothing the later one wanted.
          const again = retainedGenerations([...old, ...added], policy, then);
          assert.deepEqual(
            [...second].filter((g) => g <= old.length).sort(),
            [...again].filter((g) => g <= old.length && first.has(g)).sort(),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('history describes the schedule with a count per tier', () => {
    const lines = describeRetention(history(3 * HOUR, 30 * 60_000), parseRetention('1h:all,24h:1h', 2), NOW);
    assert.deepEqual(lines, [
      'retention 1h:all,24h:1h, and always the newest 2 generations',
      '  0s–1h old: 3 retained (every generation)',
      '  1h–1d old: 4 retained (one per 1h)',
      '  older than 1d: 0 retained (the newest 2 and the head only)',
    ]);
    assert.equal(formatDuration(90_061_000), '1d1h1m1s');
  });
});
