// Many sessions (--sessions-dir) measured as users run it: the built CLI as real processes, sessions written
// by the real Baileys writer, a real PgBouncer in transaction mode, one PostgreSQL.
//   1. one keeper keeping `sessions` sessions while 1 % of them churn: RSS, CPU, connections, RPO, beside
//      one session churned the same way;
//   2. K keepers × N sessions through PgBouncer: generations/s, PostgreSQL CPU and connections, RPO;
//   3. the files table under continuous churn with a (compressed) retention schedule vs without one;
//   4. start-up: the first full scan, and `restore --sessions-dir` vs one `restore --session` per session.
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { useMultiFileAuthState } from '@whiskeysockets/baileys';
import type pg from 'pg';
import { writeSession } from '../harness/baileys.js';
import { cliEnv, runCli } from '../harness/cli.js';
import { REPO } from '../harness/paths.js';
import { PGBOUNCER, startPgBouncer } from '../harness/pgbouncer.js';
import { startService, waitFor, type Service } from '../harness/sidecar.js';
import type { Baseline } from './baseline.js';
import { cdfChart, formatBytes, lineChart } from './charts.js';
import { measureRest, type RestFigures } from './rest.js';
import { churnWrite, percentile, storedRpo, type ChurnState, type TimedWrite } from './rpo.js';

export interface ManySessionsPlan {
  /** Sessions of the one keeper (parts 1 and 4). */
  sessions: number;
  /** Pre-keys per session: with creds, 5 sessions, 3 sender keys and 2 app-state keys, ~100 files. */
  preKeys: number;
  churnSeconds: number;
  /** Fraction of a keeper's sessions being written at any moment. */
  churningFraction: number;
  /** Writes per second into each churning session (the single-session bench's lower rate). */
  writesPerSecond: number;
  /** A churn writer moves on to another session after this long. */
  rotateSeconds: number;
  /** Part 2: keeper processes per step, and sessions per keeper. */
  fleetKeepers: number[];
  fleetSessionsPerKeeper: number;
  fleetSeconds: number;
  /** PgBouncer's server connections (default_pool_size). */
  poolSize: number;
  /** Without pgbouncer installed, skip part 2 (the smoke run on a developer's machine) rather than fail. */
  pgbouncerOptional: boolean;
  /** Part 3: sessions per keeper, all churning, and how long. */
  historySessions: number;
  historySeconds: number;
  historySampleSeconds: number;
  historyRetention: string;
  historyKeep: number;
  /** Part 4: sessions restored one by one (one `restore --session` process each), then extrapolated. */
  restoreSample: number;
  /** Part 0, the fleet at rest: seconds of CPU and RSS sampled, after this many seconds of quiet. */
  restSeconds: number;
  restSettleSeconds: number;
}

export const MANY_SESSIONS_PLAN: ManySessionsPlan = {
  sessions: 1000,
  preKeys: 89,
  churnSeconds: 60,
  churningFraction: 0.01,
  writesPerSecond: 20,
  rotateSeconds: 5,
  // Up to 10 keepers × 1,000 sessions = 10,000 sessions on one PostgreSQL, through one PgBouncer.
  fleetKeepers: [1, 2, 5, 10],
  fleetSessionsPerKeeper: 1000,
  fleetSeconds: 45,
  poolSize: 8,
  pgbouncerOptional: false,
  historySessions: 10,
  historySeconds: 300,
  historySampleSeconds: 10,
  // The default schedule's shape (1h:all,24h:10m, …), compressed so that minutes show what hours would.
  historyRetention: '30s:all,2m:10s',
  historyKeep: 10,
  restoreSample: 25,
  // V8's memory reducer shrinks the young generation about two minutes after start-up's allocations end:
  // the window covers it, and RSS at rest is read from its second half.
  restSeconds: 120,
  restSettleSeconds: 60,
};

export const MANY_SESSIONS_SMOKE_PLAN: ManySessionsPlan = {
  sessions: 4,
  preKeys: 20,
  churnSeconds: 2,
  churningFraction: 0.5,
  writesPerSecond: 20,
  rotateSeconds: 1,
  fleetKeepers: [1, 2],
  fleetSessionsPerKeeper: 2,
  fleetSeconds: 2,
  poolSize: 3,
  pgbouncerOptional: true,
  historySessions: 2,
  historySeconds: 3,
  historySampleSeconds: 2,
  historyRetention: '2s:all,4s:2s',
  historyKeep: 2,
  restoreSample: 1,
  restSeconds: 2,
  restSettleSeconds: 1,
};

