// Each test file gets its own database on the run's PostgreSQL (TEST_DATABASE_URL, set by run-tests).
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import type pg from 'pg';
import { withClient } from '../../harness/db.js';

export function adminUrl(): string {
  const url = process.env['TEST_DATABASE_URL'];
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the suite with `npm test`');
  return url;
}

/** The admin URL with another database name. */
export function urlFor(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Creates a fresh, empty database for the calling test file and drops it when the file's tests end
 * (kept when KEEPER_TEST_KEEP_DB=1, to inspect a failure).
 */
export async function freshDatabase(label: string): Promise<string> {
  const name = `bk_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  after(async () => {
    if (process.env['KEEPER_TEST_KEEP_DB'] === '1') return;
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
  return urlFor(name);
}

export async function adminQuery(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  return withClient(adminUrl(), (client) => client.query(sql, values));
}
