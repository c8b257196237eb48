// restore --sessions-dir reads the heads of many sessions in one go, a batch at a time, and writes a bounded
// number of directories at once: every outcome stays the one a session restored by itself would have
// (tombstones, logouts, a writer's hand-over, encryption, a folder that cannot be written), and the
// sessions a batch settles cost no query of their own.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { restoreSessions, type RestoreConfig, type RestoreOutcome } from '../../src/commands/restore.js';
import { loadConfig } from '../../src/config.js';
import { KeyRing, makeKey } from '../../src/crypto.js';
import { readSnapshot } from '../../src/snapshot.js';
import { SessionStore } from '../../src/store/index.js';
import { tempDir } from '../support/fs.js';
import { testStore, type TestStore } from '../support/store.js';

/** A logger whose messages the test reads. */
function capturingLog(): { log: pino.Logger; messages: () => string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

/** The store, with a count of each method called on it (how many reads the restore made). */
function counting(store: SessionStore): { store: SessionStore; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function' || typeof name !== 'string') return value;
      return (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

function configFor(sessionsDir: string, prefix: string, leaseWaitMs = 60_000): RestoreConfig {
  const config = loadConfig('restore', ['--sessions-dir', sessionsDir, '--session-prefix', prefix], {}, sessionsDir);
  return { ...config, leaseWaitMs };
}

/** Backs up `dir` as session `id` under a lease of its own, released after. */
async function backUp(t: TestStore, store: SessionStore, id: string, dir: string): Promise<void> {
  const lease = await t.lease(id, `writer-${id}`);
  const result = await store.backup(id, await readSnapshot(dir), { lease, allowReplace: true, reason: 'backup' });
  assert.equal(result.kind, 'success');
  await store.releaseLease(id, lease);
}

describe('restore --sessions-dir in batches', async () => {
  const t = await testStore('restore-batches');
  const sources = [await tempDir('batch-a'), await tempDir('batch-b'), await tempDir('batch-c')];
  for (const [i, dir] of sources.entries()) await writeSession(dir, { preKeys: 2 + i });
  const sourceOf = (i: number) => sources[i % sources.length]!;

  it('restores more sessions than one batch, each its own head, with one read per batch', async () => {
    for (let i = 0; i < 7; i++) await backUp(t, t.store, `many-${i}`, sourceOf(i));
    // Among them, a removed session and a logged-out one: neither writes a login.
    await backUp(t, t.store, 'many-gone', sourceOf(0));
    const gone = await t.lease('many-gone', 'remover');
    await t.store.tombstone('many-gone', gone);
    await t.store.releaseLease('many-gone', gone);
    await backUp(t, t.store, 'many-out', sourceOf(1));
    const out = await t.lease('many-out', 'logout');
    await t.store.logout('many-out', out);
    await t.store.releaseLease('many-out', out);

    const target = await tempDir('batch-target');
    const { store, calls } = counting(t.store);
    const { log, messages } = capturingLog();
    const outcomes = new Map<string, RestoreOutcome | 'failure'>();
    const code = await restoreSessions(
      configFor(target, 'many-'),
      log,
      (fn) => fn(store),
      (id, outcome) => outcomes.set(id, outcome),
      { batchSize: 2 },
    );
    assert.equal(code, 0, messages().join('\n'));
    for (let i = 0; i < 7; i++) {
      assert.equal(outcomes.get(`many-${i}`), 'restored');
      assert.deepEqual(await readTree(path.join(target, String(i))), await readTree(sourceOf(i)), `session many-${i}`);
    }
    assert.equal(outcomes.get('many-out'), 'empty');
    assert.equal(outcomes.has('many-gone'), false);
    assert.deepEqual(await readdir(path.join(target, 'out')).catch(() => []), [], 'a logged-out session gets no login');
    assert.deepEqual(await readdir(path.join(target, 'gone')).catch(() => []), [], 'a removed session is not restored');
    assert.ok(messages().some((m) => /session many-out was logged out at .*no login was written/.test(m)));
    assert.ok(messages().some((m) => /session many-gone was removed \(a tombstone\): not restored/.test(m)));
    assert.ok(messages().includes('sessions restored: 7 restored, 0 already logged in, 1 empty, 1 removed (not restored), 0 failed'));
    // 8 sessions to restore in batches of 2: four batch reads; only the logged-out one is read by itself.
    assert.equal(calls.get('loadHeads'), 4);
    assert.equal(calls.get('loadPoint') ?? 0, 1);
    assert.equal(calls.get('leaseHolder') ?? 0, 1);
  });

  it("ends a batch at its byte bound too: memory follows the sessions' sizes, not only their number", async () => {
    for (let i = 0; i < 4; i++) await backUp(t, t.store, `bytes-${i}`, sourceOf(i));
    for (const [batchBytes, reads] of [
      [1, 4], // every session over the bound: a batch each
      [Number.MAX_SAFE_INTEGER, 1], // no byte bound: one batch of four
    ] as const) {
      const target = await tempDir('bytes-target');
      const { store, calls } = counting(t.store);
      const { log, messages } = capturingLog();
      const code = await restoreSessions(configFor(target, 'bytes-'), log, (fn) => fn(store), undefined, { batchSize: 64, batchBytes });
      assert.equal(code, 0, messages().join('\n'));
      assert.equal(calls.get('loadHeads'), reads, `batchBytes ${batchBytes}`);
      for (let i = 0; i < 4; i++) assert.deepEqual(await readTree(path.join(target, String(i))), await readTree(sourceOf(i)));
    }
  });

  it("waits for a live writer's hand-over of its session alone; the others are restored meanwhile", async () => {
    for (const id of ['held-a', 'held-b', 'held-c']) await backUp(t, t.store, id, sourceOf(0));
    await t.lease('held-b', 'old-pod:1', 60_000);
    const target = await tempDir('held-target');
    const { store, calls } = counting(t.store);
    const { log, messages } = capturingLog();
    const restoredAt = new Map<string, number>();
    const started = Date.now();
    const code = await restoreSessions(
      configFor(target, 'held-', 1500),
      log,
      (fn) => fn(store),
      (id) => restoredAt.set(id, Date.now() - started),
      { batchSize: 2 },
    );
    assert.equal(code, 0, messages().join('\n'));
    assert.equal(messages().filter((m) => m.startsWith('another instance holds the session')).length, 1);
    assert.ok(messages().some((m) => m.startsWith('the other instance still holds the session after --lease-wait')));
    for (const name of ['a', 'b', 'c']) assert.deepEqual(await readTree(path.join(target, name)), await readTree(sourceOf(0)));
    // Only the held session paid the wait: the others were restored before it ended.
    assert.ok(restoredAt.get('held-b')! >= 1500);
    assert.ok(restoredAt.get('held-a')! < 1500 && restoredAt.get('held-c')! < 1500, JSON.stringify([...restoredAt]));
    assert.equal(calls.get('loadPoint'), 1);
  });

  it('one folder that cannot be written fails alone, with exit 1; the rest of its batch is restored', async () => {
    for (const id of ['disk-a', 'disk-b', 'disk-c', 'disk-d']) await backUp(t, t.store, id, sourceOf(2));
    const target = await tempDir('disk-target');
    await mkdir(target, { recursive: true });
    // A file where session disk-b's folder goes: its directory cannot be created.
    await writeFile(path.join(target, 'b'), 'in the way');
    const { log, messages } = capturingLog();
    const outcomes = new Map<string, RestoreOutcome | 'failure'>();
    const code = await restoreSessions(
      configFor(target, 'disk-'),
      log,
      (fn) => fn(t.store),
      (id, outcome) => outcomes.set(id, outcome),
      { batchSize: 3 },
    );
    assert.equal(code, 1, messages().join('\n'));
    assert.equal(outcomes.get('disk-b'), 'failure');
    assert.ok(messages().some((m) => /^session disk-b could not be restored: /.test(m)));
    assert.ok(messages().includes('sessions restored: 3 restored, 0 already logged in, 0 empty, 0 removed (not restored), 1 failed'));
    for (const name of ['a', 'c', 'd']) assert.deepEqual(await readTree(path.join(target, name)), await readTree(sourceOf(2)));
  });

  it('a stored row that fails its check fails its session alone (exit 4, nothing written there); its batch is restored', async () => {
    for (const id of ['bad-a', 'bad-b', 'bad-c']) await backUp(t, t.store, id, sourceOf(0));
    await query(
      t.url,
      "UPDATE baileys_keeper.files SET content = 'not what was stored' WHERE session_id = 'bad-b' AND name = 'creds.json'",
    );
    const target = await tempDir('bad-target');
    const { log, messages } = capturingLog();
    const code = await restoreSessions(configFor(target, 'bad-'), log, (fn) => fn(t.store), undefined, { batchSize: 3 });
    assert.equal(code, 4, messages().join('\n'));
    assert.ok(
      messages().some((m) => /^session bad-b could not be restored: generation 1 of session bad-b failed its integrity check/.test(m)),
    );
    assert.deepEqual(await readdir(path.join(target, 'b')).catch(() => []), []);
    for (const name of ['a', 'c']) assert.deepEqual(await readTree(path.join(target, name)), await readTree(sourceOf(0)));
  });

  it('keeps a directory that holds a login and restores the rest of its batch', async () => {
    for (const id of ['kept-a', 'kept-b', 'kept-c']) await backUp(t, t.store, id, sourceOf(1));
    const target = await tempDir('kept-target');
    await writeSession(path.join(target, 'b'), { preKeys: 1 });
    const before = await readTree(path.join(target, 'b'));
    const { log, messages } = capturingLog();
    const code = await restoreSessions(configFor(target, 'kept-'), log, (fn) => fn(t.store), undefined, { batchSize: 3 });
    assert.equal(code, 0, messages().join('\n'));
    assert.ok(messages().includes('sessions restored: 2 restored, 1 already logged in, 0 empty, 0 removed (not restored), 0 failed'));
    assert.deepEqual(await readTree(path.join(target, 'a')), await readTree(sourceOf(1)));
    assert.deepEqual(await readTree(path.join(target, 'c')), await readTree(sourceOf(1)));
    // Written after the backups, so not older than the head: kept as it is.
    assert.deepEqual(await readTree(path.join(target, 'b')), before);
  });

  it('restores an encrypted store in batches; without its key each session fails as a restore of it alone does (exit 4)', async () => {
    const encrypted = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'k1')]));
    for (let i = 0; i < 5; i++) await backUp(t, encrypted, `enc-${i}`, sourceOf(i));
    const target = await tempDir('enc-target');
    const { log, messages } = capturingLog();
    assert.equal(await restoreSessions(configFor(target, 'enc-'), log, (fn) => fn(encrypted), undefined, { batchSize: 2 }), 0);
    for (let i = 0; i < 5; i++) assert.deepEqual(await readTree(path.join(target, String(i))), await readTree(sourceOf(i)));
    assert.ok(messages().includes('sessions restored: 5 restored, 0 already logged in, 0 empty, 0 removed (not restored), 0 failed'));

    const wrongKey = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'k2')]));
    const elsewhere = await tempDir('enc-no-key');
    const failing = capturingLog();
    const code = await restoreSessions(configFor(elsewhere, 'enc-'), failing.log, (fn) => fn(wrongKey), undefined, { batchSize: 2 });
    assert.equal(code, 4, failing.messages().join('\n'));
    assert.equal(failing.messages().filter((m) => /^session enc-\d could not be restored: .*k1/.test(m)).length, 5);
    for (let i = 0; i < 5; i++) assert.deepEqual(await readdir(path.join(elsewhere, String(i))).catch(() => []), []);
  });
});
