import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DirtySet, dueAt } from '../../src/dirty.js';

const timing = { debounceMs: 1000, maxDelayMs: 5000 };

describe('dirty set and backup timing', () => {
  it('is due one debounce after the last change while changes pause', () => {
    const dirty = new DirtySet();
    assert.equal(dueAt(dirty, timing), null, 'nothing dirty, nothing due');
    dirty.mark('pre-key-1.json', 10_000);
    assert.equal(dueAt(dirty, timing), 11_000);
    dirty.mark('session-1.json', 10_400);
    assert.equal(dueAt(dirty, timing), 11_400, 'each change pushes the quiet period out');
  });

  it('never waits longer than max-delay after the first unsaved change under constant churn', () => {
    const dirty = new DirtySet();
    for (let t = 0; t <= 8000; t += 200) dirty.mark(`session-${t}.json`, t);
    assert.equal(dueAt(dirty, timing), 5000);
  });

  it('keeps the oldest change time of a name that changes again', () => {
    const dirty = new DirtySet();
    dirty.mark('creds.json', 100);
    dirty.mark('creds.json', 4000);
    assert.equal(dirty.oldestSince(), 100);
    assert.equal(dueAt(dirty, timing), 5000);
  });

  it('clears only what a backup read: changes during the backup stay dirty', () => {
    const dirty = new DirtySet();
    dirty.mark('a.json', 1);
    dirty.mark('b.json', 2);
    const checkpoint = dirty.checkpoint();
    dirty.mark('b.json', 3); // written again while the backup was running
    dirty.mark('c.json', 4);
    dirty.clearUpTo(checkpoint);
    assert.deepEqual(dirty.names().sort(), ['b.json', 'c.json']);
    assert.equal(dirty.oldestSince(), 2, 'b.json is still unsaved since its first change');
    dirty.clearUpTo(dirty.checkpoint());
    assert.equal(dirty.size, 0);
    assert.equal(dirty.oldestSince(), null);
    assert.equal(dueAt(dirty, timing), null);
  });
});