export interface ChurnWindow {
  sessions: number;
  churning: number;
  seconds: number;
  writes: number;
  unsaved: number;
  generations: number;
  rpoP50: number;
  rpoP99: number;
  rpoMax: number;
  /** Keeper processes' RSS: the highest VmHWM, and the median over the window's second half (summed over keepers). */
  rssPeakBytes: number;
  rssSteadyBytes: number;
  /** Keeper processes' CPU over the window, % of one core (summed over keepers). */
  cpuPercent: number;
  /** PostgreSQL's CPU over the window (postmaster and backends), % of one core; null when its processes are not local. */
  postgresCpuPercent: number | null;
  connectionsMax: number;
  /** Sessions with changes still not stored 30 s after the churn ended (their writes are unsaved). */
  lagging: number;
}

export interface FleetStep extends ChurnWindow {
  keepers: number;
  sessionsPerKeeper: number;
  generationsPerSecond: number;
  /** From starting the keepers until every /readyz is 200. */
  readyMs: number;
}

export interface HistorySample {
  seconds: number;
  policy: string;
  tableBytes: number;
  generations: number;
  fileRows: number;
}

export interface ManySessionsResults {
  plan: ManySessionsPlan;
  generate: { sessions: number; filesPerSession: number; ms: number };
  /** The fleet at rest, this build and (with --baseline) the baseline's: bench/rest.ts. */
  rest: RestFigures[];
  one: ChurnWindow;
  many: ChurnWindow;
  /** `many` again, as the images run the keeper (IMAGE_NODE_FLAGS); a restart, everything stored. */
  manyImage: ChurnWindow;
  startup: {
    sessions: number;
    coldReadyMs: number;
    warmReadyMs: number;
    restoreAllMs: number;
    restoreOneByOne: { sample: number; ms: number; extrapolatedMs: number };
  };
  fleet: FleetStep[];
  history: HistorySample[];
  keeperExitCodes: (number | null)[];
  rpoQuantiles: Record<string, number[]>;
}

export interface Context {
  databaseUrl: string;
  admin: pg.Client;
  work: string;
  /** The local postmaster's pid, when PostgreSQL runs on this machine: its CPU is read from /proc. */
  postmasterPid: number | null;
  say: (line: string) => void;
  /** An earlier build to measure the fleet at rest with too (bench --baseline REF), or null. */
  baseline: Baseline | null;
}

const SCHEMA = 'bench_many';
const FLEET_SCHEMA = 'bench_many_fleet';
const CLOCK_TICKS = 100; // Linux USER_HZ
/** The Node flags of the keeper's images (Dockerfile.sidecar's ENTRYPOINT). */
const IMAGE_NODE_FLAGS = '--max-semi-space-size=1';
/** How long after a churn window everything written must be stored. */
const CATCH_UP_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

async function procStat(pid: number): Promise<{ ticks: number; childTicks: number; ppid: number }> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), childTicks: Number(fields[13]) + Number(fields[14]) };
}

async function memory(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** CPU ticks of PostgreSQL: the postmaster, its live children, and the children it has reaped. */
async function postgresTicks(postmaster: number): Promise<number> {
  const own = await procStat(postmaster);
  let ticks = own.ticks + own.childTicks;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await procStat(Number(entry)).catch(() => null);
    if (stat?.ppid === postmaster) ticks += stat.ticks;
  }
  return ticks;
}

/** The postmaster's pid, read from its data directory when this machine can read it. */
export async function findPostmaster(admin: pg.Client): Promise<number | null> {
  try {
    const dir = (await admin.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'data_directory'")).rows[0]!.setting;
    const pid = Number((await readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    await procStat(pid);
    return pid;
  } catch {
    return null;
  }
}

/** `count` sessions written by Baileys' own writer into root/s0000…, 8 at a time. */
async function generateSessions(root: string, count: number, preKeys: number): Promise<number> {
  await mkdir(root, { recursive: true });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const i = next++;
        await writeSession(path.join(root, sessionName(i)), { preKeys });
      }
    }),
  );
  return performance.now() - started;
}

const sessionName = (i: number) => `s${String(i).padStart(4, '0')}`;

/** Copies the first `count` sessions of `from` into `to` (a file copy of Baileys-written sessions, under other ids). */
async function copySessions(from: string, to: string, count: number): Promise<void> {
  await mkdir(to, { recursive: true });
  const names = Array.from({ length: count }, (_, i) => path.join(from, sessionName(i)));
  for (let i = 0; i < names.length; i += 200) await run('cp', ['-a', ...names.slice(i, i + 200), to]);
}

interface Kept {
  id: string;
  dir: string;
}

