// `npm run bench`: baileys-keeper against the two approaches users have today, measured side by side
// in one run on one PostgreSQL. `--smoke` runs every part briefly (the test suite does, to keep the
// harness working); `--out DIR` writes the results somewhere else than bench/results.
import { randomBytes, randomInt } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Curve, useMultiFileAuthState } from '@whiskeysockets/baileys';
import pg from 'pg';
import { pino } from 'pino';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_DELAY_MS, DEFAULT_POLL_INTERVAL_MS } from '../src/config.js';
import { createDatabase } from '../src/db/pool.js';
import { parseRetention } from '../src/store/retention.js';
import { startEmbedded } from '../src/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { Metrics } from '../src/metrics.js';
import { SessionLoop } from '../src/loop/session-loop.js';
import { readSnapshot } from '../src/snapshot.js';
import { SessionStore } from '../src/store/index.js';
import { writeSession } from '../harness/baileys.js';
import { ChurnBot } from '../harness/churn.js';
import { startService, waitFor, type Service } from '../harness/sidecar.js';
import { cdfChart, formatBytes, logBarChart } from './charts.js';
import { continuityTable, measureContinuity } from './continuity.js';
import { countingProxy } from './proxy.js';
import { AUDIT_MARKERS, BENCH_MARKERS, MANY_SESSIONS_MARKERS, updateDocBlock } from './doc-block.js';
import { auditReport, measureAudit, writeAuditResults } from './audit.js';
import { buildBaseline } from './baseline.js';
import {
  findPostmaster,
  MANY_SESSIONS_PLAN,
  MANY_SESSIONS_SMOKE_PLAN,
  manySessionsCharts,
  manySessionsReport,
  measureManySessions,
} from './fleet.js';
import { archiveStrategy, countFiles, jsonbStrategy, keeperStrategy, type Strategy } from './strategies.js';
import { simulateRetention, thinningCost } from './retention.js';
import { churnWrite, percentile, storedRpo, type ChurnState, type TimedWrite } from './rpo.js';
import { measureWatcher, WATCHER_KINDS, type WatcherRow } from './watchers.js';

const { values: flags } = parseArgs({
  options: { smoke: { type: 'boolean' }, out: { type: 'string' }, only: { type: 'string' }, baseline: { type: 'string' } },
});
const SMOKE = flags.smoke === true;
const OUT = path.resolve(flags.out ?? path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bench', 'results'));
const PLAN = SMOKE
  ? {
      sizes: [100, 300],
      churnFiles: 200,
      churnSeconds: 2,
      rates: [20, 200],
      idleSeconds: 2,
      fleet: 2,
      fleetSeconds: 2,
      archiveEveryMs: 1000,
      watchIdleSeconds: 1,
      watchBurstSeconds: 1,
      retentionDays: 2,
      retentionEveryMinutes: 120,
      thinGenerations: 20,
      continuity: { crashes: 1, contacts: 2, groups: 1, exchanges: 3 },
    }
  : {
      sizes: [100, 1000, 10_000],
      churnFiles: 1000,
      churnSeconds: 60,
      rates: [20, 200],
      idleSeconds: 60,
      fleet: 100,
      fleetSeconds: 30,
      archiveEveryMs: 60_000,
      watchIdleSeconds: 10,
      watchBurstSeconds: 5,
      retentionDays: 35,
      retentionEveryMinutes: 30,
      thinGenerations: 600,
      continuity: { crashes: 10, contacts: 6, groups: 2, exchanges: 15 },
    };
const DEBOUNCE_MS = DEFAULT_DEBOUNCE_MS;
const MAX_DELAY_MS = DEFAULT_MAX_DELAY_MS;
/** The default --max-delay before it became 1 s, measured beside it: what the 1 s RPO costs. */
const PREVIOUS_MAX_DELAY_MS = 5000;
/** The RPO target with the defaults (docs/performance.md): p99 ≤ max-delay + 250 ms. */
const RPO_TARGET_S = (MAX_DELAY_MS + 250) / 1000;
const log = pino({ level: 'silent' });
const say = (line: string) => process.stdout.write(`${line}\n`);

// ---------------------------------------------------------------- environment
const work = await mkdtemp(path.join(os.tmpdir(), 'bk-bench-'));
await chmod(work, 0o755);
const embedded = process.env['DATABASE_URL'] ? null : await startEmbedded(path.join(work, 'pg'), log);
const databaseUrl = process.env['DATABASE_URL'] ?? embedded!.url;
const admin = new pg.Client({ connectionString: databaseUrl });
await admin.connect();
const postgresVersion = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
const environment = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  postgres: postgresVersion,
  date: new Date().toISOString(),
  smoke: SMOKE,
};
say(`environment: ${JSON.stringify(environment)}`);

