// Never backwards (docs/reliability.md), as properties over generated histories on a real PostgreSQL:
// a directory equal to, or derived from, an earlier generation is refused; any later one is accepted.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyRing, makeKey } from '../../src/crypto.js';
import { countersBehind, credsFacts, neverRevisited } from '../../src/rollback.js';
import { sha256, type Snapshot } from '../../src/snapshot.js';
import { SessionStore } from '../../src/store/index.js';
import { testStore } from '../support/store.js';

/** A generated bot's life: each step is one thing Baileys does to the auth directory. */
type Op =
  | { kind: 'batch'; size: number } // uploadPreKeys: new pre-keys, nextPreKeyId and firstUnuploadedPreKeyId grow
  | { kind: 'use' } // a new contact used the oldest one-time pre-key: deleted
  | { kind: 'sync' } // an account sync: accountSyncCounter grows
  | { kind: 'history' } // a history-sync chunk: processedHistoryMessages grows
  | { kind: 'session'; contact: number } // a message: that contact's Signal session moves on
  | { kind: 'other'; slot: number }; // a file of no rule (app-state versions, LID mappings): fresh content

/** The steps that leave a trace an older directory lacks: a counter, a used pre-key, an older session. */
const SIGNAL_KINDS = new Set(['batch', 'use', 'sync', 'history', 'session']);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('batch' as const), size: fc.integer({ min: 1, max: 4 }) }),
  fc.constant({ kind: 'use' as const }),
  fc.constant({ kind: 'sync' as const }),
  fc.constant({ kind: 'history' as const }),
  fc.record({ kind: fc.constant('session' as const), contact: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('other' as const), slot: fc.integer({ min: 0, max: 3 }) }),
);
/** A history: generations of one to three steps each. */
const historyArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 8 });

/** A directory as a bot leaves it; `apply` makes every write unique (random keys, moving ratchets). */
class BotDir {
  files = new Map<string, Buffer>();
  creds = {
    noiseKey: { private: 'n', public: 'N' },
    signedIdentityKey: { private: 'i', public: randomBytes(8).toString('base64') },
    signedPreKey: { keyId: 1 },
    advSecretKey: 'a',
    registrationId: 4242,
    me: { id: '5511987654321:7@s.whatsapp.net' },
    nextPreKeyId: 1,
    firstUnuploadedPreKeyId: 1,
    accountSyncCounter: 0,
    processedHistoryMessages: [] as unknown[],
  };

  constructor() {
    this.apply({ kind: 'batch', size: 3 });
    this.apply({ kind: 'session', contact: 0 });
  }

  clone(): BotDir {
    const copy = Object.create(BotDir.prototype) as BotDir;
    copy.files = new Map(this.files);
    copy.creds = structuredClone(this.creds);
    return copy;
  }

  apply(op: Op): void {
    const fresh = () => randomBytes(12).toString('hex');
    switch (op.kind) {
      case 'batch':
        for (let i = 0; i < op.size; i++) this.files.set(`pre-key-${this.creds.nextPreKeyId++}.json`, json({ key: fresh() }));
        this.creds.firstUnuploadedPreKeyId = this.creds.nextPreKeyId;
        break;
      case 'use': {
        const oldest = [...this.files.keys()].filter((name) => name.startsWith('pre-key-')).sort(byId)[0];
        if (!oldest) {
          this.apply({ kind: 'batch', size: 1 });
          return;
        }
        this.files.delete(oldest);
        break;
      }
      case 'sync':
        this.creds.accountSyncCounter++;
        break;
      case 'history':
        this.creds.processedHistoryMessages.push({ id: fresh() });
        break;
      case 'session':
        this.files.set(`session-5511${op.contact}.0.json`, json({ chain: fresh() }));
        break;
      case 'other':
        this.files.set(`app-state-sync-version-${op.slot}.json`, json({ version: fresh() }));
        break;
    }
    this.files.set('creds.json', json(this.creds));
  }

  snapshot(): Snapshot {
    return {
      files: new Map([...this.files].map(([name, content]) => [name, { name, content, sha256: sha256(content) }])),
      held: new Map(),
    };
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function byId(a: string, b: string): number {
  return Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]);
}

/** Whether `ops` leave a trace `earlier` lacks (a session counts only where `earlier` holds an older one). */
function leavesTrace(ops: readonly Op[], earlier: BotDir): boolean {
  return ops.some((op) => SIGNAL_KINDS.has(op.kind) && (op.kind !== 'session' || earlier.files.has(`session-5511${op.contact}.0.json`)));
}

describe('never backwards: the rules', () => {
  it('compares only the counters that only grow, and only when both sides have them', () => {
    const head = credsFacts(json({ registrationId: 1, signedIdentityKey: { public: 'k' }, nextPreKeyId: 31, accountSyncCounter: 2 }))!;
    const older = credsFacts(
      json({ registrationId: 1, signedIdentityKey: { public: 'k' }, nextPreKeyId: 11, processedHistoryMessages: [] }),
    )!;
    assert.deepEqual(countersBehind(head, older), [{ counter: 'nextPreKeyId', head: 31, dir: 11 }]);
    assert.deepEqual(countersBehind(older, head), [], 'a directory ahead of the head is normal');
    assert.equal(older.identity, head.identity);
    const repaired = credsFacts(json({ registrationId: 2, signedIdentityKey: { public: 'x' } }))!;
    assert.notEqual(repaired.identity, head.identity, 'a re-pair is another login');
  });

  it('knows which files never return to an earlier value', () => {
    for (const name of ['pre-key-7.json', 'session-5511.0.json', 'sender-key-g@g.us--5511--0.json']) assert.ok(neverRevisited(name), name);
    for (const name of ['creds.json', 'sender-key-memory-g@g.us.json', 'app-state-sync-version-regular.json', 'lid-mapping-1.json'])
      assert.ok(!neverRevisited(name), name);
  });
});