async function keptSessions(dir: string, prefix: string): Promise<Kept[]> {
  return (await readdir(dir)).sort().map((name) => ({ id: `${prefix}${name}`, dir: path.join(dir, name) }));
}

/**
 * Churn writers: `slots` of them, each writing `rate` times a second into one session through Baileys'
 * keys.set (session records rewritten, pre-keys added and used up, as in the single-session churn), moving
 * on to another session not being written every `rotateMs`. Returns every write with its time.
 */
async function churn(sessions: Kept[], slots: number, rate: number, rotateMs: number, seconds: number): Promise<TimedWrite[]> {
  const writes: TimedWrite[] = [];
  const busy = new Set<string>();
  const added = new Map<string, number[]>(); // pre-keys a writer added, per session: the ones it may use up
  let nextPreKey = 500_000;
  const newPreKey = () => nextPreKey++;
  const until = Date.now() + seconds * 1000;
  const perTick = Math.max(1, Math.round(rate / 20));
  await Promise.all(
    Array.from({ length: Math.min(slots, sessions.length) }, async () => {
      while (Date.now() < until) {
        const free = sessions.filter((s) => !busy.has(s.id));
        const session = free[randomInt(free.length)]!;
        busy.add(session.id);
        const auth = await useMultiFileAuthState(session.dir);
        const preKeys = added.get(session.id) ?? [];
        added.set(session.id, preKeys);
        const leaveAt = Math.min(until, Date.now() + rotateMs);
        while (Date.now() < leaveAt) {
          const tickStart = Date.now();
          // Pre-key ids are unique across the writers; each session keeps its own list of added ones.
          const state: ChurnState = { preKeys, nextPreKey: newPreKey };
          for (let i = 0; i < perTick; i++) await churnWrite(auth, state, session.id, writes);
          await sleep(Math.max(0, 50 - (Date.now() - tickStart)));
        }
        busy.delete(session.id);
      }
    }),
  );
  return writes;
}

function keeperEnv(databaseUrl: string, schema: string) {
  return cliEnv(databaseUrl, { KEEPER_SCHEMA: schema });
}

/** Keeps every generation (RPO is read from the history) unless `retention` is given. */
function startKeeper(
  sessionsDir: string,
  prefix: string,
  env: Record<string, string | undefined>,
  retention: string[] = ['--retention', 'none', '--keep', '1000000'],
): Promise<Service> {
  return startService(['sidecar', '--sessions-dir', sessionsDir, '--session-prefix', prefix, '--shutdown-quiet', '100', ...retention], env);
}

async function ready(services: Service[], timeoutMs: number): Promise<void> {
  for (const service of services)
    await waitFor(
      async () => ((await service.get('/readyz')).status === 200 ? true : null),
      timeoutMs,
      () => service.output.slice(-20).join('\n'),
      service.exited,
    );
}

/**
 * Waits (up to `timeoutMs`) until every session's backup lag is 0: everything written is stored. Returns
 * the sessions still lagging then (a session that stays dirty with no backup coming is a finding, not a
 * reason to stop the bench: its writes count as unsaved).
 */
async function caughtUp(services: Service[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lagging: string[] = [];
    for (const service of services)
      for (const [name, value] of await service.metrics())
        if (name.startsWith('baileys_keeper_backup_lag_seconds') && value > 0) lagging.push(/session="([^"]*)"/.exec(name)?.[1] ?? name);
    if (lagging.length === 0 || Date.now() > deadline) return lagging;
    await sleep(500);
  }
}

/** Stops the keepers (SIGTERM); returns their exit codes, saying what they warned about when one failed. */
async function stopAll(services: Service[], say: (line: string) => void): Promise<(number | null)[]> {
  const ends = await Promise.all(services.map((service) => service.stop()));
  ends.forEach((end, i) => {
    if (end.code === 0) return;
    const warnings = services[i]!.output.filter((line) => /"level":"(warn|error|fatal)"/.test(line));
    say(`a keeper exited with ${end.code ?? end.signal}; its warnings and errors (last 30):\n${warnings.slice(-30).join('\n')}`);
  });
  return ends.map((end) => end.code);
}

/**
 * Churns `sessions` (kept by `services`) for `seconds` while sampling the keepers and PostgreSQL once a
 * second; then waits until everything is stored and reads RPO from the store.
 */