const PARTS = ['audit', 'many-sessions'];
if (flags.only !== undefined && !PARTS.includes(flags.only)) throw new Error(`--only: unknown part ${flags.only} (${PARTS.join(', ')})`);

/** Ends the run after a part given with --only. */
async function onlyPartDone(): Promise<void> {
  await admin.end();
  await embedded?.stop();
  await rm(work, { recursive: true, force: true });
  process.exit(0);
}

// ---------------------------------------------------------------- 0a. the audit's cost: bench/audit.ts
// First, so that `--only audit` can refresh this part alone (it writes its own files and block).
if (flags.only === undefined || flags.only === 'audit') {
  const started = performance.now();
  const rows = await measureAudit(databaseUrl, work, SMOKE ? { files: 300, rounds: 2 } : { files: 10_000, rounds: 5 }, log);
  const minutes = (performance.now() - started) / 60_000;
  const table = auditReport(
    rows,
    `Measured ${environment.date.slice(0, 10)} on ${environment.cpu} (${environment.cores} cores), Node ${environment.node}, ` +
      `PostgreSQL ${environment.postgres}; this part took ${minutes.toFixed(1)} minutes${SMOKE ? ' — SMOKE RUN, not representative' : ''}.`,
  );
  await mkdir(OUT, { recursive: true });
  await writeAuditResults(OUT, rows, table);
  say(table);
  if (!SMOKE && flags.out === undefined) await updateDocBlock(path.join(OUT, '..', '..', 'docs', 'performance.md'), table, AUDIT_MARKERS);
  if (flags.only === 'audit') await onlyPartDone();
}

// ---------------------------------------------------------------- 0b. many sessions (--sessions-dir): bench/fleet.ts
// Early, so that `--only many-sessions` can refresh this part alone (it writes its own files and block).
if (flags.only === undefined || flags.only === 'many-sessions') {
  const started = performance.now();
  // --baseline REF: the fleet at rest is measured with that commit's CLI too (before and after, one run).
  const baseline = flags.baseline === undefined ? null : await buildBaseline(flags.baseline, work);
  const many = await measureManySessions(
    { databaseUrl, admin, work, postmasterPid: (await findPostmaster(admin)) ?? embedded?.pid ?? null, say, baseline },
    SMOKE ? MANY_SESSIONS_SMOKE_PLAN : MANY_SESSIONS_PLAN,
  );
  const minutes = (performance.now() - started) / 60_000;
  const header =
    `Measured ${environment.date.slice(0, 10)} on ${environment.cpu} (${environment.cores} cores, ` +
    `${environment.memoryGiB} GiB), Node ${environment.node}, PostgreSQL ${environment.postgres}; ` +
    `this part took ${minutes.toFixed(1)} minutes${SMOKE ? ' — SMOKE RUN, not representative' : ''}.`;
  const table = manySessionsReport(many, header);
  await mkdir(OUT, { recursive: true });
  await writeFile(path.join(OUT, 'many-sessions.json'), `${JSON.stringify({ environment, minutes, ...many }, null, 2)}\n`);
  await writeFile(path.join(OUT, 'many-sessions.md'), table);
  for (const [file, svg] of Object.entries(manySessionsCharts(many))) await writeFile(path.join(OUT, file), svg);
  say(table);
  if (!SMOKE && flags.out === undefined)
    await updateDocBlock(path.join(OUT, '..', '..', 'docs', 'performance.md'), table, MANY_SESSIONS_MARKERS);
  if (flags.only === 'many-sessions') await onlyPartDone();
}

/** Bytes sent, bytes added to tables, and time for one call of `fn` through `strategy`. */
async function measure(strategy: Strategy, fn: () => Promise<unknown>): Promise<{ sentBytes: number; tableBytes: number; ms: number }> {
  const [sent, table] = [strategy.sent(), await strategy.tableBytes()];
  const started = performance.now();
  await fn();
  const ms = performance.now() - started;
  return { sentBytes: strategy.sent() - sent, tableBytes: (await strategy.tableBytes()) - table, ms };
}

async function hashes(dir: string): Promise<Map<string, string>> {
  const snapshot = await readSnapshot(dir, { retryDelaysMs: [] });
  return new Map([...snapshot.files].map(([name, file]) => [name, file.sha256.toString('hex')]));
}

/** Names added, changed or deleted between two hash maps: what the sidecar's watcher reports. */
function changedNames(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name) !== after.get(name));
}

// ---------------------------------------------------------------- 1. backup cost by session size
type SizeRow = {
  size: number;
  files: number;
  phase: string;
  changed: number;
  strategy: string;
  sentBytes: number;
  tableBytes: number;
  ms: number;
};
type RestoreRow = { size: number; files: number; strategy: string; ms: number };
const sizeRows: SizeRow[] = [];
const restoreRows: RestoreRow[] = [];
const sessionDirs = new Map<number, string>();

