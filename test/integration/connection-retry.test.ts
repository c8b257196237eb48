// Opening a database that does not answer: the connection is retried by the one backoff policy until
// --wait runs out, timed on the injected clock (a manual one here, so the test waits for no pause).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { openDatabaseWithRetry, RETRY_INITIAL_MS, RETRY_MAX_MS } from '../../src/db/pool.js';
import { DatabaseUnreachableError } from '../../src/errors.js';
import { ManualClock } from '../support/manual-clock.js';
import { freePort } from '../support/net.js';

describe('opening an unreachable database', () => {
  it('retries after 250 ms, doubling up to 5 s, until the wait is used up, then fails as unreachable', async () => {
    const clock = new ManualClock(0);
    const retries: { attempt: number; retryInMs: number; at: number }[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void retries.push({ ...JSON.parse(line), at: clock.now() }) });
    const url = `postgresql://keeper@127.0.0.1:${await freePort()}/keeper?sslmode=disable`; // nothing listens there
    const waitMs = 12_000;
    const opening = openDatabaseWithRetry({ url, schema: 'baileys_keeper', log, waitMs, clock });
    await assert.rejects(clock.runUntilSettled(opening), DatabaseUnreachableError);
    assert.equal(RETRY_INITIAL_MS, 250);
    assert.equal(RETRY_MAX_MS, 5000);
    // Pauses of 250, 500, 1000, 2000, 4000 ms, then the 5 s cap cut to the 4250 ms left before the wait ends.
    assert.deepEqual(
      retries.map(({ attempt, retryInMs, at }) => ({ attempt, retryInMs, at })),
      [
        { attempt: 1, retryInMs: 250, at: 0 },
        { attempt: 2, retryInMs: 500, at: 250 },
        { attempt: 3, retryInMs: 1000, at: 750 },
        { attempt: 4, retryInMs: 2000, at: 1750 },
        { attempt: 5, retryInMs: 4000, at: 3750 },
        { attempt: 6, retryInMs: 4250, at: 7750 },
      ],
    );
    assert.equal(clock.now(), waitMs, 'the last attempt was made as the wait ran out, and nothing after it');
  });
});
