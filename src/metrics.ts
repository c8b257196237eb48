// Every metric of docs/monitoring.md "Metrics", defined once. All exist from start at 0; no per-file labels.
// A keeper of many sessions (--sessions-dir) labels every per-session series with `session` (sessions are
// bounded, files are not); the process-wide ones (backup duration, database errors, build info) stay unlabeled,
// and so do Node's process metrics (process_*, nodejs_*).
import { SESSION_EVENTS, type SessionEventName } from './lifecycle-events.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Protection } from './protection.js';
import { HELD_REASONS, type HeldReason } from './snapshot.js';
import { VERSION } from './version.js';

const PREFIX = 'baileys_keeper_';
const BACKUP_RESULTS = ['success', 'noop', 'failure', 'refused'] as const;
const RESTORE_RESULTS = ['restored', 'skipped', 'empty', 'failure'] as const;
/** Results of webhook deliveries (src/notify/webhook.ts): each attempt that failed counts as a failure. */
export const WEBHOOK_RESULTS = ['success', 'failure', 'dropped'] as const;
/** Results of heartbeat intervals (src/notify/heartbeat.ts). */
export const HEARTBEAT_RESULTS = ['success', 'failure', 'skipped'] as const;

/** A gauge of one session. */
export interface SessionGauge {
  set(value: number): void;
}
/** A counter of one session. */
export interface SessionCounter {
  inc(value?: number): void;
}
/** A counter of one session, by result. */
export interface SessionResultCounter {
  inc(labels: { result: string }, value?: number): void;
}

/** What the backup loop of one session records: its own series, and the process-wide ones it adds to. */
export interface SessionMetrics {
  readonly backups: SessionResultCounter;
  readonly restores: SessionResultCounter;
  readonly lastBackupSuccess: SessionGauge;
  readonly generation: SessionGauge;
  readonly files: SessionGauge;
  readonly bytes: SessionGauge;
  readonly tornReads: SessionCounter;
  readonly leaseHeld: SessionGauge;
  readonly sessionRegistered: SessionGauge;
  readonly watchPolling: SessionGauge;
  /** Process-wide. */
  readonly backupDuration: { observe(seconds: number): void };
  /** Process-wide. */
  readonly databaseErrors: SessionCounter;
}

/** What a scrape reads from one session's loop (measurements, not counts of what it did). */
export interface SessionReadings {
  /** Age of the oldest difference between the directory and the head, seconds. */
  lagSeconds(): number;
  /** Whether what is stored equals what is on disk (SPEC "Protection"). */
  protection(): Protection;
  /** Files that differ from the head and that no backup can store now, by reason. */
  heldBack(): Record<HeldReason, number>;
}

/** Readings of a session with nothing to report: lag 0, protected, nothing held. */
export const IDLE_READINGS: SessionReadings = {
  lagSeconds: () => 0,
  protection: () => ({ protected: true, reasons: [], since: null }),
  heldBack: () => ({ torn: 0, unreadable: 0, too_large: 0 }),
};

/** Readings taken from whatever `current` returns at the moment of the scrape; IDLE_READINGS while null. */
export function readingsOf(current: () => SessionReadings | null): SessionReadings {
  return {
    lagSeconds: () => (current() ?? IDLE_READINGS).lagSeconds(),
    protection: () => (current() ?? IDLE_READINGS).protection(),
    heldBack: () => (current() ?? IDLE_READINGS).heldBack(),
  };
}

export interface MetricsOptions {
  /** Label per-session series with `session` and add `baileys_keeper_sessions` (--sessions-dir). */
  manySessions?: boolean;
}

export class Metrics implements SessionMetrics {
  readonly registry = new Registry();
  readonly backups: Counter<'session' | 'result'>;
  readonly backupDuration: Histogram;
  readonly lastBackupSuccess: Gauge;
  readonly backupLag: Gauge;
  readonly generation: Gauge;
  readonly files: Gauge;
  readonly bytes: Gauge;
  readonly tornReads: Counter;
  readonly restores: Counter<'session' | 'result'>;
  readonly leaseHeld: Gauge;
  readonly sessionRegistered: Gauge;
  /** SPEC "Session lifecycle": lifecycle events of the process's sessions, by event. */
  readonly sessionEvents: Counter;
  /** Without many sessions: the one session's id, once session() was called. */
  private onlySession: string | null = null;
  readonly databaseErrors: Counter;
  readonly watchPolling: Gauge;
  readonly protectedGauge: Gauge;
  readonly heldBackFiles: Gauge;
  /** Process-wide: webhook deliveries by result. */
  readonly webhookDeliveries: Counter<'result'>;
  /** Process-wide: heartbeat intervals by result. */
  readonly heartbeats: Counter<'result'>;
  /** Sessions watched; only with manySessions. */
  readonly sessions: Gauge | null;
  private readonly many: boolean;
  /** Where each session's readings are taken at a scrape ('' without manySessions). */
  private readonly readings = new Map<string, SessionReadings>();

