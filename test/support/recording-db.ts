// A database that records the text of every statement it is sent (the statements still run on the real
// server): how tests count what a store operation costs the server.
import type { Database, Queryable } from '../../src/db/pool.js';

/** `db` with every statement's text recorded in `sent` (the statements still run on the real server). */
export function recording(db: Database, sent: string[]): Database {
  const record = (q: Queryable): Queryable => ({
    schema: q.schema,
    query: (text, values) => {
      sent.push(text);
      return q.query(text, values);
    },
  });
  return Object.assign(Object.create(db) as Database, {
    query: record(db).query,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>, mode?: 'snapshot') => db.transaction((tx) => fn(record(tx)), mode),
  });
}