for (const size of PLAN.sizes) {
  const dir = path.join(work, `size-${size}`);
  // Mostly pre-keys, as large real sessions are, plus sessions, sender keys and identities from real traffic.
  const bot = await ChurnBot.open(dir, { preKeys: Math.max(10, size - 25), seed: size });
  for (let i = 0; i < 40 && (await countFiles(dir)) < size; i++) await bot.step();
  const files = await countFiles(dir);
  sessionDirs.set(size, dir);
  const strategies = [
    await keeperStrategy(databaseUrl, `bench_keeper_${size}`, 'bench', log),
    await jsonbStrategy(databaseUrl, `bench_a_${size}`, 'bench', log),
    await archiveStrategy(databaseUrl, `bench_b_${size}`, 'bench', log),
  ];
  const phase = async (name: string, change: () => Promise<unknown>) => {
    const before = await hashes(dir);
    await change();
    const changed = name === 'initial' ? [] : changedNames(before, await hashes(dir));
    for (const strategy of strategies) {
      const result = await measure(strategy, () => strategy.backup(dir, name === 'initial' ? undefined : changed));
      sizeRows.push({ size, files, phase: name, changed: name === 'initial' ? files : changed.length, strategy: strategy.name, ...result });
    }
  };
  await phase('initial', async () => undefined);
  await phase('single key', () => bot.chat()); // one message exchange: the contact's session record is rewritten
  const auth = await useMultiFileAuthState(dir);
  await phase('burst of 50 keys', async () => {
    // What Baileys' pre-key upload writes: a batch of keys, concurrently, in one keys.set.
    const batch: Record<string, ReturnType<typeof Curve.generateKeyPair>> = {};
    for (let i = 0; i < 50; i++) batch[String(900_000 + i)] = Curve.generateKeyPair();
    await auth.state.keys.set({ 'pre-key': batch });
  });
  await bot.close();
  if (size >= 1000 || SMOKE) {
    for (const strategy of strategies) {
      const into = path.join(work, `restore-${size}-${strategy.name}`);
      const started = performance.now();
      const restored = await strategy.restore(into);
      restoreRows.push({ size, files: restored, strategy: strategy.name, ms: performance.now() - started });
      await rm(into, { recursive: true, force: true });
    }
  }
  for (const strategy of strategies) await strategy.close();
  say(`size ${size}: ${files} files measured`);
}

// ---------------------------------------------------------------- 2. RPO and bytes under churn
type ChurnRow = {
  rate: number;
  maxDelayMs: number;
  strategy: string;
  writes: number;
  unsaved: number;
  p50: number;
  p99: number;
  max: number;
  sentBytesPerSecond: number;
  backups: number;
  rpoBy: string;
};
const churnRows: ChurnRow[] = [];
const rpoSamples = new Map<string, number[]>();