  /**
   * `readings` are taken at every scrape: lag, protection and held-back files (one session; with
   * `manySessions`, each session gives its own to session()).
   */
  constructor(readings: SessionReadings = IDLE_READINGS, options: MetricsOptions = {}) {
    const registers = [this.registry];
    const many = options.manySessions === true;
    this.many = many;
    if (!many) this.readings.set('', readings);
    // Per-session series carry the session label with many sessions.
    const session = many ? ['session'] : [];
    const all = this.readings;
    /** Sets `gauge` for every session from `read` (with `extra` labels). */
    const collectEach = (gauge: Gauge, read: (readings: SessionReadings) => number, extra: Record<string, string> = {}) => {
      for (const [id, readings] of all) gauge.set(many ? { session: id, ...extra } : extra, read(readings));
    };
    this.backups = new Counter({
      name: `${PREFIX}backups_total`,
      help: 'Backups by result: success (a generation was written), noop (nothing changed), failure, refused (guard).',
      labelNames: [...session, 'result'],
      registers,
    });
    if (!many) for (const result of BACKUP_RESULTS) this.backups.inc({ result }, 0);
    this.backupDuration = new Histogram({
      name: `${PREFIX}backup_duration_seconds`,
      help: 'Time to read the changed files and commit the generation, seconds.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.lastBackupSuccess = new Gauge({
      name: `${PREFIX}last_backup_success_timestamp_seconds`,
      help: 'Unix time everything on disk was last found stored: a backup that succeeded (a generation or a noop) or an audit that found nothing to store, seconds.',
      labelNames: session,
      registers,
    });
    this.backupLag = new Gauge({
      name: `${PREFIX}backup_lag_seconds`,
      help: 'Age of the oldest change in the directory that is not stored yet, seconds; 0 when everything is stored.',
      labelNames: session,
      registers,
      collect() {
        collectEach(this, (readings) => readings.lagSeconds());
      },
    });
    this.protectedGauge = new Gauge({
      name: `${PREFIX}protected`,
      help: '1 while everything in the directory is stored in the head (or has differed for less than --max-delay plus one backup), else 0.',
      labelNames: session,
      registers,
      collect() {
        collectEach(this, (readings) => (readings.protection().protected ? 1 : 0));
      },
    });
    this.heldBackFiles = new Gauge({
      name: `${PREFIX}held_back_files`,
      help: 'Files that differ from the head and that no backup can store now, by reason: torn, unreadable, too_large.',
      labelNames: [...session, 'reason'],
      registers,
      collect() {
        for (const reason of HELD_REASONS) collectEach(this, (readings) => readings.heldBack()[reason], { reason });
      },
    });
    this.generation = new Gauge({ name: `${PREFIX}generation`, help: 'Head generation of the session.', labelNames: session, registers });
    this.files = new Gauge({ name: `${PREFIX}files`, help: 'Files in the head generation.', labelNames: session, registers });
    this.bytes = new Gauge({
      name: `${PREFIX}bytes`,
      help: 'Bytes of file content in the head generation.',
      labelNames: session,
      registers,
    });
    this.tornReads = new Counter({
      name: `${PREFIX}torn_reads_total`,
      help: 'Files found torn (empty, truncated or unparseable) after every re-read; their stored version was kept.',
      labelNames: session,
      registers,
    });
    this.restores = new Counter({
      name: `${PREFIX}restores_total`,
      help: 'Restores by result.',
      labelNames: [...session, 'result'],
      registers,
    });
    if (!many) for (const result of RESTORE_RESULTS) this.restores.inc({ result }, 0);
    this.leaseHeld = new Gauge({
      name: `${PREFIX}lease_held`,
      help: '1 while this process holds the session lease (the single writer), else 0.',
      labelNames: session,
      registers,
    });
    this.sessionRegistered = new Gauge({
      name: `${PREFIX}session_registered`,
      help: '1 when the stored creds are paired (creds.me present), else 0.',
      labelNames: session,
      registers,
    });
    this.sessionEvents = new Counter({
      name: `${PREFIX}session_events_total`,
      help: 'Session lifecycle events: paired, logged_out, repaired, identity_refused, unprotected, protected.',
      labelNames: [...session, 'event'],
      registers,
    });
    if (!many) for (const event of SESSION_EVENTS) this.sessionEvents.inc({ event }, 0);
    this.databaseErrors = new Counter({
      name: `${PREFIX}database_errors_total`,
      help: 'Database operations that failed (outages, timeouts).',
      registers,
    });
    this.watchPolling = new Gauge({
      name: `${PREFIX}watch_polling`,
      help: '1 while the auth directory is polled instead of watched natively (inotify unavailable, or --watch poll), else 0.',
      labelNames: session,
      registers,
    });
    this.webhookDeliveries = new Counter({
      name: `${PREFIX}webhook_deliveries_total`,
      help: 'Webhook deliveries by result: success (answered 2xx), failure (each attempt that failed), dropped (an event given up).',
      labelNames: ['result'],
      registers,
    });
    for (const result of WEBHOOK_RESULTS) this.webhookDeliveries.inc({ result }, 0);
    this.heartbeats = new Counter({
      name: `${PREFIX}heartbeats_total`,
      help: 'Heartbeat intervals by result: success (answered 2xx), failure, skipped (not every session protected).',
      labelNames: ['result'],
      registers,
    });
    for (const result of HEARTBEAT_RESULTS) this.heartbeats.inc({ result }, 0);
    this.sessions = many ? new Gauge({ name: `${PREFIX}sessions`, help: 'Sessions watched (--sessions-dir).', registers }) : null;
    const buildInfo = new Gauge({
      name: `${PREFIX}build_info`,
      help: 'Always 1; the version label tells which build runs.',
      labelNames: ['version'],
      registers,
    });
    buildInfo.set({ version: VERSION }, 1);
    // prom-client samples the event loop's delay every 10 ms by default: a hundred wake-ups a second, about
    // half a percent of a core on a keeper that otherwise sleeps (measured: 1.9 % → 1.4 % for 1,000 idle
    // sessions, docs/performance.md). Every 100 ms still sees any stall worth alerting on.
    // No prefix: process_* and nodejs_* are the names generic Node.js dashboards and alerts query; the
    // keeper's own series carry baileys_keeper_. No session label either: they describe the process.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
  }

