// What one backup reads of the sessions row: once, under the lock, with the encryption marker's columns —
// counted from the statements a real PostgreSQL is sent, for a plaintext and an encrypted session.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { KeyRing, makeKey } from '../../src/crypto.js';
import type { Database } from '../../src/db/pool.js';
import { readSnapshot } from '../../src/snapshot.js';
import { SessionStore } from '../../src/store/index.js';
import { writeSession } from '../../harness/baileys.js';
import { tempDir } from '../support/fs.js';
import { recording } from '../support/recording-db.js';
import { testStore } from '../support/store.js';

/** Statements that read the sessions table (a SELECT … FROM <schema>.sessions). */
const readsSessions = (text: string) => /^\s*SELECT[\s\S]*\bFROM\s+\S+\.sessions\b/i.test(text);

describe('one backup reads the sessions row once', async () => {
  const t = await testStore('store-reads');
  const stores = {
    plaintext: (db: Database) => new SessionStore(db),
    encrypted: (db: Database) => new SessionStore(db, new KeyRing([makeKey(randomBytes(32), 'k1')])),
  };

  for (const [kind, make] of Object.entries(stores)) {
    it(`${kind}: the first backup, a changed file and a no-op each lock-read it once`, async () => {
      const sessionId = `reads-${kind}`;
      const dir = await tempDir(`reads-${kind}`);
      await writeSession(dir, { preKeys: 5 });
      const lease = await t.lease(sessionId);
      const sent: string[] = [];
      const store = make(recording(t.db, sent));
      const backup = async () => {
        sent.length = 0;
        const result = await store.backup(sessionId, await readSnapshot(dir), { lease, allowReplace: false, reason: 'test' });
        return { kind: result.kind, sessionReads: sent.filter(readsSessions).length };
      };
      assert.deepEqual(await backup(), { kind: 'success', sessionReads: 1 });
      await writeFile(path.join(dir, 'app-state-sync-version-regular.json'), JSON.stringify({ version: 2 }));
      assert.deepEqual(await backup(), { kind: 'success', sessionReads: 1 });
      assert.deepEqual(await backup(), { kind: 'noop', sessionReads: 1 });
    });
  }
});
