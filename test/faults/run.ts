// `npm run test:faults`: randomized crash, kill and outage runs, each checked against the invariants
// in ./violations.ts. Prints its seed first and, for any failing run, the command that replays it.
//   --runs N        runs to do (default: each scenario's share, 11 of most and 3-4 of the slow chat ones;
//                   with --minutes, at most N)
//   --minutes M     soak: keep starting runs for M minutes
//   --seed S        the suite's seed (run 0 uses S itself, so `--seed S --runs 1` replays one run)
//   --scenario NAME only this scenario (repeatable)
//   --concurrency C runs at once (default 2)
//   --results FILE  where to write the results table (default test/faults/results.md)
//   --verbose       print every run's trace, not only failing ones
//   --readme        also put the results table into docs/reliability.md
//   --strict        fail when any scenario is skipped (CI: every fault must really be exercised)
//   --help          the usage line and the scenarios' names
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startEmbedded, type EmbeddedServer } from '../../src/embedded-postgres.js';
import { REPO } from '../../harness/paths.js';
import { freshDatabase, PrivateServer } from './cluster.js';
import { RunContext, SESSION } from './context.js';
import { checkNeverGreen, checkRestore, checkStore, prepareDatabase, waitConverged } from './invariants.js';
import { Random, runSeed } from './random.js';
import { neverLanded, renderResults, updateReliabilityResults, type RunOutcome } from './report.js';
import { DEFAULT_RUNS, SCENARIOS, SkipRun, type Scenario } from './scenarios.js';
import { RunLog } from './violations.js';

/** How long the head may take to equal the directory after the bot stops (outage backoff included), ms. */
const SETTLE_TIMEOUT_MS = 30_000;
/** How long a keeper still running once the run settled may take to answer /readyz 200, ms. */
const READY_TIMEOUT_MS = 10_000;
/** A run that takes longer than this is stuck, ms. */
const RUN_TIMEOUT_MS = 180_000;

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    minutes: { type: 'string' },
    seed: { type: 'string' },
    scenario: { type: 'string', multiple: true },
    concurrency: { type: 'string', default: '2' },
    results: { type: 'string' },
    readme: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
