// The rules of the log lines themselves: durations rounded by one rule for every field that carries one,
// and a message kept on one terminal line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { oneLine, roundDurations } from '../../src/log.js';

describe('log lines', () => {
  it('rounds every duration field, by its name, to the millisecond', () => {
    assert.deepEqual(roundDurations({ ms: 12.345678, retryInMs: 249.5, outageMs: 1000.0001, lagSeconds: 1.23456789, seconds: 0.0004 }), {
      ms: 12,
      retryInMs: 250,
      outageMs: 1000,
      lagSeconds: 1.235,
      seconds: 0,
    });
  });

  it('leaves other fields, whole numbers and non-numbers as they are', () => {
    const fields = { files: 3, bytes: 1024.5, ratio: 0.333, ms: 7, session: 'a', generation: 12, waitMs: 'soon', lag: Number.NaN };
    assert.deepEqual(roundDurations(fields), fields);
    assert.equal(roundDurations(fields), fields, 'nothing to round: the same object, no copy');
  });

  it('keeps a message on one line: line breaks written as \\n, control characters dropped', () => {
    assert.equal(oneLine('the server said:\nFATAL: no\r\nbye\u0007'), 'the server said:\\nFATAL: no\\nbye');
    assert.equal(oneLine(undefined), '');
    assert.equal(oneLine(42), '42');
  });
});
