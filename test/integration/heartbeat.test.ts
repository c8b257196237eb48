// The heartbeat (SPEC "Session lifecycle") against a real HTTP receiver on loopback, on a manual clock: a
// GET at start and every interval while every session is protected, none while one is not, a failure
// streak logged once, pings that never overlap, and a ping URL whose token never reaches a log line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { UsageError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics.js';
import { Heartbeat, type HeartbeatOptions } from '../../src/notify/heartbeat.js';
import { waitFor } from '../../harness/sidecar.js';
import { ManualClock } from '../support/manual-clock.js';
import { resultCounts } from '../support/metrics.js';
import { Receiver } from '../support/receiver.js';

const METRIC = 'baileys_keeper_heartbeats_total';
const MINUTE = 60_000;

/** A heartbeat to `url` every minute on a manual clock, protected while `state.protected`, with a captured log. */
function heartbeat(url: string, options: Partial<HeartbeatOptions> = {}) {
  const clock = new ManualClock();
  const metrics = new Metrics();
  const logs: { level: number; msg: string }[] = [];
  const raw: string[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        raw.push(line);
        logs.push(JSON.parse(line));
      },
    },
  );
  const state = { protected: true };
  const beat = new Heartbeat({
    url,
    intervalMs: MINUTE,
    allProtected: () => state.protected,
    clock,
    log,
    beats: metrics.heartbeats,
    ...options,
  });
  const counts = () => resultCounts(metrics.registry, METRIC);
  return {
    clock,
    beat,
    state,
    logs,
    raw,
    counts,
    /** Waits (real time) until the next ping is scheduled on the clock, i.e. the current one has ended. */
    scheduled: () =>
      waitFor(
        () => clock.next(),
        5_000,
        () => 'no next ping was scheduled',
      ),
  };
}