const minutes = values.minutes === undefined ? null : Number(values.minutes);
const runsGiven = values.runs !== undefined ? Number(values.runs) : null;
const seed = values.seed !== undefined ? Number(values.seed) : randomBytes(4).readUInt32LE();
const concurrency = Number(values.concurrency);
const chosen = values.scenario ?? [];
const unknown = chosen.filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
if (
  values.help ||
  (runsGiven !== null && !(runsGiven >= 1)) ||
  (minutes !== null && !(minutes > 0)) ||
  !Number.isInteger(seed) ||
  seed < 0 ||
  seed > 0xffffffff ||
  !(concurrency >= 1) ||
  unknown.length > 0
) {
  process.stderr.write(
    `usage: run.js [--runs N] [--minutes M] [--seed 0..4294967295] [--scenario NAME]... ` +
      `[--concurrency C] [--results FILE] [--readme] [--strict] [--verbose] [--help]\n` +
      (unknown.length > 0 ? `unknown scenario ${unknown.join(', ')}\n` : '') +
      `scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
  );
  process.exit(values.help ? 0 : 64);
}
const scenarios = chosen.length > 0 ? SCENARIOS.filter((scenario) => chosen.includes(scenario.name)) : SCENARIOS;
/**
 * The order runs take their scenarios in: round after round of every scenario, each in as many rounds
 * as its share of a default suite, so a suite of that length gives every scenario exactly its share.
 */
const rotation: Scenario[] = [];
for (let round = 0; round < Math.max(...scenarios.map((scenario) => scenario.runs ?? DEFAULT_RUNS)); round++) {
  for (const scenario of scenarios) if (round < (scenario.runs ?? DEFAULT_RUNS)) rotation.push(scenario);
}
const runs = runsGiven ?? (minutes !== null ? Infinity : rotation.length);
for (const scenario of scenarios) {
  const why = scenario.unavailable?.();
  if (why) console.log(`!!! scenario ${scenario.name} will be SKIPPED: ${why}`);
}

const scenarioArgs = chosen.map((name) => `--scenario ${name}`).join(' ');
console.log(`fault suite: seed ${seed}, ${Number.isFinite(runs) ? `${runs} runs` : `${minutes} minutes`}, ${concurrency} at a time`);
console.log(
  `replay the whole suite: npm run test:faults -- --seed ${seed} --runs ` +
    `${Number.isFinite(runs) ? runs : '<N>'}${scenarioArgs ? ` ${scenarioArgs}` : ''}`,
);

const log = pino({ level: process.env['TEST_LOG'] ?? 'warn' });
let shared: EmbeddedServer | null = null;
let sharedDir: string | null = null;
let adminUrl = process.env['DATABASE_URL'];
const external = adminUrl !== undefined;
if (!adminUrl) {
  sharedDir = await mkdtemp(path.join(os.tmpdir(), 'bk-faults-pg-'));
  await chmod(sharedDir, 0o755);
  shared = await startEmbedded(sharedDir, log);
  adminUrl = shared.url;
}
let privateServer: PrivateServer | null = null;
/** One run at a time may kill the private server. */
let privateQueue: Promise<unknown> = Promise.resolve();

async function executeRun(index: number, scenario: Scenario, seedOfRun: number): Promise<RunOutcome> {
  const run = new RunLog();
  const started = Date.now();
  const workDir = await mkdtemp(path.join(os.tmpdir(), `bk-faults-${scenario.name}-`));
  let outcome: RunOutcome['result'] = 'ok';
  let error: string | null = null;
  let database: { url: string; drop(): Promise<void> } | null = null;
  const ctxHolder: { ctx: RunContext | null } = { ctx: null };
  try {
    if (scenario.killsPostgres) privateServer ??= await PrivateServer.start('private');
    database = await freshDatabase(scenario.killsPostgres ? privateServer!.url : adminUrl!, scenario.name);
    await prepareDatabase(database.url);
    const ctx = new RunContext(
      new Random(seedOfRun),
      run,
      workDir,
      database.url,
      scenario.killsPostgres ? privateServer : null,
      path.join(workDir, 'auth_info'),
    );
    ctxHolder.ctx = ctx;
    await mkdir(ctx.dir, { recursive: true });
    const beforeStop = await withTimeout(scenario.run(ctx), RUN_TIMEOUT_MS, 'the scenario');
    if (ctx.liveKeepers.length > 0) {
      await waitConverged(database.url, SESSION, ctx.dir, run, SETTLE_TIMEOUT_MS);
      await checkNeverGreen(database.url, SESSION, ctx.dir, ctx.liveKeepers, run);
      await Promise.all(ctx.liveKeepers.map((keeper) => keeper.checkReady(READY_TIMEOUT_MS)));
      if (beforeStop) await beforeStop();
      await Promise.all(ctx.liveKeepers.map((keeper) => keeper.stop()));
    }
    await checkRestore(database.url, SESSION, workDir, run);
    await checkStore(database.url, SESSION, ctx.keepers, run);
    for (const keeper of ctx.keepers) keeper.checkLog();
  } catch (caught) {
    if (caught instanceof SkipRun) {
      outcome = 'skipped';
      error = caught.message;
    } else {
      outcome = 'error';
      error = (caught as Error).stack ?? String(caught);
      run.note(`run error: ${error}`);
    }
  } finally {
    await ctxHolder.ctx?.cleanup();
  }
  if (run.failed && outcome === 'ok') outcome = 'failed';
  const keep = outcome === 'failed' || outcome === 'error';
  if (!keep) await rm(workDir, { recursive: true, force: true });
  // A failing run's database outlives the suite only on a server of its own (DATABASE_URL).
  const keepDatabase = keep && external && !scenario.killsPostgres;
  if (!keepDatabase) await database?.drop().catch(() => undefined);
  const seconds = (Date.now() - started) / 1000;
  const label = `run ${index} ${scenario.name} seed ${seedOfRun}`;
  if (outcome === 'ok') {
    console.log(`ok    ${label} (${seconds.toFixed(1)} s)`);
    if (values.verbose) for (const line of run.trace) console.log(`      ${line}`);
  } else if (outcome === 'skipped') console.log(`SKIP  ${label}: ${error}`);
  else {
    console.log(`FAIL  ${label} (${seconds.toFixed(1)} s)`);
    for (const line of run.trace) console.log(`      ${line}`);
    console.log(
      `      kept for inspection: ${workDir} (every process's ` +
        `log)${keepDatabase && database ? ` and database ${new URL(database.url).pathname.slice(1)}` : ''}`,
    );
    console.log(`      reproduce: npm run test:faults -- --scenario ${scenario.name} --seed ${seedOfRun} --runs 1`);
  }
  return {
    scenario: scenario.name,
    seed: seedOfRun,
    result: outcome,
    violations: run.violations,
    staleRefused: run.counts.get('stale backups refused') ?? 0,
    counts: run.counts,
    seconds,
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)),
  );
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const outcomes: RunOutcome[] = [];
const suiteStarted = Date.now();
let next = 0;
const more = () => next < runs && (minutes === null || Date.now() - suiteStarted < minutes * 60_000);
async function worker(): Promise<void> {
  while (more()) {
    const index = next++;
    // Scenarios in turn (the rotation), starting where the seed says, so every scenario gets its share of runs.
    const scenario = rotation[(index + seed) % rotation.length]!;
    const seedOfRun = runSeed(seed, index);
    const execute = () => executeRun(index, scenario, seedOfRun);
    if (scenario.killsPostgres) {
      const turn = privateQueue.then(execute);
      privateQueue = turn.catch(() => undefined);
      outcomes.push(await turn);
    } else outcomes.push(await execute());
  }
}
try {
  await Promise.all(Array.from({ length: concurrency }, worker));
} finally {
  await (privateServer as PrivateServer | null)?.stop();
  await shared?.stop();
  if (sharedDir) await rm(sharedDir, { recursive: true, force: true });
}

