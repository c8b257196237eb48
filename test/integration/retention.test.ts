// Thinning a real history: generations written by the real Baileys writer, their times spread over
// weeks (set in the database, as if the bot had run that long), thinned by the default schedule.
// Every retained generation must restore exactly what it held before, encrypted or not.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { KeyRing, makeKey } from '../../src/crypto.js';
import { DEFAULT_RETENTION, parseRetention, retainedGenerations } from '../../src/store/retention.js';
import { readSnapshot } from '../../src/snapshot.js';
import { SessionStore } from '../../src/store/index.js';
import { writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { testStore } from '../support/store.js';

const fast = { retryDelaysMs: [1, 1] };
const HOUR = 3_600_000;

describe('thinning a history to the retention schedule', async () => {
  const t = await testStore('retention');
  const encrypted = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'k1')]));

  /**
   * `count` generations of one session, one every `everyMs` ending now (by the database's clock): each
   * rotates a session record and a pre-key the way a chatting bot does. Returns every generation's
   * content as the store gives it back before any thinning.
   */
  async function buildHistory(store: SessionStore, sessionId: string, count: number, everyMs: number) {
    const dir = await tempDir(`history-${sessionId}`);
    const auth = await writeSession(dir, { preKeys: 6 });
    const [{ now }] = (await query<{ now: Date }>(t.url, 'SELECT now()')) as [{ now: Date }];
    for (let i = 0; i < count; i++) {
      await auth.state.keys.set({
        session: { [`5511${i % 7}.0`]: randomBytes(64) },
        'pre-key': { [String(100 + i)]: Curve.generateKeyPair(), [String(100 + i - 3)]: null },
      } as never);
      const lease = await t.lease(sessionId);
      const result = await store.backup(sessionId, await readSnapshot(dir, fast), { lease, allowReplace: false, reason: 'test' });
      await store.releaseLease(sessionId, lease);
      assert.equal(result.kind, 'success');
      const at = new Date(now.getTime() - (count - 1 - i) * everyMs);
      await query(t.url, 'UPDATE baileys_keeper.generations SET created_at = $3 WHERE session_id = $1 AND generation = $2', [
        sessionId,
        result.generation,
        at,
      ]);
    }
    const before = new Map<number, Map<string, string>>();
    for (const g of await store.history(sessionId)) {
      const point = (await store.loadPoint(sessionId, { generation: g.generation }))!;
      before.set(g.generation, new Map(point.files.map((file) => [file.name, file.content.toString('base64')])));
    }
    return { dir, before };
  }

  for (const [label, store] of [
    ['plaintext', t.store],
    ['encrypted', encrypted],
  ] as const) {
    it(`${label}: every retained generation restores exactly; nothing is kept that no retained generation can see`, async () => {
      const sessionId = `thin-${label}`;
      // 120 generations, one every 6 hours: 30 days, spanning every tier of the default schedule.
      const { before } = await buildHistory(store, sessionId, 120, 6 * HOUR);
      const policy = parseRetention(DEFAULT_RETENTION, 5);
      const dated = (await store.history(sessionId)).map((g) => ({ generation: g.generation, createdAt: g.createdAt }));
      const [{ now }] = (await query<{ now: Date }>(t.url, 'SELECT now()')) as [{ now: Date }];
      const expected = [...retainedGenerations(dated, policy, now)].sort((a, b) => b - a);

      const thinned = await store.thin(sessionId, policy);
      assert.ok(thinned.generations > 0 && thinned.files > 0, JSON.stringify(thinned));
      const kept = (await store.history(sessionId)).map((g) => g.generation);
      assert.deepEqual(kept, expected);
      assert.ok(kept.length < 60, `thinned: ${kept.length} of 120 kept`);
      assert.equal(kept[0], 120, 'the head is kept');
      for (const generation of kept) {
        const point = (await store.loadPoint(sessionId, { generation }))!;
        assert.deepEqual(
          new Map(point.files.map((file) => [file.name, file.content.toString('base64')])),
          before.get(generation),
          `generation ${generation}`,
        );
      }
      const [{ invisible }] = (await query<{ invisible: string }>(
        t.url,
        `SELECT count(*) AS invisible FROM baileys_keeper.files f WHERE f.session_id = $1 AND NOT EXISTS (
           SELECT 1 FROM baileys_keeper.generations g WHERE g.session_id = f.session_id AND g.generation >= f.generation_from
             AND (f.generation_to IS NULL OR g.generation < f.generation_to))`,
        [sessionId],
      )) as [{ invisible: string }];
      assert.equal(invisible, '0');
      const gone = [...before.keys()].find((generation) => !kept.includes(generation))!;
      await assert.rejects(
        store.loadPoint(sessionId, { generation: gone }),
        /is not retained; \d+ generations between \d+ and 120 are retained .*thinned by the retention schedule: 'baileys-keeper history' lists them/,
      );
      const verified = await store.verify(sessionId);
      assert.deepEqual(verified.failures, []);
      assert.ok(verified.checked > 0);
      // A second pass finds nothing more to do.
      assert.deepEqual(await store.thin(sessionId, policy), { generations: 0, files: 0, retained: kept.length, transactions: 0 });
    });
  }

  it('a pass cut off after deleting generations leaves nothing behind once a later pass sweeps the whole session', async () => {
    const sessionId = 'thin-interrupted';
    await buildHistory(t.store, sessionId, 12, HOUR);
    // What a pass that died between its two phases leaves: generations gone, their file versions not.
    await query(t.url, 'DELETE FROM baileys_keeper.generations WHERE session_id = $1 AND generation BETWEEN 3 AND 8', [sessionId]);
    const invisible = async () =>
      Number(
        (
          await query<{ n: string }>(
            t.url,
            `SELECT count(*) AS n FROM baileys_keeper.files f WHERE f.session_id = $1 AND NOT EXISTS (
               SELECT 1 FROM baileys_keeper.generations g WHERE g.session_id = f.session_id AND g.generation >= f.generation_from
                 AND (f.generation_to IS NULL OR g.generation < f.generation_to))`,
            [sessionId],
          )
        )[0]!.n,
      );
    assert.ok((await invisible()) > 0, 'the cut-off pass left orphaned file versions');
    const everything = parseRetention('1h:all,30d:1h', 100); // keeps all that is left: nothing doomed
    assert.equal((await t.store.thin(sessionId, everything)).files, 0, 'a pass with nothing doomed does not look');
    const swept = await t.store.thin(sessionId, everything, { sweepAll: true });
    assert.ok(swept.files > 0 && swept.generations === 0, JSON.stringify(swept));
    assert.equal(await invisible(), 0);
  });

  it('backups keep going while a large thinning runs; both stay consistent', async () => {
    const sessionId = 'thin-concurrent';
    const { dir, before } = await buildHistory(t.store, sessionId, 200, 10 * 60_000);
    const lease = await t.lease(sessionId);
    const auth = await writeSession(dir, { preKeys: 1 });
    const thinning = t.store.thin(sessionId, parseRetention('none', 3));
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      await auth.state.keys.set({ session: { [`5599${i}.0`]: randomBytes(32) } } as never);
      const result = await t.store.backup(sessionId, await readSnapshot(dir, fast), { lease, allowReplace: true, reason: 'test' });
      if (result.kind === 'success') during.push(result.generation);
    }
    await thinning;
    await t.store.releaseLease(sessionId, lease);
    const kept = (await t.store.history(sessionId)).map((g) => g.generation);
    for (const generation of during) assert.ok(kept.includes(generation), `generation ${generation}, written during the thinning, is kept`);
    for (const generation of kept.filter((g) => before.has(g))) {
      const point = (await t.store.loadPoint(sessionId, { generation }))!;
      assert.deepEqual(
        new Map(point.files.map((file) => [file.name, file.content.toString('base64')])),
        before.get(generation),
        `generation ${generation}`,
      );
    }
    const head = (await t.store.loadPoint(sessionId, {}))!;
    const snapshot = await readSnapshot(dir, fast);
    assert.deepEqual(new Set(head.files.map((file) => file.name)), new Set(snapshot.files.keys()));
  });
});
