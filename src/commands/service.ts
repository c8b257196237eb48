// The long-running part shared by `sidecar` and `run`: database pool, metrics, the backup loop (one
// session, or a sessions directory) and HTTP.
import { apiRoutes } from '../api.js';
import type { BackupLoop } from '../loop/backup-loop.js';
import type { ConfigOf } from '../config.js';
import { createDatabase, FLEET_POOL_MAX_CONNECTIONS, type Database } from '../db/pool.js';
import { SessionFleet } from '../fleet.js';
import { healthRoutes } from '../health.js';
import { keepListening, type Route } from '../http.js';
import { leaseOwner } from '../lease.js';
import type { Logger } from '../log.js';
import { Metrics, readingsOf } from '../metrics.js';
import { SchemaGate } from '../schema-gate.js';
import { sleep, systemClock } from '../clock.js';
import { Heartbeat } from '../notify/heartbeat.js';
import { WebhookSender } from '../notify/webhook.js';
import { overviewRoute } from '../overview.js';
import { RecentEvents } from '../recent-events.js';
import { eventSink, type EventForwarder } from '../session-events.js';
import { statusPageRoute } from '../status-page.js';
import type { SessionLoopOptions } from '../loop/loop-options.js';
import { SessionLoop } from '../loop/session-loop.js';
import { SessionStore } from '../store/index.js';
import type { Context } from './command.js';
import type { DatabaseTarget } from './database.js';

type Http = Awaited<ReturnType<typeof keepListening>>;

export interface Service {
  /** The backup loop: a SessionLoop for one session, a SessionFleet with --sessions-dir. */
  loop: BackupLoop;
  metrics: Metrics;
  store: SessionStore;
  /** HTTP (probes, metrics, the session API) while it listens; see keepListening. */
  http: Http;
  /**
   * Gives queued webhook events up to WEBHOOK_CLOSE_MS to be delivered and stops the heartbeat (after the
   * loop's shutdown, whose final backup may have told an event: a logout stored as the bot exited).
   */
  flushNotifications(): Promise<void>;
  /** Closes HTTP and the pool (after the loop's shutdown). */
  close(): Promise<void>;
}

/**
 * Starts the HTTP server and builds the loop; the caller starts the loop (run: after its restore).
 * `extraReady` gates /readyz further (run: the restore).
 */
export async function startService(
  ctx: Context<'sidecar' | 'run'>,
  target: DatabaseTarget,
  extraReady: () => boolean = () => true,
): Promise<Service> {
  const { config } = ctx;
  const many = config.sessionsDir !== null;
  const metrics = new Metrics(undefined, { manySessions: many });
  const db: Database = createDatabase({
    url: target.url,
    schema: config.schema,
    log: ctx.log.child({ component: 'db' }),
    onError: () => metrics.databaseErrors.inc(),
    ...(many ? { maxConnections: FLEET_POOL_MAX_CONNECTIONS } : {}),
  });
  const store = new SessionStore(db, config.encryption, {
    requireEncryption: config.requireEncryption,
    allowRollback: config.allowRollback,
  });
  const owner = leaseOwner();
  const notify = notifications(config, metrics, ctx.log);
  // The status page's "last events": kept in memory since this process started.
  const recentEvents = new RecentEvents(systemClock.wall);
  const onEvent = eventSink(metrics, ctx.log, [...notify.forwarders, recentEvents]);
  // One schema preparation for the loop and the API: the API answers 503 until this preparation itself
  // succeeded. (A keeper of many sessions migrates for its sessions on its own, but one whose sessions
  // directory is empty is "ready" before anything was migrated: readiness proves nothing about the schema.)
  const schema = new SchemaGate(() => store.prepare());
  const loop = buildLoop(config, store, metrics, owner, schema, ctx.log, onEvent);
  notify.startHeartbeat(loop);
  // Started now for a keeper of many sessions too, so that its API does not wait for the first request.
  if (many) void schema.ensure().catch(() => undefined);
  const routes: Route[] = [
    ...apiRoutes({
      store,
      loop,
      owner,
      token: config.apiToken,
      maxBodyBytes: config.maxBodyBytes,
      retention: config.retention,
      allowReplace: config.allowReplace,
      schema,
      log: ctx.log.child({ component: 'api' }),
      onEvent,
      recentEvents: () => recentEvents.list(),
    }),
    ...healthRoutes(loop, metrics, extraReady, schema),
    overviewRoute({ loop, metrics, schema, extraReady, apiEnabled: config.apiToken !== null }),
    statusPageRoute(),
  ];
  let http: Http;
  try {
    // Beside the backups, never instead of them: a busy port is said once and retried (src/http.ts).
    http = await keepListening(config.listen, routes, ctx.log.child({ component: 'http' }));
  } catch (error) {
    await notify.close();
    await db.close();
    throw error;
  }
  return {
    loop,
    metrics,
    store,
    http,
    flushNotifications: () => notify.close(),
    async close() {
      await notify.close();
      await http.close();
      await db.close();
    },
  };
}

