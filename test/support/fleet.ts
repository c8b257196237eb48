// A SessionFleet in this process on a manual clock, over a real PostgreSQL and session directories written
// by the real Baileys writer, for the rules of many sessions that are about time.
import path from 'node:path';
import { after } from 'node:test';
import type { Logger } from 'pino';
import { writeSession } from '../../harness/baileys.js';
import { waitFor } from '../../harness/sidecar.js';
import {
  DEFAULT_DEBOUNCE_MS,
  DEFAULT_KEEP_GENERATIONS,
  DEFAULT_MAX_DELAY_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RETENTION,
} from '../../src/config.js';
import { createDatabase, type Database } from '../../src/db/pool.js';
import { SessionFleet } from '../../src/fleet.js';
import { Metrics } from '../../src/metrics.js';
import { SessionStore } from '../../src/store/index.js';
import { parseRetention } from '../../src/store/retention.js';
import { tempDir } from './fs.js';
import { testLog } from './log.js';
import { ManualClock } from './manual-clock.js';

export const FLEET_TTL_MS = 30_000;
export const FLEET_INTERVAL_MS = 120_000;
/** What every loop of a test fleet shares: the CLI's defaults, native watching, no quiet wait at shutdown. */
export const FLEET_LOOP_OPTIONS = {
  retention: parseRetention(DEFAULT_RETENTION, DEFAULT_KEEP_GENERATIONS),
  allowReplace: false,
  debounceMs: DEFAULT_DEBOUNCE_MS,
  maxDelayMs: DEFAULT_MAX_DELAY_MS,
  intervalMs: FLEET_INTERVAL_MS,
  leaseTtlMs: FLEET_TTL_MS,
  shutdownQuietMs: 0,
  shutdownTimeoutMs: 10_000,
  watchMode: 'native',
  pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
} as const;

/**
 * Writes a small Baileys session into a new sessions directory for each of `names` and starts a fleet over
 * them (prefix `f-`) on `url`, with `makeStore`'s store (default the plain one) and `log` (default quiet).
 * Resolves once it is ready with every lease held; it is shut down and its pool closed after the calling test.
 */
export async function startFleet<S extends SessionStore = SessionStore>(
  url: string,
  names: string[],
  { makeStore, log = testLog }: { makeStore?: (db: Database) => S; log?: Logger } = {},
) {
  const sessionsDir = await tempDir('fleet');
  for (const name of names) await writeSession(path.join(sessionsDir, name), { preKeys: 2, sessions: 1, senderKeys: 1 });
  const clock = new ManualClock();
  const db = createDatabase({ url, schema: 'baileys_keeper', log: testLog, maxConnections: 4 });
  const store = makeStore ? makeStore(db) : (new SessionStore(db) as S);
  const metrics = new Metrics(undefined, { manySessions: true });
  const fleet = new SessionFleet(
    store,
    {
      sessionsDir,
      prefix: 'f-',
      tombstoneAfterMs: FLEET_INTERVAL_MS,
      owner: `fleet-test:${process.pid}`,
      ...FLEET_LOOP_OPTIONS,
    },
    metrics,
    log,
    clock,
  );
  // Each timer's work (a backup, a lease attempt) ends before the clock moves on.
  clock.settle = () => fleet.whenIdle();
  after(async () => {
    await clock.runUntilSettled(fleet.shutdown(0));
    await db.close();
  });
  await fleet.start();
  await waitFor(
    async () => {
      await clock.advance(0);
      return fleet.ready && fleet.sessionIds().every((id) => fleet.loopFor(id)?.writerLease) ? true : null;
    },
    20_000,
    () => `the fleet never became ready with every lease held: ${fleet.problems.join('; ')}`,
  );
  return { fleet, store, clock, sessionsDir, metrics };
}
