// The one retry policy, on a manual clock: pauses grow by the factor up to the cap, a deadline cuts the
// last pause short and ends the retries, and failures that waiting cannot fix are thrown at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, backoffDelay, retry, type RetryOptions } from '../../src/retry.js';
import { ManualClock } from '../support/manual-clock.js';

class Transient extends Error {}

describe('backoff', () => {
  it('backs off exponentially up to a cap, and resets', () => {
    const backoff = new Backoff({ initialMs: 250, factor: 2, maxMs: 30_000 });
    assert.equal(backoff.failing, false);
    const delays = Array.from({ length: 10 }, () => backoff.fail());
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    assert.ok(backoff.failing);
    backoff.reset();
    assert.equal(backoff.failing, false);
    assert.equal(backoff.fail(), 250);
  });

  it('grows by any factor, stays finite however long the outage, and factor 1 is a constant pause', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => backoffDelay({ initialMs: 100, factor: 3, maxMs: 1000 }, n)),
      [100, 300, 900, 1000],
    );
    assert.equal(backoffDelay({ initialMs: 250, factor: 2, maxMs: 5000 }, 10_000), 5000);
    assert.deepEqual(
      [1, 5, 50].map((n) => backoffDelay({ initialMs: 250, factor: 1, maxMs: 5000 }, n)),
      [250, 250, 250],
    );
  });
});

describe('retry on the injected clock', () => {
  /** Runs retry() with `options` over `results` (an Error is thrown, anything else returned), on a manual clock. */
  function scripted(results: unknown[], options: Partial<RetryOptions> = {}) {
    const clock = new ManualClock(0);
    const attempts: number[] = [];
    const pauses: number[] = [];
    const outcome = retry(
      async (n) => {
        attempts.push(clock.now());
        assert.equal(n, attempts.length, 'attempts are numbered from 1');
        const result = results[n - 1];
        if (result instanceof Error) throw result;
        return result;
      },
      {
        clock,
        initialMs: 100,
        factor: 3,
        maxMs: 1000,
        retryable: (error) => error instanceof Transient,
        onRetry: ({ delayMs }) => pauses.push(delayMs),
        ...options,
      },
    );
    outcome.catch(() => undefined); // judged by the test, after the clock has moved
    return { clock, attempts, pauses, outcome };
  }

  it('retries after each pause of the policy, and resolves with the first success', async () => {
    const run = scripted([new Transient(), new Transient(), new Transient(), new Transient(), 'open']);
    await run.clock.advance(0);
    assert.deepEqual(run.attempts, [0], 'the first attempt is made at once');
    await run.clock.advance(99);
    assert.deepEqual(run.attempts, [0], 'no attempt before the pause has passed');
    await run.clock.advance(10_000);
    assert.equal(await run.outcome, 'open');
    assert.deepEqual(run.attempts, [0, 100, 400, 1300, 2300]);
    assert.deepEqual(run.pauses, [100, 300, 900, 1000]);
  });

  it('cuts the last pause short at the deadline, then gives up with what `exhausted` makes of the failure', async () => {
    const failure = new Transient('still down');
    const run = scripted(Array(10).fill(failure), { deadline: 2500, exhausted: (error) => new Error('gave up', { cause: error }) });
    await run.clock.advance(60_000);
    await assert.rejects(run.outcome, (error: Error) => error.message === 'gave up' && error.cause === failure);
    assert.deepEqual(run.attempts, [0, 100, 400, 1300, 2300, 2500], 'one last attempt at the deadline');
    assert.deepEqual(run.pauses, [100, 300, 900, 1000, 200]);
  });

  it('throws the failure itself at the deadline when nothing else is asked for', async () => {
    const failure = new Transient('down');
    const run = scripted([failure, failure], { deadline: 0 });
    await run.clock.advance(0);
    await assert.rejects(run.outcome, (error) => error === failure);
    assert.deepEqual(run.attempts, [0], 'no time left: no second attempt');
  });

  it('throws a failure that waiting cannot fix at once, without a pause', async () => {
    const wrong = new Error('password authentication failed');
    const run = scripted([new Transient(), wrong, 'never reached']);
    await run.clock.advance(10_000);
    await assert.rejects(run.outcome, (error) => error === wrong);
    assert.deepEqual(run.attempts, [0, 100]);
    assert.equal(run.clock.pending, 0, 'no timer left behind');
  });
});
