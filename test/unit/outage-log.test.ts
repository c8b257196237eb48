// The outage log of a keeper of many sessions, on a manual clock: one line at the first failure, then at
// most one per backoff step however many sessions fail, each with what failed and how many sessions wait;
// the end once, and not on a late answer to a call made before the outage began.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { OutageLog } from '../../src/outage-log.js';
import { RETRY_BACKOFF } from '../../src/retry.js';
import { ManualClock } from '../support/manual-clock.js';

interface Line {
  level: number;
  msg: string;
  sessions?: number;
  failures?: number;
  operations?: string[];
  err?: string;
}

function outageLog() {
  const lines: Line[] = [];
  const log = pino({ level: 'debug' }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  const clock = new ManualClock();
  return { outage: new OutageLog(log, clock), clock, lines };
}

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe('the outage log', () => {
  it('says the first failure at once, then one line per backoff step for every session together', async () => {
    const { outage, clock, lines } = outageLog();
    const failAll = () => {
      for (let i = 0; i < 1_000; i++) outage.failed(i % 2 ? 'backup' : 'lease', refused, [`s${i}`]);
    };
    failAll();
    assert.equal(lines.length, 1, 'a thousand failures at once: one line');
    assert.equal(lines[0]!.level, 40);
    assert.equal(lines[0]!.sessions, 1, 'the first line is said at the first failure');
    assert.match(lines[0]!.err!, /ECONNREFUSED/);
    await clock.advance(RETRY_BACKOFF.initialMs - 1);
    failAll();
    assert.equal(lines.length, 1, 'nothing more before the first step');
    await clock.advance(1);
    failAll();
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.sessions, 1_000, 'the sessions waiting');
    assert.equal(lines[1]!.failures, 1_000 + 999 + 1, 'the failures since the last line');
    assert.deepEqual(lines[1]!.operations!.sort(), ['backup', 'lease']);
    assert.match(lines[1]!.msg, /^database unavailable for 0\.3 s: .* failed \(connect ECONNREFUSED [^)]*\); 1000 sessions waiting/);
    // The steps double: 500 ms after that line, then 1 s.
    await clock.advance(RETRY_BACKOFF.initialMs * 2 - 1);
    failAll();
    assert.equal(lines.length, 2);
    await clock.advance(1);
    failAll();
    assert.equal(lines.length, 3);
    // A minute of failures every 100 ms: bounded by the steps (1 s, 2 s… 30 s), not by the failures.
    for (let t = 0; t < 60_000; t += 100) {
      await clock.advance(100);
      failAll();
    }
    assert.ok(lines.length <= 3 + 7, `${lines.length} lines`);
  });

  it('says the end once, with the sessions resumed; a late answer to an older call ends nothing', async () => {
    const { outage, clock, lines } = outageLog();
    outage.failed('backup', refused, ['a']);
    const before = lines.length;
    // A call made before the outage began answers now: that says nothing of the database now.
    outage.answered(0);
    assert.equal(outage.active, true);
    outage.failed('lease', refused, ['b', 'c']);
    await clock.advance(4_200);
    outage.answered();
    outage.answered();
    assert.equal(outage.active, false);
    const ends = lines.slice(before).filter((line) => line.level === 30);
    assert.deepEqual(
      ends.map((line) => line.msg),
      ['database reachable again after 4.2 s; 3 sessions resumed'],
    );
  });

  it('a database that flaps stays quiet between steps; after a long calm, the next outage is said at once', async () => {
    const { outage, clock, lines } = outageLog();
    const loud = () => lines.filter((line) => line.level >= 40).length;
    outage.failed('backup', refused, ['a']);
    outage.answered();
    outage.failed('backup', refused, ['a']);
    outage.answered();
    outage.failed('backup', refused, ['a']);
    assert.equal(loud(), 1, 'three short outages within the first step: one warning');
    outage.answered();
    await clock.advance(RETRY_BACKOFF.maxMs + 1);
    outage.failed('backup', refused, ['a']);
    assert.equal(loud(), 2, 'said at once');
  });
});
