// Every metric of docs/monitoring.md "Metrics", defined once. All exist from start at 0; no per-file labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from './version.js';

const PREFIX = 'baileys_keeper_';

export class Metrics {
  readonly registry = new Registry();
  readonly backups: Counter<'result'>;
  readonly backupDuration: Histogram;
  readonly lastBackupSuccess: Gauge;
  readonly backupLag: Gauge;
  readonly generation: Gauge;
  readonly files: Gauge;
  readonly bytes: Gauge;
  readonly tornReads: Counter;
  readonly restores: Counter<'result'>;
  readonly leaseHeld: Gauge;
  readonly sessionRegistered: Gauge;
  readonly databaseErrors: Counter;
  readonly watchPolling: Gauge;

  /** `lagSeconds` is read at every scrape: the age of the oldest change not yet stored. */
  constructor(lagSeconds: () => number = () => 0) {
    const registers = [this.registry];
    this.backups = new Counter({
      name: `${PREFIX}backups_total`,
      help: 'Backups by result: success (a generation was written), noop (nothing changed), failure, refused (guard).',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['success', 'noop', 'failure', 'refused']) this.backups.inc({ result }, 0);
    this.backupDuration = new Histogram({
      name: `${PREFIX}backup_duration_seconds`,
      help: 'Time to read the changed files and commit the generation, seconds.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.lastBackupSuccess = new Gauge({
      name: `${PREFIX}last_backup_success_timestamp_seconds`,
      help: 'Unix time of the last backup that succeeded (a generation or a noop), seconds.',
      registers,
    });
    this.backupLag = new Gauge({
      name: `${PREFIX}backup_lag_seconds`,
      help: 'Age of the oldest change in the directory that is not stored yet, seconds; 0 when everything is stored.',
      registers,
      collect() {
        this.set(lagSeconds());
      },
    });
    this.generation = new Gauge({ name: `${PREFIX}generation`, help: 'Head generation of the session.', registers });
    this.files = new Gauge({ name: `${PREFIX}files`, help: 'Files in the head generation.', registers });
    this.bytes = new Gauge({ name: `${PREFIX}bytes`, help: 'Bytes of file content in the head generation.', registers });
    this.tornReads = new Counter({
      name: `${PREFIX}torn_reads_total`,
      help: 'Files found torn (empty, truncated or unparseable) after every re-read; their stored version was kept.',
      registers,
    });
    this.restores = new Counter({ name: `${PREFIX}restores_total`, help: 'Restores by result.', labelNames: ['result'], registers });
    for (const result of ['restored', 'skipped', 'empty', 'failure']) this.restores.inc({ result }, 0);
    this.leaseHeld = new Gauge({
      name: `${PREFIX}lease_held`,
      help: '1 while this process holds the session lease (the single writer), else 0.',
      registers,
    });
    this.sessionRegistered = new Gauge({
      name: `${PREFIX}session_registered`,
      help: '1 when the stored creds are paired (creds.me present), else 0.',
      registers,
    });
    this.databaseErrors = new Counter({
      name: `${PREFIX}database_errors_total`,
      help: 'Database operations that failed (outages, timeouts).',
      registers,
    });
    this.watchPolling = new Gauge({
      name: `${PREFIX}watch_polling`,
      help: '1 while the auth directory is polled instead of watched natively (inotify unavailable, or --watch poll), else 0.',
      registers,
    });
    const buildInfo = new Gauge({
      name: `${PREFIX}build_info`,
      help: 'Always 1; the version label tells which build runs.',
      labelNames: ['version'],
      registers,
    });
    buildInfo.set({ version: VERSION }, 1);
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }
}