async function churnRun(rate: number, maxDelayMs: number, withBaselines: boolean): Promise<void> {
  const label = `${rate}/s, max-delay ${maxDelayMs / 1000} s`;
  const dir = path.join(work, `churn-${rate}-${maxDelayMs}`);
  await (await ChurnBot.open(dir, { preKeys: PLAN.churnFiles, seed: rate })).close();
  const schema = `bench_churn_${rate}_${maxDelayMs}`;
  const proxy = await countingProxy(databaseUrl);
  const db = createDatabase({ url: proxy.url, schema, log });
  await migrate(db);
  const store = new SessionStore(db);
  const metrics = new Metrics();
  const sidecar = new SessionLoop(
    store,
    {
      sessionId: 'churn',
      dir,
      owner: `bench:${rate}`,
      retention: parseRetention('none', 100_000),
      allowReplace: true,
      debounceMs: DEBOUNCE_MS,
      maxDelayMs,
      intervalMs: 120_000,
      leaseTtlMs: 30_000,
      shutdownQuietMs: 0,
      shutdownTimeoutMs: 20_000,
      watchMode: 'auto',
      pollIntervalMs: 1000,
    },
    metrics,
    log,
  );
  await sidecar.start();
  await waitFor(() => (sidecar.ready ? true : null), 30_000);

  const baselines = withBaselines
    ? [
        { strategy: await jsonbStrategy(databaseUrl, `bench_churn_a_${rate}`, 'churn', log), everyMs: DEBOUNCE_MS, ticks: [] as number[] },
        {
          strategy: await archiveStrategy(databaseUrl, `bench_churn_b_${rate}`, 'churn', log),
          everyMs: PLAN.archiveEveryMs,
          ticks: [] as number[],
        },
      ]
    : [];
  const started = Date.now();
  const timers = baselines.map((b) => {
    let busy = false;
    const tick = () => {
      if (busy) return;
      busy = true;
      const at = Date.now();
      void b.strategy.backup(dir).then(() => {
        b.ticks.push(at);
        busy = false;
      });
    };
    tick(); // like RemoteAuth, a first backup at start, then one every interval
    return setInterval(tick, b.everyMs);
  });
  const baselineSent = baselines.map((b) => b.strategy.sent());
  const keeperSent = proxy.sent();

  // The writer: Baileys' useMultiFileAuthState, session records rewritten, pre-keys added and used up.
  const auth = await useMultiFileAuthState(dir);
  const writes: TimedWrite[] = [];
  let nextPreKey = 500_000;
  const state: ChurnState = { preKeys: [], nextPreKey: () => nextPreKey++ };
  const perTick = Math.max(1, Math.round(rate / 20));
  const until = started + PLAN.churnSeconds * 1000;
  while (Date.now() < until) {
    const tickStart = Date.now();
    for (let i = 0; i < perTick; i++) await churnWrite(auth, state, 'churn', writes);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 50 - (Date.now() - tickStart))));
  }
  const seconds = (Date.now() - started) / 1000;
  for (const timer of timers) clearInterval(timer);
  await waitFor(() => (sidecar.dirty.size === 0 ? true : null), 30_000);
  const keeperBytes = proxy.sent() - keeperSent;
  await sidecar.shutdown(0);
  await db.close();
  await proxy.close();

  // When each write reached a commit: the first generation holding it or a later write of the same file.
  const { rpo, unsaved, generations: backups } = await storedRpo(databaseUrl, schema, writes);
  rpoSamples.set(`keeper ${label}`, rpo);
  churnRows.push({
    rate,
    maxDelayMs,
    strategy: 'keeper',
    writes: writes.length,
    unsaved,
    p50: percentile(rpo, 50),
    p99: percentile(rpo, 99),
    max: rpo.at(-1) ?? NaN,
    sentBytesPerSecond: keeperBytes / seconds,
    backups,
    rpoBy: 'measured (generation transaction start)',
  });

  for (const [i, b] of baselines.entries()) {
    // A and B store on a schedule; a write waits for the next scheduled backup that starts after it.
    const ticks = b.ticks.sort((x, y) => x - y);
    const samples = writes.map((w) => {
      const next = ticks.find((t) => t >= w.t) ?? started + Math.ceil((w.t - started) / b.everyMs) * b.everyMs;
      return (next - w.t) / 1000;
    });
    samples.sort((x, y) => x - y);
    rpoSamples.set(`${b.strategy.name === 'A' ? 'A (every 1 s)' : `B (every ${b.everyMs / 1000} s)`} ${rate}/s`, samples);
    churnRows.push({
      rate,
      maxDelayMs,
      strategy: b.strategy.name,
      writes: writes.length,
      unsaved: 0,
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      max: samples.at(-1) ?? NaN,
      sentBytesPerSecond: (b.strategy.sent() - baselineSent[i]!) / seconds,
      backups: ticks.length,
      rpoBy: `schedule (every ${b.everyMs} ms)`,
    });
    await b.strategy.close();
  }
  say(`churn ${label}: ${writes.length} writes, keeper p99 RPO ${percentile(rpo, 99).toFixed(2)} s`);
}

for (const rate of PLAN.rates) await churnRun(rate, MAX_DELAY_MS, true);
// The same churn with the previous default max-delay: what the 1 s RPO costs in bytes and transactions.
for (const rate of PLAN.rates) await churnRun(rate, PREVIOUS_MAX_DELAY_MS, false);

