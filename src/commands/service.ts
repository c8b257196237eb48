// The long-running part shared by `sidecar` and `run`: database pool, metrics, the backup loop (one
// session, or a sessions directory) and HTTP.
import { apiRoutes } from '../api.js';
import type { BackupLoop } from '../loop/backup-loop.js';
import type { ConfigOf } from '../config.js';
import { createDatabase, FLEET_POOL_MAX_CONNECTIONS, type Database } from '../db/pool.js';
import { SessionFleet } from '../fleet.js';
import { healthRoutes } from '../health.js';
import { startHttpServer, type HttpServer, type Route } from '../http.js';
import { leaseOwner } from '../lease.js';
import type { Logger } from '../log.js';
import { Metrics, readingsOf } from '../metrics.js';
import { SchemaGate } from '../schema-gate.js';
import { eventSink } from '../session-events.js';
import type { SessionLoopOptions } from '../loop/loop-options.js';
import { SessionLoop } from '../loop/session-loop.js';
import { SessionStore } from '../store/index.js';
import type { Context } from './command.js';
import type { DatabaseTarget } from './database.js';

export interface Service {
  /** The backup loop: a SessionLoop for one session, a SessionFleet with --sessions-dir. */
  loop: BackupLoop;
  metrics: Metrics;
  store: SessionStore;
  http: HttpServer;
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
  // One schema preparation for the loop and the API: the API answers 503 until this preparation itself
  // succeeded. (A keeper of many sessions migrates for its sessions on its own, but one whose sessions
  // directory is empty is "ready" before anything was migrated: readiness proves nothing about the schema.)
  const schema = new SchemaGate(() => store.prepare());
  const loop = buildLoop(config, store, metrics, owner, schema, ctx.log);
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
    }),
    ...healthRoutes(loop, metrics, extraReady, schema),
  ];
  let http: HttpServer;
  try {
    http = await startHttpServer(config.listen, routes, ctx.log.child({ component: 'http' }));
  } catch (error) {
    await db.close();
    throw error;
  }
  return {
    loop,
    metrics,
    store,
    http,
    async close() {
      await http.close();
      await db.close();
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
): BackupLoop {
  if (config.sessionsDir !== null) {
    return new SessionFleet(
      store,
      {
        ...loopOptions(config, owner, eventSink(metrics, log)),
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
      ...loopOptions(config, owner, eventSink(metrics, log)),
      sessionId: config.sessionId,
      dir: config.dir,
      prepareSchema: () => schema.ensure(),
    },
    sessionMetrics,
    log.child({ session: config.sessionId }),
  );
  return loop;
}