describe('never backwards: properties over generated histories', async () => {
  const t = await testStore('rollback');
  const encrypted = new SessionStore(t.db, new KeyRing([makeKey(randomBytes(32), 'k1')]));
  const permissive = new SessionStore(t.db, null, { allowRollback: true });
  let sessions = 0;

  /** Stores each generation of the history; returns the directory after each (index 0: the first backup). */
  async function record(store: SessionStore, sessionId: string, history: readonly Op[][]): Promise<BotDir[]> {
    const lease = await t.lease(sessionId);
    const dir = new BotDir();
    const states = [dir.clone()];
    assert.equal((await store.backup(sessionId, dir.snapshot(), { lease, allowReplace: false, reason: 'test' })).kind, 'success');
    for (const generation of history) {
      for (const op of generation) dir.apply(op);
      const result = await store.backup(sessionId, dir.snapshot(), { lease, allowReplace: false, reason: 'test' });
      assert.equal(result.kind, 'success', `a live step was refused: ${'reason' in result ? result.reason : ''}`);
      states.push(dir.clone());
    }
    return states;
  }

  it('refuses a directory equal to, or derived from, an earlier generation; the head stays', async () => {
    await fc.assert(
      fc.asyncProperty(
        historyArb,
        fc.nat(),
        fc.array(fc.record({ kind: fc.constant('other' as const), slot: fc.integer({ min: 4, max: 6 }) }), { maxLength: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        async (history, pick, neutral, newContacts, withKey) => {
          const earlier = pick % history.length;
          const sessionId = `older-${++sessions}`;
          const store = withKey ? encrypted : t.store;
          const states = await record(store, sessionId, history);
          const older = states[earlier]!.clone();
          // Equal to a generation: older when something since shows it — not when the steps since only added
          // files that come and go (a bot deleting what it wrote is no rollback). Derived from it: when the
          // steps since left a trace it lacks.
          const since = history.slice(earlier).flat();
          const derived = neutral.length > 0 || newContacts > 0;
          if (derived) fc.pre(leavesTrace(since, older));
          else fc.pre(since.some((op) => op.kind !== 'other' || older.files.has(`app-state-sync-version-${op.slot}.json`)));
          // Derived: the stale copy's bot went on writing files no rule covers and sessions with new contacts.
          for (const op of neutral) older.apply(op);
          for (let i = 0; i < newContacts; i++) older.apply({ kind: 'session', contact: 10 + i });
          const head = (await store.summary(sessionId))!.headGeneration;
          const found = await store.rollbackOf(sessionId, older.snapshot());
          assert.ok(found, 'the older directory is recognised');
          const lease = await t.lease(sessionId);
          const result = await store.backup(sessionId, older.snapshot(), { lease, allowReplace: false, reason: 'test' });
          assert.equal(result.kind, 'refused');
          assert.match((result as { reason: string }).reason, /older than the stored head/);
          assert.equal((await store.summary(sessionId))!.headGeneration, head, 'the head is unchanged');
          // The override stores it.
          if (!withKey) {
            const allowed = await permissive.backup(sessionId, older.snapshot(), { lease, allowReplace: false, reason: 'test' });
            assert.equal(allowed.kind, 'success');
          }
        },
      ),
      {
        numRuns: 40,
        // Always tried: since the copy, only a file of no rule changed and a new contact's session
        // appeared; nothing but its equality with the generation shows that the copy is older.
        examples: [[[[{ kind: 'other', slot: 0 }], [{ kind: 'session', contact: 3 }]], 0, [], 0, false]],
      },
    );
  });

  it('accepts a directory that only lacks files the bot wrote and deleted since (no rollback)', async () => {
    const sessionId = `deleted-again-${++sessions}`;
    const states = await record(t.store, sessionId, [[{ kind: 'other', slot: 9 }]]);
    const back = states[1]!.clone();
    back.files.delete('app-state-sync-version-9.json');
    const lease = await t.lease(sessionId);
    const result = await t.store.backup(sessionId, back.snapshot(), { lease, allowReplace: false, reason: 'test' });
    assert.equal(result.kind, 'success', 'reason' in result ? result.reason : '');
  });

  it('accepts any later state: a live bot moving on from the head', async () => {
    await fc.assert(
      fc.asyncProperty(
        historyArb,
        fc.array(opArb, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.boolean(),
        async (history, more, withKey, whole) => {
          const sessionId = `later-${++sessions}`;
          const store = withKey ? encrypted : t.store;
          const states = await record(store, sessionId, history);
          const later = states.at(-1)!.clone();
          for (const op of more) later.apply(op);
          assert.equal(await store.rollbackOf(sessionId, later.snapshot()), null);
          const lease = await t.lease(sessionId);
          // Whole reads and watched names alike.
          const scope = whole ? null : new Set([...later.files.keys(), ...states.at(-1)!.files.keys()]);
          const result = await store.backup(sessionId, later.snapshot(), { lease, allowReplace: false, reason: 'test', scope });
          assert.equal(result.kind, 'success', 'reason' in result ? result.reason : '');
        },
      ),
      { numRuns: 40 },
    );
  });
});