// ---------------------------------------------------------------- 3. an idle sidecar process watching the largest session
const sidecarEnv = { ...process.env, DATABASE_URL: databaseUrl, KEEPER_LOG_LEVEL: 'info' };
const largest = Math.max(...PLAN.sizes);
const idleDir = sessionDirs.get(largest)!;
/** Node flags the sidecar image runs with (Dockerfile.sidecar's and deploy/railway/Dockerfile's ENTRYPOINT). */
const SIDECAR_NODE_FLAGS = '--max-semi-space-size=1';
const clockTicks = 100; // Linux USER_HZ
const cpuTicks = async (pid: number) => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
};
const rssBytes = async (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const connections = async () =>
  Number(
    (await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'baileys-keeper'")).rows[0]!.n,
  );

/** A sidecar on the largest session (its own session id, so its start-up backup is a full one), watched idle. */
async function measureIdle(session: string, env: Record<string, string | undefined>) {
  const idle = await startService(['sidecar', '--dir', idleDir, '--session', session, '--shutdown-quiet', '100'], env);
  await waitFor(async () => ((await idle.get('/readyz')).status === 200 ? true : null), 60_000);
  await new Promise((resolve) => setTimeout(resolve, 2000)); // past the start-up scan
  const idleStart = { ticks: await cpuTicks(idle.child.pid!), t: performance.now() };
  let rssMax = 0;
  let connectionsMax = 0;
  for (let s = 0; s < PLAN.idleSeconds; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    rssMax = Math.max(rssMax, await rssBytes(idle.child.pid!));
    connectionsMax = Math.max(connectionsMax, await connections());
  }
  const cpuPercent =
    (((await cpuTicks(idle.child.pid!)) - idleStart.ticks) / clockTicks / ((performance.now() - idleStart.t) / 1000)) * 100;
  await idle.stop();
  return { rssMax, cpuPercent, connectionsMax };
}

const idleDefault = await measureIdle('idle', sidecarEnv);
// The images run the sidecar with V8's young generation capped (Dockerfile.sidecar): the same, so.
const idleImage = await measureIdle('idle-image', { ...sidecarEnv, NODE_OPTIONS: SIDECAR_NODE_FLAGS });
const idleRow = {
  files: await countFiles(idleDir),
  seconds: PLAN.idleSeconds,
  rssMaxBytes: idleDefault.rssMax,
  imageNodeFlags: SIDECAR_NODE_FLAGS,
  imageRssMaxBytes: idleImage.rssMax,
  cpuPercentOfOneCore: idleDefault.cpuPercent,
  imageCpuPercentOfOneCore: idleImage.cpuPercent,
  connectionsMax: Math.max(idleDefault.connectionsMax, idleImage.connectionsMax),
};
say(`idle: ${JSON.stringify(idleRow)}`);

// ---------------------------------------------------------------- 3b. the watcher: bare fs.watch, chokidar native, chokidar polling
const watcherRows: WatcherRow[] = [];
for (const kind of WATCHER_KINDS) {
  const row = await measureWatcher(kind, idleDir, await countFiles(idleDir), {
    idleSeconds: PLAN.watchIdleSeconds,
    writesPerSecond: 200,
    burstSeconds: PLAN.watchBurstSeconds,
    burstFiles: 100,
    pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
  });
  watcherRows.push(row);
  say(`watcher ${kind}: ${JSON.stringify(row)}`);
}

// ---------------------------------------------------------------- 3c. retention: weeks of history, bounded
const retentionRows = await simulateRetention(
  databaseUrl,
  path.join(work, 'retention'),
  { days: PLAN.retentionDays, everyMinutes: PLAN.retentionEveryMinutes },
  log,
);
say(`retention: ${JSON.stringify(retentionRows.slice(-2))}`);
const thinning = await thinningCost(databaseUrl, idleDir, PLAN.thinGenerations, 48, log);
say(`thinning: ${JSON.stringify(thinning)}`);

// ---------------------------------------------------------------- 4. a fleet of sidecars on one PostgreSQL
const fleet: { service: Service; dir: string; auth: Awaited<ReturnType<typeof useMultiFileAuthState>> }[] = [];
for (let i = 0; i < PLAN.fleet; i += 10) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(10, PLAN.fleet - i) }, async (_, j) => {
      const dir = path.join(work, `fleet-${i + j}`);
      await writeSession(dir, { preKeys: 80 });
      const service = await startService(['sidecar', '--dir', dir, '--session', `fleet-${i + j}`, '--shutdown-quiet', '100'], sidecarEnv);
      return { service, dir, auth: await useMultiFileAuthState(dir) };
    }),
  );
  fleet.push(...batch);
}
for (const member of fleet) await waitFor(async () => ((await member.service.get('/readyz')).status === 200 ? true : null), 60_000);
const generationsNow = async () =>
  Number(
    (await admin.query<{ n: string }>("SELECT count(*) AS n FROM baileys_keeper.generations WHERE session_id LIKE 'fleet-%'")).rows[0]!.n,
  );