describe('heartbeat', () => {
  it('pings at start and every interval while every session is protected, skips while one is not, resumes after', async () => {
    const receiver = await Receiver.start();
    const { beat, clock, state, counts, scheduled } = heartbeat(receiver.url('/ping'));
    const start = clock.now();
    beat.start();
    const [first] = await receiver.received(1);
    assert.equal(first!.method, 'GET');
    assert.equal(first!.url, '/ping');
    assert.equal(await scheduled(), start + MINUTE);

    await clock.advance(MINUTE - 1);
    assert.equal(clock.next(), start + MINUTE, 'nothing before the interval is up');
    await clock.advance(1);
    await receiver.received(2);
    assert.equal(await scheduled(), start + 2 * MINUTE);

    state.protected = false;
    await clock.advance(MINUTE);
    await clock.advance(MINUTE);
    // A skipped interval schedules the next at once; a ping would still be waiting for its answer.
    assert.equal(clock.next(), start + 4 * MINUTE, 'no ping while a session is unprotected');
    assert.equal(receiver.requests.length, 2);
    assert.deepEqual(await counts(), { success: 2, failure: 0, skipped: 2 });

    state.protected = true;
    await clock.advance(MINUTE);
    await receiver.received(3);
    await scheduled();
    assert.deepEqual(await counts(), { success: 3, failure: 0, skipped: 2 });
    await beat.stop();
    assert.equal(clock.pending, 0, 'nothing is scheduled after stop()');
    await clock.advance(5 * MINUTE);
    assert.equal(receiver.requests.length, 3);
  });

  it('does not ping at start while a session is unprotected', async () => {
    const receiver = await Receiver.start();
    const { beat, state, counts, scheduled } = heartbeat(receiver.url());
    state.protected = false;
    beat.start();
    await scheduled();
    assert.equal(receiver.requests.length, 0);
    assert.deepEqual(await counts(), { success: 0, failure: 0, skipped: 1 });
    await beat.stop();
  });

  it('logs a failure streak at warn once, counts every failed ping, and says when pings get through again', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push(500, 503, 500, 200, 500);
    const { beat, clock, logs, counts, scheduled } = heartbeat(receiver.url());
    const failureWarnings = () => logs.filter((line) => line.level === 40 && line.msg.startsWith('heartbeat failed')).length;
    beat.start();
    for (let ping = 1; ping <= 3; ping++) {
      await receiver.received(ping);
      await scheduled();
      await clock.advance(MINUTE);
    }
    await receiver.received(4);
    await scheduled();
    assert.deepEqual(await counts(), { success: 1, failure: 3, skipped: 0 });
    assert.equal(failureWarnings(), 1, 'three failures in a row: one warning');
    assert.ok(logs.some((line) => line.level === 30 && line.msg === 'heartbeat delivered again'));

    await clock.advance(MINUTE);
    await receiver.received(5);
    await scheduled();
    assert.equal(failureWarnings(), 2, 'a new streak: a new warning');
    assert.deepEqual(await counts(), { success: 1, failure: 4, skipped: 0 });
    await beat.stop();
  });

  it('never overlaps pings: one that takes longer than the interval is followed by the next at once', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push('hang');
    const { beat, clock, counts, scheduled } = heartbeat(receiver.url(), { intervalMs: 1_000, timeoutMs: 200 });
    beat.start();
    await receiver.received(1);
    await clock.advance(5_000); // five intervals pass on the clock while the ping waits for its answer
    assert.equal(clock.pending, 0, 'no second ping is scheduled while the first is in flight');
    assert.equal(await scheduled(), clock.now(), 'the next ping is due at once after the late one');
    await clock.advance(0);
    await receiver.received(2);
    await scheduled();
    assert.deepEqual(await counts(), { success: 1, failure: 1, skipped: 0 });
    await beat.stop();
  });

  it('stop() abandons a ping in flight without counting it', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push('hang');
    const { beat, clock, counts } = heartbeat(receiver.url(), { timeoutMs: 60_000 });
    beat.start();
    await receiver.received(1);
    await beat.stop();
    assert.equal(clock.pending, 0);
    assert.equal(receiver.answered, 0);
    assert.deepEqual(await counts(), { success: 0, failure: 0, skipped: 0 });
  });

  it('never prints the token of a ping URL (path, query or userinfo)', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push({ status: 301, headers: { Location: 'https://hc-ping.example/0f1e2d3c-4b5a?x=1' } });
    const secrets = ['0f1e2d3c-4b5a', 'kuma-user', 'pa55', 'qu3ry'];
    const url = `http://kuma-user:pa55@127.0.0.1:${receiver.port}/api/push/0f1e2d3c-4b5a?status=up&msg=qu3ry`;
    const { beat, raw, counts, scheduled } = heartbeat(url);
    beat.start();
    const [request] = await receiver.received(1);
    await scheduled();
    await beat.stop();
    assert.equal(request!.url, '/api/push/0f1e2d3c-4b5a?status=up&msg=qu3ry');
    assert.deepEqual(await counts(), { success: 0, failure: 1, skipped: 0 }, 'a redirect is not followed');
    const printed = raw.join('\n');
    assert.ok(printed.includes('https://hc-ping.example/***'), 'the redirect target is logged, masked');
    for (const secret of secrets) assert.ok(!printed.includes(secret), `${secret} appears in a log line`);
  });

  it('refuses an interval under 1 s and a URL that is not http(s)', async () => {
    const receiver = await Receiver.start();
    assert.throws(() => heartbeat(receiver.url(), { intervalMs: 999 }), UsageError);
    assert.throws(() => heartbeat('file:///etc/passwd'), UsageError);
    assert.doesNotThrow(() => heartbeat(receiver.url(), { intervalMs: 1_000 }));
  });

  it('exposes every result at 0 from the start', async () => {
    const text = await new Metrics().registry.getSingleMetricAsString(METRIC);
    for (const result of ['success', 'failure', 'skipped']) assert.match(text, new RegExp(`^${METRIC}\\{result="${result}"\\} 0$`, 'm'));
  });
});