  /**
   * The metrics of session `sessionId`, its series created at 0, and `readings` taken for its lag,
   * protection and held-back files at every scrape. Without manySessions: these metrics themselves
   * (there is one session).
   */
  session(sessionId: string, readings: SessionReadings): SessionMetrics {
    if (!this.many) {
      this.readings.set('', readings);
      this.onlySession = sessionId;
      return this;
    }
    const session = { session: sessionId };
    this.readings.set(sessionId, readings);
    for (const result of BACKUP_RESULTS) this.backups.inc({ ...session, result }, 0);
    for (const result of RESTORE_RESULTS) this.restores.inc({ ...session, result }, 0);
    for (const gauge of this.sessionGauges()) gauge.set(session, 0);
    this.tornReads.inc(session, 0);
    for (const event of SESSION_EVENTS) this.sessionEvents.inc({ ...session, event }, 0);
    const gauge = (metric: Gauge): SessionGauge => ({ set: (value) => metric.set(session, value) });
    return {
      backups: { inc: (labels, value) => this.backups.inc({ ...session, ...labels }, value) },
      restores: { inc: (labels, value) => this.restores.inc({ ...session, ...labels }, value) },
      lastBackupSuccess: gauge(this.lastBackupSuccess),
      generation: gauge(this.generation),
      files: gauge(this.files),
      bytes: gauge(this.bytes),
      tornReads: { inc: (value) => this.tornReads.inc(session, value) },
      leaseHeld: gauge(this.leaseHeld),
      sessionRegistered: gauge(this.sessionRegistered),
      watchPolling: gauge(this.watchPolling),
      backupDuration: this.backupDuration,
      databaseErrors: this.databaseErrors,
    };
  }

  /** The gauges a session sets itself (the lag is read at scrapes instead). */
  private sessionGauges(): Gauge[] {
    return [this.lastBackupSuccess, this.generation, this.files, this.bytes, this.leaseHeld, this.sessionRegistered, this.watchPolling];
  }

  /** Counts a restore of session `sessionId` (labelled with it with many sessions). */
  restored(sessionId: string, result: (typeof RESTORE_RESULTS)[number]): void {
    if (this.many) this.restores.inc({ session: sessionId, result });
    else this.restores.inc({ result });
  }

  /** Removes every series of session `sessionId` (it is no longer kept by this process). */
  /**
   * Counts a lifecycle event of session `sessionId` (with many sessions, under its `session` label), and
   * keeps baileys_keeper_session_registered following the state for a session this process has series of:
   * an event may come from the session API as well as from the loop.
   */
  countEvent(sessionId: string, event: SessionEventName): void {
    this.sessionEvents.inc(this.many ? { session: sessionId, event } : { event });
    const registered = event === 'logged_out' ? 0 : event === 'paired' || event === 'repaired' ? 1 : null;
    if (registered === null) return;
    if (this.many && this.readings.has(sessionId)) this.sessionRegistered.set({ session: sessionId }, registered);
    else if (!this.many && this.onlySession === sessionId) this.sessionRegistered.set(registered);
  }

  forget(sessionId: string): void {
    if (!this.many) return;
    this.readings.delete(sessionId);
    const session = { session: sessionId };
    for (const result of BACKUP_RESULTS) this.backups.remove({ ...session, result });
    for (const result of RESTORE_RESULTS) this.restores.remove({ ...session, result });
    for (const gauge of [...this.sessionGauges(), this.backupLag, this.protectedGauge]) gauge.remove(session);
    for (const reason of HELD_REASONS) this.heldBackFiles.remove({ ...session, reason });
    this.tornReads.remove(session);
    for (const event of SESSION_EVENTS) this.sessionEvents.remove({ ...session, event });
  }
}