async function churnWindow(
  ctx: Context,
  plan: ManySessionsPlan,
  schema: string,
  services: Service[],
  groups: Kept[][],
  seconds: number,
  connections: () => Promise<number>,
): Promise<{ window: ChurnWindow; rpo: number[] }> {
  const pids = services.map((service) => service.child.pid!);
  const ticksOf = async () => (await Promise.all(pids.map(procStat))).reduce((sum, stat) => sum + stat.ticks, 0);
  const start = { keeper: await ticksOf(), postgres: ctx.postmasterPid ? await postgresTicks(ctx.postmasterPid) : 0, t: performance.now() };
  const rss: number[] = [];
  let connectionsMax = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sleep(1000);
      rss.push((await Promise.all(pids.map(memory))).reduce((sum, m) => sum + m.rss, 0));
      connectionsMax = Math.max(connectionsMax, await connections());
    }
  })();
  const slots = groups.map((group) => Math.max(1, Math.round(group.length * plan.churningFraction)));
  const writes = (
    await Promise.all(groups.map((group, i) => churn(group, slots[i]!, plan.writesPerSecond, plan.rotateSeconds * 1000, seconds)))
  ).flat();
  const elapsed = (performance.now() - start.t) / 1000;
  const end = { keeper: await ticksOf(), postgres: ctx.postmasterPid ? await postgresTicks(ctx.postmasterPid) : 0 };
  sampling = false;
  await sampler;
  const lagging = await caughtUp(services, CATCH_UP_MS);
  if (lagging.length > 0)
    ctx.say(`${lagging.length} sessions still not stored ${CATCH_UP_MS / 1000} s after the churn: ${lagging.slice(0, 20).join(', ')}`);
  const hwm = Math.max(...(await Promise.all(pids.map(memory))).map((m) => m.hwm));
  const stored = await storedRpo(ctx.databaseUrl, schema, writes);
  const steady = rss.slice(Math.floor(rss.length / 2)).sort((a, b) => a - b);
  return {
    rpo: stored.rpo,
    window: {
      sessions: groups.reduce((sum, group) => sum + group.length, 0),
      churning: slots.reduce((sum, n) => sum + n, 0),
      seconds: elapsed,
      writes: writes.length,
      unsaved: stored.unsaved,
      generations: stored.generations,
      rpoP50: percentile(stored.rpo, 50),
      rpoP99: percentile(stored.rpo, 99),
      rpoMax: stored.rpo.at(-1) ?? NaN,
      rssPeakBytes: hwm,
      rssSteadyBytes: percentile(steady, 50),
      cpuPercent: ((end.keeper - start.keeper) / CLOCK_TICKS / elapsed) * 100,
      postgresCpuPercent: ctx.postmasterPid ? ((end.postgres - start.postgres) / CLOCK_TICKS / elapsed) * 100 : null,
      connectionsMax,
      lagging: lagging.length,
    },
  };
}

async function count(admin: pg.Client, sql: string, values: unknown[] = []): Promise<number> {
  return Number((await admin.query<{ n: string }>(sql, values)).rows[0]!.n);
}