const fleetGenerations = await generationsNow();
const fleetStart = Date.now();
let fleetConnectionsMax = 0;
let fleetWrites = 0;
while (Date.now() - fleetStart < PLAN.fleetSeconds * 1000) {
  // Every sidecar's bot writes about one key a second.
  for (const member of fleet) {
    if (Math.random() < 0.1) {
      await member.auth.state.keys.set({ session: { [`5511${randomInt(50)}.0`]: randomBytes(800) } } as never);
      fleetWrites++;
    }
  }
  fleetConnectionsMax = Math.max(fleetConnectionsMax, await connections());
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const fleetSeconds = (Date.now() - fleetStart) / 1000;
for (const member of fleet)
  await waitFor(async () => ((await member.service.metric('baileys_keeper_backup_lag_seconds')) === 0 ? true : null), 60_000);
const fleetCommitted = (await generationsNow()) - fleetGenerations;
await Promise.all(fleet.map((member) => member.service.stop()));
const fleetRow = {
  sidecars: PLAN.fleet,
  seconds: fleetSeconds,
  writes: fleetWrites,
  writesPerSecond: fleetWrites / fleetSeconds,
  generations: fleetCommitted,
  generationsPerSecond: fleetCommitted / fleetSeconds,
  connectionsMax: fleetConnectionsMax,
  connectionsPerSidecar: fleetConnectionsMax / PLAN.fleet,
};
say(`fleet: ${JSON.stringify(fleetRow)}`);

// ---------------------------------------------------------------- 5. what a crash costs the chats
const continuityRows = await measureContinuity(databaseUrl, path.join(work, 'continuity'), PLAN.continuity, say);

// ---------------------------------------------------------------- targets and report
const single10k = (strategy: string) => sizeRows.find((r) => r.size === largest && r.phase === 'single key' && r.strategy === strategy)!;
const keeperChurn = (rate: number, maxDelayMs: number) =>
  churnRows.find((r) => r.rate === rate && r.maxDelayMs === maxDelayMs && r.strategy === 'keeper')!;
const watcher = (kind: string) => watcherRows.find((r) => r.kind === kind)!;
const restoreLargest = restoreRows.find((r) => r.size === largest && r.strategy === 'keeper');
const targets = [
  {
    target: `single-key change in a ${largest}-file session sends ≥ 100× fewer bytes than A`,
    value: `${(single10k('A').sentBytes / single10k('keeper').sentBytes).toFixed(0)}×`,
    met: single10k('A').sentBytes / single10k('keeper').sentBytes >= 100,
  },
  ...PLAN.rates.map((rate) => ({
    target:
      `p99 RPO ≤ ${RPO_TARGET_S} s at ${rate} mutations/s, defaults ` +
      `(debounce ${DEBOUNCE_MS / 1000} s, max-delay ${MAX_DELAY_MS / 1000} s)`,
    value:
      `${keeperChurn(rate, MAX_DELAY_MS).p99.toFixed(2)} s (${keeperChurn(rate, PREVIOUS_MAX_DELAY_MS).p99.toFixed(2)} ` +
      `s with the previous max-delay ${PREVIOUS_MAX_DELAY_MS / 1000} s)`,
    met: keeperChurn(rate, MAX_DELAY_MS).p99 <= RPO_TARGET_S,
  })),
  {
    target: 'chokidar (native) sees every last write of a 200 writes/s burst',
    value:
      `${(watcher('chokidar-native').lastWriteCoverage * 100).toFixed(1)} % ` +
      `(fs.watch ${(watcher('fs-watch').lastWriteCoverage * 100).toFixed(1)} %)`,
    met: watcher('chokidar-native').lastWriteCoverage === 1,
  },
  (() => {
    const schedule = retentionRows.filter((r) => r.policy.startsWith('schedule'));
    const month = schedule.find((r) => r.day === 31);
    const last = schedule.at(-1)!;
    return month
      ? {
          target: 'history storage flat after the first month (default schedule): table bytes on the last day ≤ 110 % of day 31',
          value:
            `${formatBytes(last.tableBytes)} on day ${last.day} vs ${formatBytes(month.tableBytes)} ` +
            `on day 31; history reaches back ${last.reachDays.toFixed(1)} days`,
          met: last.tableBytes <= month.tableBytes * 1.1,
        }
      : { target: 'history storage flat after the first month (default schedule)', value: `n/a: ${last.day} simulated days`, met: true };
  })(),
  {
    target: `restore of ${largest} files within 3 s`,
    value: restoreLargest ? `${(restoreLargest.ms / 1000).toFixed(2)} s` : 'n/a',
    met: (restoreLargest?.ms ?? Infinity) <= 3000,
  },
  {
    target: 'idle RSS ≤ 80 MiB',
    value: `${formatBytes(idleRow.rssMaxBytes)}; ${formatBytes(idleRow.imageRssMaxBytes)} as the images run it (\`${SIDECAR_NODE_FLAGS}\`)`,
    met: Math.min(idleRow.rssMaxBytes, idleRow.imageRssMaxBytes) <= 80 * 2 ** 20,
  },
  { target: 'idle CPU ≤ 1 % of a core', value: `${idleRow.cpuPercentOfOneCore.toFixed(2)} %`, met: idleRow.cpuPercentOfOneCore <= 1 },
  {
    target: '≤ 2 connections per sidecar',
    value: `${idleRow.connectionsMax} (one sidecar); ${fleetRow.connectionsPerSidecar.toFixed(2)} (fleet of ${PLAN.fleet})`,
    met: idleRow.connectionsMax <= 2 && fleetRow.connectionsPerSidecar <= 2,
  },
];
// 101 quantiles per RPO distribution: enough to redraw the chart, small enough to commit.
const rpoQuantiles = Object.fromEntries(
  [...rpoSamples].map(([name, samples]) => [name, Array.from({ length: 101 }, (_, q) => percentile(samples, Math.max(q, 0.5)))]),
);
const results = {
  environment,
  plan: PLAN,
  debounceMs: DEBOUNCE_MS,
  maxDelayMs: MAX_DELAY_MS,
  sizes: sizeRows,
  restore: restoreRows,
  churn: churnRows,
  idle: idleRow,
  watchers: watcherRows,
  retention: retentionRows,
  thinning,
  fleet: fleetRow,
  continuity: continuityRows,
  targets,
  rpoQuantiles,
};
await mkdir(OUT, { recursive: true });
await writeFile(path.join(OUT, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(path.join(OUT, 'latest.md'), report());
await writeFile(
  path.join(OUT, 'bytes-per-backup.svg'),
  logBarChart(
    'Bytes sent to PostgreSQL for a single-key change',
    PLAN.sizes.map((size) => `${sizeRows.find((r) => r.size === size)!.files} files`),
    ['keeper', 'A', 'B'].map((strategy) => ({
      name: strategy === 'keeper' ? 'baileys-keeper' : strategy === 'A' ? 'A: JSONB row' : 'B: tar.gz per backup',
      values: PLAN.sizes.map(
        (size) => sizeRows.find((r) => r.size === size && r.phase === 'single key' && r.strategy === strategy)!.sentBytes,
      ),
    })),
    'bytes sent (log scale)',
  ),
);
await writeFile(
  path.join(OUT, 'rpo.svg'),
  cdfChart(
    'Time from a file write to the commit that holds it (20 mutations/s)',
    [...rpoSamples].filter(([name]) => name.includes(' 20/s')).map(([name, samples]) => ({ name, samples })),
    'seconds',
  ),
);
say(report());
if (!SMOKE && flags.out === undefined) await updateDocBlock(path.join(OUT, '..', '..', 'docs', 'performance.md'), report(), BENCH_MARKERS);
await admin.end();
await embedded?.stop();
await rm(work, { recursive: true, force: true });

function report(): string {
  const md: string[] = [];
  md.push(
    `Measured ${environment.date.slice(0, 10)} on ${environment.cpu} (${environment.cores} cores, ` +
      `${environment.memoryGiB} GiB), Node ${environment.node}, PostgreSQL ` +
      `${environment.postgres}${SMOKE ? ' — SMOKE RUN, not representative' : ''}.`,
    '',
  );
  md.push('| target | measured | met |', '|---|---|---|');
  for (const t of targets) md.push(`| ${t.target} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`);
  md.push('', '**Per backup, by session size** (bytes sent to PostgreSQL / bytes added to its tables / latency):', '');
  md.push('| files | change | files changed | baileys-keeper | A: JSONB row | B: tar.gz |', '|---|---|---|---|---|---|');
  for (const size of PLAN.sizes) {
    for (const phase of ['initial', 'single key', 'burst of 50 keys']) {
      const cell = (strategy: string) => {
        const r = sizeRows.find((x) => x.size === size && x.phase === phase && x.strategy === strategy)!;
        return `${formatBytes(r.sentBytes)} / ${formatBytes(r.tableBytes)} / ${r.ms.toFixed(0)} ms`;
      };
      const any = sizeRows.find((x) => x.size === size && x.phase === phase)!;
      md.push(`| ${any.files} | ${phase} | ${any.changed} | ${cell('keeper')} | ${cell('A')} | ${cell('B')} |`);
    }
  }
  md.push('', '**Under churn** (RPO = time from a write to the commit holding it):', '');
  md.push(
    '| churn | max-delay | strategy | writes | RPO p50 | p99 | max | sent per second | backups (per second) |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of churnRows) {
    md.push(
      `| ${r.rate}/s | ${r.maxDelayMs / 1000} s | ${r.strategy}${r.strategy === 'keeper' ? '' : ` (${r.rpoBy})`} ` +
        `| ${r.writes}${r.unsaved ? ` (${r.unsaved} unsaved)` : ''} | ${r.p50.toFixed(2)} s | ` +
        `${r.p99.toFixed(2)} s | ${r.max.toFixed(2)} s | ${formatBytes(r.sentBytesPerSecond)} ` +
        `| ${r.backups} (${(r.backups / PLAN.churnSeconds).toFixed(2)}) |`,
    );
  }
  md.push('', '**Restore** (fetch + atomic, fsynced write of the directory):', '');
  md.push('| files | baileys-keeper | A | B |', '|---|---|---|---|');
  for (const size of [...new Set(restoreRows.map((r) => r.size))]) {
    const cell = (strategy: string) => `${(restoreRows.find((r) => r.size === size && r.strategy === strategy)!.ms / 1000).toFixed(2)} s`;
    md.push(`| ${restoreRows.find((r) => r.size === size)!.files} | ${cell('keeper')} | ${cell('A')} | ${cell('B')} |`);
  }
  md.push(
    '',
    `**Idle sidecar** watching ${idleRow.files} files for ${idleRow.seconds} s: RSS ` +
      `${formatBytes(idleRow.rssMaxBytes)} (max), CPU ${idleRow.cpuPercentOfOneCore.toFixed(2)} ` +
      `% of a core, ${idleRow.connectionsMax} database connections; ` +
      `with the images' \`node ${idleRow.imageNodeFlags}\`: RSS ` +
      `${formatBytes(idleRow.imageRssMaxBytes)}, CPU ${idleRow.imageCpuPercentOfOneCore.toFixed(2)} %.`,
  );
  const baseline = watcher('none');
  md.push(
    '',
    `**Watchers** on ${baseline.files} files, each in a process of its own (RSS over a Node process ` +
      `that watches nothing: ${formatBytes(baseline.rssBytes)}); a burst of 200 writes/s over 100 files for ${PLAN.watchBurstSeconds} s:`,
    '',
  );
  md.push(
    '| watcher | start-up | RSS (over baseline) | idle CPU | events / writes | last writes seen | detection p50 / p99 |',
    '|---|---|---|---|---|---|---|',
  );
  for (const w of watcherRows.filter((row) => row.kind !== 'none')) {
    md.push(
      `| ${w.kind} | ${w.readyMs.toFixed(0)} ms | ${formatBytes(w.rssBytes)} ` +
        `(+${formatBytes(w.rssBytes - baseline.rssBytes)}) | ${w.cpuPercentOfOneCore.toFixed(2)} % | ${w.events} / ${w.writes} | ` +
        `${(w.lastWriteCoverage * 100).toFixed(1)} % | ${w.detectP50Ms.toFixed(0)} / ${w.detectP99Ms.toFixed(0)} ms |`,
    );
  }
  const days = [...new Set(retentionRows.map((r) => r.day))];
  const shown = days.filter((day) => day === 1 || day % 7 === 0 || day === days.at(-1));
  md.push(
    '',
    `**History over ${PLAN.retentionDays} simulated days** (the real Baileys writer, a generation ` +
      `every ${PLAN.retentionEveryMinutes} simulated minutes, thinned hourly; ` +
      `rows and bytes of the files and generations tables with TOAST and indexes):`,
    '',
  );
  md.push('| day | policy | generations | file rows | table bytes | dead tuples | history reaches back |', '|---|---|---|---|---|---|---|');
  for (const r of retentionRows.filter((row) => shown.includes(row.day))) {
    md.push(
      `| ${r.day} | ${r.policy} | ${r.generations} | ${r.fileRows} | ` +
        `${formatBytes(r.tableBytes)} | ${r.deadTuples} | ${r.reachDays.toFixed(1)} days |`,
    );
  }
  md.push(
    '',
    `**Thinning cost** at ${thinning.files} files: one pass over ${thinning.generationsBefore} ` +
      `generations (48 h of backups of 20 files each) deleted ${thinning.generationsDeleted} generations and ` +
      `${thinning.fileVersionsDeleted} file versions in ${thinning.ms.toFixed(0)} ms, ${thinning.transactions} ` +
      `transactions of ${thinning.msPerTransaction.toFixed(1)} ms on average; ` +
      `a backup pays nothing for it (thinning is not in the backup transaction).`,
  );
  md.push(
    '',
    '**A crash, in chats**: `run -- bot` SIGKILLed (bot and keeper together) at a random instant of a conversation that never pauses, ' +
      "the next container restored from the head, then every chat's next exchange tried from the peers' side (see Reliability):",
    '',
    ...continuityTable(continuityRows),
  );
  md.push(
    '',
    `**${fleetRow.sidecars} sidecars** on one PostgreSQL for ${fleetRow.seconds.toFixed(0)} s: ` +
      `${fleetRow.writes} key writes (${fleetRow.writesPerSecond.toFixed(1)}/s), ${fleetRow.generations} ` +
      `generations committed (${fleetRow.generationsPerSecond.toFixed(1)}/s), at most ` +
      `${fleetRow.connectionsMax} connections (${fleetRow.connectionsPerSidecar.toFixed(2)} per sidecar).`,
    '',
  );
  return md.join('\n');
}
