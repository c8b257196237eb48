// An in-process store on a fresh database, for tests that drive SessionStore directly.
import { after } from 'node:test';
import { openDatabase, type Database } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { SessionStore, type Lease } from '../../src/store/index.js';
import { freshDatabase } from './db.js';
import { testLog } from './log.js';

export interface TestStore {
  url: string;
  db: Database;
  store: SessionStore;
  /** Takes the session's lease for `owner` (default "test:1"). */
  lease(sessionId: string, owner?: string, ttlMs?: number): Promise<Lease>;
}

export async function testStore(label: string): Promise<TestStore> {
  const url = await freshDatabase(label);
  const db = await openDatabase({ url, schema: 'baileys_keeper', log: testLog });
  after(() => db.close());
  await migrate(db);
  const store = new SessionStore(db);
  return {
    url,
    db,
    store,
    async lease(sessionId, owner = 'test:1', ttlMs = 60_000) {
      const lease = await store.acquireLease(sessionId, owner, ttlMs);
      if (!lease) throw new Error(`lease on ${sessionId} is held by someone else`);
      return lease;
    },
  };
}