export async function measureManySessions(ctx: Context, plan: ManySessionsPlan): Promise<ManySessionsResults> {
  const { databaseUrl, admin, work, say } = ctx;
  const root = path.join(work, 'many-sessions');
  const env = keeperEnv(databaseUrl, SCHEMA);
  const keeperConnections = () =>
    count(admin, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'baileys-keeper' AND datname = current_database()");
  const rpoSamples: Record<string, number[]> = {};
  /** Every keeper's exit code on SIGTERM (0: it stored everything and stopped cleanly). */
  const exits: (number | null)[] = [];

  // The sessions, written by Baileys.
  const template = path.join(root, 'sessions');
  const generateMs = await generateSessions(template, plan.sessions, plan.preKeys);
  const filesPerSession = (await readdir(path.join(template, sessionName(0)))).length;
  say(`many sessions: ${plan.sessions} sessions of ${filesPerSession} files written by Baileys in ${(generateMs / 1000).toFixed(1)} s`);

  // 0. The fleet at rest: restart to ready, CPU and RSS with nobody writing, SIGTERM to exit, restore of all;
  // the baseline first (when given), each build under its own schema.
  const restPlan = { restSeconds: plan.restSeconds, settleSeconds: plan.restSettleSeconds };
  const rest: RestFigures[] = [];
  if (ctx.baseline)
    rest.push(
      await measureRest(databaseUrl, template, plan.sessions, restPlan, { ...ctx.baseline, schema: 'bench_rest_baseline' }, root, say),
    );
  // The bundled CLI, as the npm package and the images run it (npm run bench builds it).
  const bundled = { label: 'this build', script: path.join(REPO, 'dist', 'baileys-keeper.mjs'), schema: 'bench_rest' };
  rest.push(await measureRest(databaseUrl, template, plan.sessions, restPlan, bundled, root, say));

  // 1. One session, then `sessions`, each kept by one keeper and churned the same way.
  const oneDir = path.join(root, 'one');
  await copySessions(template, oneDir, 1);
  const oneKeeper = await startKeeper(oneDir, 'one-', env);
  await ready([oneKeeper], 60_000);
  const one = await churnWindow(ctx, plan, SCHEMA, [oneKeeper], [await keptSessions(oneDir, 'one-')], plan.churnSeconds, keeperConnections);
  exits.push(...(await stopAll([oneKeeper], say)));
  rpoSamples['1 session'] = one.rpo;
  say(`many sessions: one session ${JSON.stringify(one.window)}`);

  const coldStart = performance.now();
  const keeper = await startKeeper(template, 'm-', env);
  await ready([keeper], 30 * 60_000);
  const coldReadyMs = performance.now() - coldStart;
  say(`many sessions: first full scan of ${plan.sessions} sessions (nothing stored) in ${(coldReadyMs / 1000).toFixed(1)} s`);
  const many = await churnWindow(ctx, plan, SCHEMA, [keeper], [await keptSessions(template, 'm-')], plan.churnSeconds, keeperConnections);
  exits.push(...(await stopAll([keeper], say)));
  rpoSamples[`${plan.sessions} sessions`] = many.rpo;
  say(`many sessions: ${plan.sessions} sessions ${JSON.stringify(many.window)}`);

  // The same with the Node flag the images start the keeper with (Dockerfile.sidecar): V8's young
  // generation capped, which the start-up scan of many files otherwise grows and keeps.
  const imageKeeper = await startKeeper(template, 'm-', { ...env, NODE_OPTIONS: IMAGE_NODE_FLAGS });
  await ready([imageKeeper], 30 * 60_000);
  const image = await churnWindow(
    ctx,
    plan,
    SCHEMA,
    [imageKeeper],
    [await keptSessions(template, 'm-')],
    plan.churnSeconds,
    keeperConnections,
  );
  exits.push(...(await stopAll([imageKeeper], say)));
  say(`many sessions: ${plan.sessions} sessions with ${IMAGE_NODE_FLAGS} ${JSON.stringify(image.window)}`);

  // 4. Start-up: a restart (everything stored), then a new pod's restore.
  const warmStart = performance.now();
  const restarted = await startKeeper(template, 'm-', env);
  await ready([restarted], 30 * 60_000);
  const warmReadyMs = performance.now() - warmStart;
  exits.push(...(await stopAll([restarted], say)));
  const restoreStart = performance.now();
  const restored = await runCli(['restore', '--sessions-dir', path.join(root, 'restored'), '--session-prefix', 'm-'], {
    env,
    timeoutMs: 30 * 60_000,
  });
  const restoreAllMs = performance.now() - restoreStart;
  if (restored.code !== 0) throw new Error(`restore --sessions-dir failed: ${restored.stdout}${restored.stderr}`);
  const restoredCount = (await readdir(path.join(root, 'restored'))).length;
  if (restoredCount !== plan.sessions) throw new Error(`restore --sessions-dir restored ${restoredCount} of ${plan.sessions} sessions`);
  const oneByOneStart = performance.now();
  for (let i = 0; i < plan.restoreSample; i++) {
    const result = await runCli(['restore', '--session', `m-${sessionName(i)}`, '--dir', path.join(root, 'one-by-one', sessionName(i))], {
      env,
    });
    if (result.code !== 0) throw new Error(`restore --session failed: ${result.stdout}${result.stderr}`);
  }
  const oneByOneMs = performance.now() - oneByOneStart;
  await rm(path.join(root, 'restored'), { recursive: true, force: true });
  await rm(path.join(root, 'one-by-one'), { recursive: true, force: true });
  const startup = {
    sessions: plan.sessions,
    coldReadyMs,
    warmReadyMs,
    restoreAllMs,
    restoreOneByOne: { sample: plan.restoreSample, ms: oneByOneMs, extrapolatedMs: (oneByOneMs / plan.restoreSample) * plan.sessions },
  };
  say(`many sessions: start-up ${JSON.stringify(startup)}`);

  // 2. K keepers × N sessions through PgBouncer in transaction mode. Keeper k keeps its own copy of the
  // first N sessions as f<k>-…; a step with more keepers restarts the earlier ones (their sessions are
  // stored: a warm start) and adds new ones (a first backup of theirs before the window).
  const fleet: FleetStep[] = [];
  if (PGBOUNCER || !plan.pgbouncerOptional) await measureFleet(ctx, plan, template, root, fleet, rpoSamples, exits);
  else say('many sessions: pgbouncer is not installed: the fleet through PgBouncer is skipped');

  // 3. The files table under continuous churn, with the (compressed) retention schedule and without.
  const history = await measureHistory(ctx, plan, template, root, exits);

  return {
    plan,
    generate: { sessions: plan.sessions, filesPerSession, ms: generateMs },
    rest,
    one: one.window,
    many: many.window,
    manyImage: image.window,
    startup,
    fleet,
    history,
    keeperExitCodes: exits,
    rpoQuantiles: Object.fromEntries(
      Object.entries(rpoSamples).map(([name, samples]) => [
        name,
        Array.from({ length: 101 }, (_, q) => percentile(samples, Math.max(q, 0.5))),
      ]),
    ),
  };
}

async function measureFleet(
  ctx: Context,
  plan: ManySessionsPlan,
  template: string,
  root: string,
  fleet: FleetStep[],
  rpoSamples: Record<string, number[]>,
  exits: (number | null)[],
): Promise<void> {
  const { admin, say } = ctx;
  const bouncer = await startPgBouncer(ctx.databaseUrl, { poolSize: plan.poolSize });
  try {
    const fleetEnv = keeperEnv(bouncer.url, FLEET_SCHEMA);
    const perKeeper = Math.min(plan.fleetSessionsPerKeeper, plan.sessions);
    const serverConnections = () =>
      count(
        admin,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
      );
    for (const keepers of plan.fleetKeepers) {
      const dirs = Array.from({ length: keepers }, (_, k) => path.join(root, `fleet-${k}`));
      for (const dir of dirs) if ((await readdir(dir).catch(() => null)) === null) await copySessions(template, dir, perKeeper);
      const started = performance.now();
      const services = await Promise.all(dirs.map((dir, k) => startKeeper(dir, `f${k}-`, fleetEnv)));
      try {
        await ready(services, 30 * 60_000);
        const readyMs = performance.now() - started;
        const groups = await Promise.all(dirs.map((dir, k) => keptSessions(dir, `f${k}-`)));
        const generations = () => count(admin, `SELECT count(*) AS n FROM ${FLEET_SCHEMA}.generations`);
        const before = await generations();
        const { window, rpo } = await churnWindow(ctx, plan, FLEET_SCHEMA, services, groups, plan.fleetSeconds, serverConnections);
        // Generations committed for the window's writes (churnWindow waited until they were all stored), per second.
        const step = {
          keepers,
          sessionsPerKeeper: perKeeper,
          readyMs,
          generationsPerSecond: ((await generations()) - before) / window.seconds,
          ...window,
        };
        fleet.push(step);
        rpoSamples[`${keepers} × ${perKeeper} via PgBouncer`] = rpo;
        say(`many sessions: fleet ${JSON.stringify(step)}`);
      } finally {
        exits.push(...(await stopAll(services, say)));
      }
    }
  } finally {
    await bouncer.stop();
  }
}

async function measureHistory(
  ctx: Context,
  plan: ManySessionsPlan,
  template: string,
  root: string,
  exits: (number | null)[],
): Promise<HistorySample[]> {
  const policies = [
    { policy: `--retention ${plan.historyRetention} --keep ${plan.historyKeep}`, schema: 'bench_many_thinned' },
    { policy: 'no thinning (--retention none)', schema: 'bench_many_unthinned' },
  ];
  const services: Service[] = [];
  const groups: Kept[][] = [];
  for (const [i, p] of policies.entries()) {
    const dir = path.join(root, `history-${i}`);
    await copySessions(template, dir, Math.min(plan.historySessions, plan.sessions));
    const retention = i === 0 ? ['--retention', plan.historyRetention, '--keep', String(plan.historyKeep)] : undefined;
    services.push(await startKeeper(dir, 'h-', keeperEnv(ctx.databaseUrl, p.schema), retention));
    groups.push(await keptSessions(dir, 'h-'));
  }
  const samples: HistorySample[] = [];
  try {
    await ready(services, 5 * 60_000);
    const started = performance.now();
    let sampling = true;
    const sample = async () => {
      for (const p of policies) {
        const row = (
          await ctx.admin.query<{ bytes: string; generations: string; files: string }>(
            `SELECT pg_total_relation_size('${p.schema}.files') AS bytes,
                    (SELECT count(*) FROM ${p.schema}.generations) AS generations,
                    (SELECT count(*) FROM ${p.schema}.files) AS files`,
          )
        ).rows[0]!;
        samples.push({
          seconds: (performance.now() - started) / 1000,
          policy: p.policy,
          tableBytes: Number(row.bytes),
          generations: Number(row.generations),
          fileRows: Number(row.files),
        });
      }
    };
    const sampler = (async () => {
      await sample();
      while (sampling) {
        await sleep(plan.historySampleSeconds * 1000);
        await sample();
      }
    })();
    // Every session written all the time: the most history a keeper of these sessions can produce.
    await Promise.all(
      groups.map((group) => churn(group, group.length, plan.writesPerSecond, plan.rotateSeconds * 1000, plan.historySeconds)),
    );
    sampling = false;
    await sampler;
    ctx.say(`many sessions: history ${JSON.stringify(samples.slice(-2))}`);
  } finally {
    exits.push(...(await stopAll(services, ctx.say)));
  }
  return samples;
}

/** The Markdown block for docs/performance.md. */
export function manySessionsReport(r: ManySessionsResults, header: string): string {
  const md: string[] = [header, ''];
  const mib = (bytes: number) => formatBytes(bytes);
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  md.push(
    `**A fleet at rest**: one keeper of ${r.plan.sessions} stored sessions of ${r.generate.filesPerSession} files, nobody ` +
      `writing, the bundled CLI under plain \`node\` as the npm package runs it. Restart: from starting the keeper until ` +
      `/readyz is 200, everything already stored; CPU and RSS over ${r.plan.restSeconds} s after ${r.plan.restSettleSeconds} s ` +
      `of quiet (RSS: the median of the window's second half); restore: \`restore --sessions-dir\` of every session into an empty directory. Targets: ready ≤ 5 s, ` +
      `CPU ≤ 1 % of a core, RSS ≤ 150 MiB, SIGTERM to exit ≤ 5 s, restore ≤ 10 s.`,
    '',
    '| build | first start to ready | restart to ready | CPU at rest | RSS at rest (median, peak) | SIGTERM to exit | restore --sessions-dir |',
    '|---|---|---|---|---|---|---|',
  );
  for (const f of r.rest)
    md.push(
      `| ${f.build} | ${s(f.firstReadyMs)} | ${s(f.restartReadyMs)} | ${f.cpuPercent.toFixed(2)} % | ` +
        `${mib(f.rssBytes)}, ${mib(f.rssPeakBytes)} | ${s(f.stopMs)}${f.exitCode === 0 ? '' : ` (exit ${f.exitCode})`} | ${s(f.restoreAllMs)} |`,
    );
  md.push('');
  md.push(
    `**One keeper, ${r.many.sessions} sessions** of ${r.generate.filesPerSession} files each (written by Baileys: ` +
      `${s(r.generate.ms)} for all of them), ${r.many.churning} of them (${(r.plan.churningFraction * 100).toFixed(0)} %) ` +
      `written at any moment at ${r.plan.writesPerSecond} writes/s each (writers move to another session every ` +
      `${r.plan.rotateSeconds} s), for ${r.many.seconds.toFixed(0)} s; beside it, one session churned the same way:`,
    '',
    '| keeper of | writes | unsaved | RPO p50 | p99 | max | RSS peak | RSS steady | CPU (% of a core) | PostgreSQL CPU | connections |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const [label, w] of [
    ['1 session', r.one],
    [`${r.many.sessions} sessions`, r.many],
    [`${r.many.sessions} sessions, \`node ${IMAGE_NODE_FLAGS}\` as the images run it`, r.manyImage],
  ] as const) {
    md.push(
      `| ${label} | ${w.writes} | ${w.unsaved} | ${w.rpoP50.toFixed(2)} s | ${w.rpoP99.toFixed(2)} s | ${w.rpoMax.toFixed(2)} s | ` +
        `${mib(w.rssPeakBytes)} | ${mib(w.rssSteadyBytes)} | ${w.cpuPercent.toFixed(1)} % | ` +
        `${w.postgresCpuPercent === null ? 'n/a' : `${w.postgresCpuPercent.toFixed(1)} %`} | ${w.connectionsMax} |`,
    );
  }
  const failedStops = r.keeperExitCodes.filter((code) => code !== 0).length;
  const lagging = [r.one, r.many, r.manyImage, ...r.fleet].reduce((sum, w) => sum + w.lagging, 0);
  if (failedStops > 0 || lagging > 0)
    md.push(
      '',
      `**Problems seen in this run**: ${lagging} sessions still reported a backup lag above 0 ${CATCH_UP_MS / 1000} s after their ` +
        `churn ended (a write not in the store by then counts in "unsaved"); ${failedStops} of ${r.keeperExitCodes.length} keepers ` +
        'exited non-zero on SIGTERM.',
    );
  const u = r.startup;
  md.push(
    '',
    `**Start-up of ${u.sessions} sessions**: from starting the keeper until /readyz is 200 (every session compared ` +
      `with its stored head): ${s(u.coldReadyMs)} with nothing stored (a first backup of every session), ` +
      `${s(u.warmReadyMs)} on a restart (everything stored). A new pod's \`restore --sessions-dir\` into an empty ` +
      `directory: ${s(u.restoreAllMs)}; one \`restore --session X --dir …\` process per session: ` +
      `${s(u.restoreOneByOne.ms)} for ${u.restoreOneByOne.sample} sessions, ` +
      `${s(u.restoreOneByOne.extrapolatedMs)} for ${u.sessions} (extrapolated).`,
  );
  md.push(
    '',
    `**Keepers × sessions through PgBouncer** (transaction mode, ${r.plan.poolSize} server connections), ` +
      `${(r.plan.churningFraction * 100).toFixed(0)} % of each keeper's sessions churning, ${r.plan.fleetSeconds} s per step:`,
    '',
    '| keepers × sessions | start to ready | writes/s | generations/s | RPO p50 | p99 | keepers CPU | PostgreSQL CPU | server connections | keepers RSS (steady, sum) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const f of r.fleet) {
    md.push(
      `| ${f.keepers} × ${f.sessionsPerKeeper} = ${f.sessions} | ${s(f.readyMs)} | ${(f.writes / f.seconds).toFixed(0)} | ` +
        `${f.generationsPerSecond.toFixed(1)} | ${f.rpoP50.toFixed(2)} s | ${f.rpoP99.toFixed(2)} s | ${f.cpuPercent.toFixed(0)} % | ` +
        `${f.postgresCpuPercent === null ? 'n/a' : `${f.postgresCpuPercent.toFixed(0)} %`} | ${f.connectionsMax} | ${mib(f.rssSteadyBytes)} |`,
    );
  }
  const policies = [...new Set(r.history.map((h) => h.policy))];
  md.push(
    '',
    `**The files table under churn** (${r.plan.historySessions} sessions per keeper, every one written ` +
      `${r.plan.writesPerSecond} times a second for ${r.plan.historySeconds} s; thinning runs at most once a minute per session). ` +
      'Stored file versions (rows), generations, and the table size on disk (with TOAST and indexes; the space of deleted ' +
      'rows is reused after autovacuum, so the size lags the rows):',
    '',
    `| policy | ${r.history
      .filter((h) => h.policy === policies[0])
      .filter((_, i, all) => i % Math.max(1, Math.ceil(all.length / 6)) === 0 || i === all.length - 1)
      .map((h) => `${h.seconds.toFixed(0)} s`)
      .join(' | ')} |`,
  );
  const shown = (policy: string) =>
    r.history
      .filter((h) => h.policy === policy)
      .filter((_, i, all) => i % Math.max(1, Math.ceil(all.length / 6)) === 0 || i === all.length - 1);
  md.push(
    `|---|${shown(policies[0]!)
      .map(() => '---|')
      .join('')}`,
  );
  for (const policy of policies)
    md.push(
      `| ${policy} | ${shown(policy)
        .map((h) => `${h.fileRows} versions, ${h.generations} gen., ${mib(h.tableBytes)}`)
        .join(' | ')} |`,
    );
  md.push('');
  return md.join('\n');
}

/** The charts of the part, by file name. */
export function manySessionsCharts(r: ManySessionsResults): Record<string, string> {
  return {
    'many-sessions-rpo.svg': cdfChart(
      'Many sessions: time from a write to the commit holding it',
      Object.entries(r.rpoQuantiles).map(([name, samples]) => ({ name, samples })),
      'seconds',
    ),
    'many-sessions-fleet.svg': lineChart(
      'Keepers through PgBouncer: CPU by sessions kept',
      [
        { name: 'PostgreSQL CPU', points: r.fleet.map((f) => ({ x: f.sessions, y: f.postgresCpuPercent ?? 0 })) },
        { name: 'keepers CPU', points: r.fleet.map((f) => ({ x: f.sessions, y: f.cpuPercent })) },
      ],
      'sessions kept (all keepers)',
      '% of one core',
    ),
    'many-sessions-files-table.svg': lineChart(
      'Stored file versions under constant churn',
      [...new Set(r.history.map((h) => h.policy))].map((policy) => ({
        name: policy,
        points: r.history.filter((h) => h.policy === policy).map((h) => ({ x: h.seconds / 60, y: h.fileRows })),
      })),
      'minutes',
      'rows of the files table',
    ),
  };
}