/** How often the heartbeat looks whether the loop is ready to start pinging, ms. */
const HEARTBEAT_READY_POLL_MS = 500;
/** Time shutdown gives queued webhook events to be delivered, ms (the rest are dropped and counted). */
export const WEBHOOK_CLOSE_MS = 3_000;

/**
 * The webhook sender and the heartbeat, as configured (SPEC "Session lifecycle"): `forwarders` for the
 * event sink, `startHeartbeat` once the loop exists (the first ping when it is ready, then one each
 * interval while BackupLoop.allProtected), and `close` for shutdown.
 */
function notifications(
  config: ConfigOf<'sidecar' | 'run'>,
  metrics: Metrics,
  log: Logger,
): { forwarders: EventForwarder[]; startHeartbeat(loop: BackupLoop): void; close(): Promise<void> } {
  const webhook =
    config.webhookUrl === null
      ? null
      : new WebhookSender({
          url: config.webhookUrl,
          secret: config.webhookSecret === null ? null : Buffer.from(config.webhookSecret, 'utf8'),
          clock: systemClock,
          log,
          deliveries: metrics.webhookDeliveries,
        });
  if (webhook) log.info({ url: webhook.display, signed: config.webhookSecret !== null }, 'lifecycle events are sent to the webhook');
  let heartbeat: Heartbeat | null = null;
  let closed = false;
  return {
    forwarders: webhook ? [webhook] : [],
    startHeartbeat(loop) {
      if (config.heartbeatUrl === null) return;
      const beats = new Heartbeat({
        url: config.heartbeatUrl,
        intervalMs: config.heartbeatIntervalMs,
        allProtected: () => loop.allProtected(),
        clock: systemClock,
        log,
        beats: metrics.heartbeats,
      });
      heartbeat = beats;
      // Not before the start-up comparison: a first ping skipped at start would wait a whole interval.
      void (async () => {
        while (!closed && !loop.ready) await sleep(systemClock, HEARTBEAT_READY_POLL_MS);
        if (!closed) beats.start();
      })();
    },
    async close() {
      closed = true;
      await heartbeat?.stop();
      await webhook?.close(WEBHOOK_CLOSE_MS);
    },
  };
}

/** The loop settings every session shares, from the configuration. */
function loopOptions(
  config: ConfigOf<'sidecar' | 'run'>,
  owner: string,
  onEvent: SessionLoopOptions['onEvent'],
): Omit<SessionLoopOptions, 'sessionId' | 'dir'> {
  return {
    owner,
    onEvent,
    retention: config.retention,
    allowReplace: config.allowReplace,
    debounceMs: config.debounceMs,
    maxDelayMs: config.maxDelayMs,
    intervalMs: config.intervalMs,
    leaseTtlMs: config.leaseTtlMs,
    shutdownQuietMs: config.shutdownQuietMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    watchMode: config.watchMode,
    pollIntervalMs: config.pollIntervalMs,
  };
}

function buildLoop(
  config: ConfigOf<'sidecar' | 'run'>,
  store: SessionStore,
  metrics: Metrics,
  owner: string,
  schema: SchemaGate,
  log: Logger,
  onEvent: SessionLoopOptions['onEvent'],
): BackupLoop {
  if (config.sessionsDir !== null) {
    return new SessionFleet(
      store,
      {
        ...loopOptions(config, owner, onEvent),
        sessionsDir: config.sessionsDir,
        prefix: config.sessionPrefix,
        tombstoneAfterMs: config.intervalMs,
      },
      metrics,
      log,
    );
  }
  let loop: SessionLoop | null = null;
  const sessionMetrics = metrics.session(
    config.sessionId,
    readingsOf(() => loop),
  );
  loop = new SessionLoop(
    store,
    {
      ...loopOptions(config, owner, onEvent),
      sessionId: config.sessionId,
      dir: config.dir,
      prepareSchema: () => schema.ensure(),
      showProgress: true,
    },
    sessionMetrics,
    log.child({ session: config.sessionId }),
  );
  return loop;
}