const minutesTaken = (Date.now() - suiteStarted) / 60_000;
const table = renderResults(outcomes, { seed, minutes: minutesTaken, scenarios });
await writeFile(values.results ?? path.join(REPO, 'test', 'faults', 'results.md'), `${table}\n`);
if (values.readme) await updateReliabilityResults(REPO, renderResults(outcomes, { seed, minutes: minutesTaken, scenarios }, false));
console.log(`\n${table}`);
const bad = outcomes.filter((outcome) => outcome.result === 'failed' || outcome.result === 'error');
const skipped = outcomes.filter((outcome) => outcome.result === 'skipped');
const missed = neverLanded(outcomes, scenarios);
if (bad.length > 0) {
  console.log(`\n${bad.length} of ${outcomes.length} runs FAILED; replay each with the command printed above it.`);
  process.exitCode = 1;
} else if (missed.length > 0) {
  // Runs whose fault never reached the state the scenario is about prove nothing about that state.
  console.log(`\nthe fault never landed where it matters: ${missed.join('; ')}`);
  process.exitCode = 1;
} else if (values.strict && skipped.length > 0) {
  console.log(
    `\n${skipped.length} runs were SKIPPED ` +
      `(${[...new Set(skipped.map((outcome) => outcome.scenario))].join(', ')}), which --strict does not allow.`,
  );
  process.exitCode = 1;
} else console.log(`\nall ${outcomes.length} runs held every invariant (${minutesTaken.toFixed(1)} min)`);
