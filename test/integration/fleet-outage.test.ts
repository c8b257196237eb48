// A keeper of many sessions through a TCP proxy that is cut for a few seconds, on the real clock and a real
// PostgreSQL, every session written to during the cut: the outage is logged once per backoff step for the
// whole keeper (naming what failed, the error and the sessions waiting), not once per session and retry;
// its end once; and every session stores its changes afterwards.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { writeSession } from '../../harness/baileys.js';
import { query } from '../../harness/db.js';
import { tcpProxy } from '../../harness/proxy.js';
import { waitFor } from '../../harness/sidecar.js';
import { DEFAULT_KEEP_GENERATIONS, DEFAULT_POLL_INTERVAL_MS, DEFAULT_RETENTION } from '../../src/config.js';
import { createDatabase } from '../../src/db/pool.js';
import { SessionFleet } from '../../src/fleet.js';
import { Metrics } from '../../src/metrics.js';
import { RETRY_BACKOFF } from '../../src/retry.js';
import { SessionStore } from '../../src/store/index.js';
import { parseRetention } from '../../src/store/retention.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const SESSIONS = 50;
const OUTAGE_MS = 5_000;

interface Line {
  level: number;
  msg: string;
  session?: string;
  sessions?: number;
  operations?: string[];
  err?: string;
}

/** How many lines a keeper may log for one outage of `ms`: its first failure, then one per backoff step. */
function backoffSteps(ms: number): number {
  let steps = 1;
  for (let at = 0, pause = RETRY_BACKOFF.initialMs; at + pause <= ms; at += pause, pause *= RETRY_BACKOFF.factor) steps++;
  return steps;
}

describe('a database outage under a keeper of many sessions', async () => {
  const url = await freshDatabase('fleet-outage');

  it('is logged once per backoff step with the sessions waiting, its end once, and every session stores again', async () => {
    const sessionsDir = await tempDir('fleet-outage');
    for (let i = 0; i < SESSIONS; i++) await writeSession(path.join(sessionsDir, `o${i}`), { preKeys: 1, sessions: 1 });
    const proxy = await tcpProxy(url);
    after(() => proxy.close());
    const lines: Line[] = [];
    const log = pino({ level: 'debug' }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
    const db = createDatabase({ url: proxy.url, schema: 'baileys_keeper', log, maxConnections: 4 });
    const metrics = new Metrics(undefined, { manySessions: true });
    const fleet = new SessionFleet(
      new SessionStore(db),
      {
        sessionsDir,
        prefix: 'out-',
        tombstoneAfterMs: 600_000,
        owner: 'outage-test',
        retention: parseRetention(DEFAULT_RETENTION, DEFAULT_KEEP_GENERATIONS),
        allowReplace: false,
        debounceMs: 100,
        maxDelayMs: 1_000,
        intervalMs: 600_000,
        leaseTtlMs: 60_000,
        shutdownQuietMs: 0,
        shutdownTimeoutMs: 10_000,
        watchMode: 'native',
        pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
      },
      metrics,
      log,
    );
    after(async () => {
      await fleet.shutdown(0);
      await db.close();
    });
    await fleet.start();
    const heads = async () =>
      new Map(
        (
          await query<{ session_id: string; head_generation: string }>(
            url,
            `SELECT session_id, head_generation FROM baileys_keeper.sessions WHERE session_id LIKE 'out-%'`,
          )
        ).map((row) => [row.session_id, Number(row.head_generation)]),
      );
    await waitFor(
      async () => (fleet.ready && [...(await heads()).values()].filter((g) => g > 0).length === SESSIONS ? true : null),
      60_000,
      () => `not every session stored: ${fleet.problems.join('; ')}`,
    );
    const before = await heads();

    const from = lines.length;
    proxy.block(true);
    for (let i = 0; i < SESSIONS; i++) await writeFile(path.join(sessionsDir, `o${i}`, 'app-state-sync-version-regular.json'), '{"v":2}');
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    const cutFor = OUTAGE_MS + 1_000; // the writes and the timer's lateness
    proxy.block(false);
    await waitFor(
      async () => {
        const now = await heads();
        return [...before].every(([session, generation]) => (now.get(session) ?? 0) > generation) ? true : null;
      },
      60_000,
      () => 'not every session stored its change after the outage',
    );
    const during = lines.slice(from);
    const loud = during.filter((line) => line.level >= 40);
    assert.ok(loud.length >= 2, `the outage is logged: ${loud.length} lines`);
    assert.ok(
      loud.length <= backoffSteps(cutFor),
      `at most one line per backoff step, not per session: ${loud.length} lines\n${loud.map((l) => l.msg).join('\n')}`,
    );
    for (const line of loud) {
      assert.match(line.msg, /^database unavailable/, 'every loud line is the keeper-wide outage line');
      assert.equal(line.session, undefined, 'no session of its own');
      assert.ok((line.sessions ?? 0) >= 1, 'it counts the sessions waiting');
      assert.ok((line.operations?.length ?? 0) > 0, 'it names the failing operations');
      assert.ok(line.err, 'and the error');
    }
    assert.equal(Math.max(...loud.map((line) => line.sessions ?? 0)), SESSIONS, 'every session was waiting');
    await waitFor(
      () => (lines.slice(from).some((line) => line.msg.startsWith('database reachable again')) ? true : null),
      10_000,
      () => 'the end of the outage was not logged',
    );

    const recovered = lines.slice(from).filter((line) => line.msg.startsWith('database reachable again'));
    assert.equal(recovered.length, 1, 'the end is said once');
    assert.match(recovered[0]!.msg, new RegExp(`; ${SESSIONS} sessions resumed$`));
    const detail = during.filter((line) => line.level === 20 && line.msg === 'database error; retrying' && line.session);
    assert.ok(new Set(detail.map((line) => line.session)).size === SESSIONS, 'each session says its own failures at debug');
  });
});
