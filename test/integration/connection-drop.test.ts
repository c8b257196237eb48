// A connection dropped in the middle of a transaction fails that transaction; it must not crash the
// process (pg emits 'error' on a checked-out client besides failing its query, and nothing listened).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createDatabase } from '../../src/db/pool.js';
import { freshDatabase } from '../support/db.js';
import { testLog } from '../support/log.js';
import { tcpProxy } from '../../harness/proxy.js';

describe('a connection dropped mid-transaction', async () => {
  const url = await freshDatabase('conndrop');
  let cutAtCommit = false;
  const proxy = await tcpProxy(url, (chunk) => (cutAtCommit && chunk.toString('latin1').includes('COMMIT\0') ? 'cut-before' : 'pass'));
  const db = createDatabase({ url: proxy.url, schema: 'public', log: testLog });
  after(async () => {
    await db.close();
    await proxy.close();
  });

  it('between two statements: the transaction fails, the process lives, the next one works', async () => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query('SELECT 1');
        proxy.cut();
        await new Promise((resolve) => setTimeout(resolve, 100)); // the close reaches the client while it is idle in the transaction
        await tx.query('SELECT 2');
      }),
    );
    assert.equal((await db.query<{ n: number }>('SELECT 3 AS n')).rows[0]!.n, 3);
  });

  it('as COMMIT is sent: the transaction fails, the process lives, the next one works', async () => {
    await db.query('CREATE TABLE IF NOT EXISTS drop_probe (n int)');
    cutAtCommit = true;
    await assert.rejects(db.transaction((tx) => tx.query('INSERT INTO drop_probe VALUES (1)')));
    cutAtCommit = false;
    assert.equal(
      (await db.query<{ n: string }>('SELECT count(*) AS n FROM drop_probe')).rows[0]!.n,
      '0',
      'the cut COMMIT never reached the server',
    );
    await db.transaction((tx) => tx.query('INSERT INTO drop_probe VALUES (2)'));
    assert.equal(proxy.cuts(), 2);
  });
});
