// The process-level health the status page shows without a token (`GET /api/overview`, open like /metrics):
// counts and times only, never a session id, a folder name or a phone — in a fleet those are customer names.
import type { Gauge } from 'prom-client';
import { notReadyReasons } from './health.js';
import { sendJson, type Route } from './http.js';
import type { BackupLoop } from './loop/backup-loop.js';
import type { Metrics } from './metrics.js';
import type { SchemaGate } from './schema-gate.js';
import { VERSION } from './version.js';

/** What `GET /api/overview` answers (docs/openapi.yaml, `Overview`). */
export interface OverviewJson {
  version: string;
  /** When this process started, ISO-8601. */
  started_at: string;
  uptime_seconds: number;
  /** As /healthz: the backup loop runs. */
  healthy: boolean;
  /** As /readyz: the start-up comparison (and run's restore) is done and the schema ready. */
  ready: boolean;
  /** Sessions this process keeps (1 without --sessions-dir). */
  sessions: number;
  /** Of those, how many are protected now (SPEC "Protection"), measured at the request. */
  protected: number;
  /** Of those, how many hold a paired login (baileys_keeper_session_registered). */
  paired: number;
  /** The largest baileys_keeper_backup_lag_seconds of them, seconds; 0 when everything is stored. */
  oldest_lag_seconds: number;
  /** When any of them was last found stored (a backup, or an audit that found nothing to store), ISO-8601; null before the first. */
  last_backup_at: string | null;
  /** Whether KEEPER_API_TOKEN is set (the session table needs it). */
  session_api: boolean;
}

export interface OverviewSource {
  loop: BackupLoop;
  metrics: Metrics;
  schema: SchemaGate | null;
  /** run: the restore is done (as /readyz). */
  extraReady: () => boolean;
  apiEnabled: boolean;
  /** Wall clock, ms since the epoch; default Date.now. */
  now?: () => number;
  /** When the process started, ms since the epoch; default from process.uptime(). */
  startedAt?: number;
}

/** The values of `gauge` at this moment (its collect() runs, so readings are measured now). */
async function valuesOf(gauge: Gauge): Promise<number[]> {
  return (await gauge.get()).values.map((sample) => sample.value);
}

/**
 * The overview of this process from the readings /metrics serves (the same measurements, so the page and a
 * scrape agree): one value per session of each per-session gauge.
 */
export async function overview(source: OverviewSource): Promise<OverviewJson> {
  const now = (source.now ?? Date.now)();
  const startedAt = source.startedAt ?? now - process.uptime() * 1000;
  const { metrics, loop } = source;
  const protectedFlags = await valuesOf(metrics.protectedGauge);
  const lags = await valuesOf(metrics.backupLag);
  const lastBackups = (await valuesOf(metrics.lastBackupSuccess)).filter((seconds) => seconds > 0);
  const paired = await valuesOf(metrics.sessionRegistered);
  const newest = lastBackups.length === 0 ? null : Math.max(...lastBackups);
  return {
    version: VERSION,
    started_at: new Date(startedAt).toISOString(),
    uptime_seconds: Math.max(0, Math.floor((now - startedAt) / 1000)),
    healthy: loop.healthy,
    ready: notReadyReasons(loop, source.schema, () => (source.extraReady() ? null : 'restore')).length === 0,
    sessions: protectedFlags.length,
    protected: protectedFlags.filter((flag) => flag === 1).length,
    paired: paired.filter((flag) => flag === 1).length,
    oldest_lag_seconds: lags.length === 0 ? 0 : Math.max(0, ...lags),
    last_backup_at: newest === null ? null : new Date(newest * 1000).toISOString(),
    session_api: source.apiEnabled,
  };
}

/** `GET /api/overview`: the overview as JSON, open (no token), never cached. */
export function overviewRoute(source: OverviewSource): Route {
  return { method: 'GET', path: '/api/overview', handler: async (_req, res) => sendJson(res, 200, await overview(source)) };
}
