// The long-running part shared by `sidecar` and `run`: database pool, metrics, the backup loop and HTTP.
import { apiRoutes } from '../api.js';
import { createDatabase, type Database } from '../db/pool.js';
import { healthRoutes } from '../health.js';
import { startHttpServer, type HttpServer, type Route } from '../http.js';
import { leaseOwner } from '../lease.js';
import { Metrics } from '../metrics.js';
import { Sidecar } from '../sidecar.js';
import { SessionStore } from '../store.js';
import type { Context } from './command.js';
import type { DatabaseTarget } from './database.js';

export interface Service {
  sidecar: Sidecar;
  metrics: Metrics;
  store: SessionStore;
  http: HttpServer;
  /** Closes HTTP and the pool (after the sidecar's shutdown). */
  close(): Promise<void>;
}

/**
 * Starts the HTTP server and builds the loop; the caller starts the loop (run: after its restore).
 * `extraReady` gates /readyz further (run: the restore).
 */
export async function startService(ctx: Context, target: DatabaseTarget, extraReady: () => boolean = () => true): Promise<Service> {
  const { config } = ctx;
  const log = ctx.log.child({ session: config.sessionId });
  let sidecar: Sidecar | null = null;
  const metrics = new Metrics(() => sidecar?.lagSeconds() ?? 0);
  const db: Database = createDatabase({
    url: target.url,
    schema: config.schema,
    log: ctx.log.child({ component: 'db' }),
    onError: () => metrics.databaseErrors.inc(),
  });
  const store = new SessionStore(db, config.encryption, { requireEncryption: config.requireEncryption });
  const owner = leaseOwner();
  sidecar = new Sidecar(
    store,
    db,
    {
      sessionId: config.sessionId,
      dir: config.dir,
      owner,
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
    },
    metrics,
    log,
  );
  const loop = sidecar;
  const routes: Route[] = [
    ...apiRoutes({
      store,
      sidecar: loop,
      sessionId: config.sessionId,
      owner,
      token: config.apiToken,
      maxBodyBytes: config.maxBodyBytes,
      retention: config.retention,
      allowReplace: config.allowReplace,
      log: ctx.log.child({ component: 'api' }),
    }),
    ...healthRoutes(loop, metrics, extraReady),
  ];
  let http: HttpServer;
  try {
    http = await startHttpServer(config.listen, routes, ctx.log.child({ component: 'http' }));
  } catch (error) {
    await db.close();
    throw error;
  }
  return {
    sidecar: loop,
    metrics,
    store,
    http,
    async close() {
      await http.close();
      await db.close();
    },
  };
}
