// One-off queries on a PostgreSQL URL, for the harness and the tests to read what the keeper stored.
import pg from 'pg';

/** Runs fn with a short-lived client on `url`; the client is closed whatever fn does. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** One query on `url`; resolves with its rows, rejects with pg's error. */
export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<R[]> {
  return withClient(url, async (client) => (await client.query<R>(sql, values)).rows);
}
