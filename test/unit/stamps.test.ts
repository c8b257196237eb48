// The recorded file metadata (files.stamp) round-trips exactly, 64-bit values included, and anything that
// is not five decimal numbers is never trusted as a stamp.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sameStamp, trustworthy, RACY_WINDOW_NS } from '../../src/audit.js';
import { decodeStamp, encodeStamp } from '../../src/store/stamps.js';

describe('recorded file stamps', () => {
  const stamp = { dev: 2049n, ino: 18446744073709551557n, size: 1190, mtimeNs: 1796554359852191513n, ctimeNs: 1796554359852191514n };

  it('round-trips every field exactly, beyond 2^53', () => {
    const decoded = decodeStamp(encodeStamp(stamp));
    assert.deepEqual(decoded, stamp);
    assert.ok(decoded && sameStamp(decoded, stamp));
  });

  it('reads NULL and malformed text as not known', () => {
    for (const text of [null, '', '1:2:3:4', '1:2:3:4:5:6', '1:2:x:4:5', '-1:2:3:4:5', ' 1:2:3:4:5'])
      assert.equal(decodeStamp(text), null, String(text));
  });

  it('tells stamps apart by any one field', () => {
    for (const field of ['dev', 'ino', 'mtimeNs', 'ctimeNs'] as const)
      assert.ok(!sameStamp(stamp, { ...stamp, [field]: stamp[field] + 1n }), field);
    assert.ok(!sameStamp(stamp, { ...stamp, size: stamp.size + 1 }), 'size');
  });

  it('trusts a stamp only when both times are older than the racy window at the read', () => {
    const readAt = stamp.ctimeNs + RACY_WINDOW_NS;
    assert.ok(!trustworthy(stamp, readAt), 'changed exactly one window before the read');
    assert.ok(trustworthy(stamp, readAt + 1n));
    assert.ok(!trustworthy({ ...stamp, ctimeNs: readAt }, readAt + 1n), 'a recent ctime (a rename, a chmod) is racy too');
  });
});
