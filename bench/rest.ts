// A fleet at rest (many sessions, nobody writing), measured as users run it: the bundled CLI as a real
// process (plain `node`, as the npm package runs it) keeping `sessions` stored sessions. What an idle
// multi-tenant platform pays: restart until /readyz 200, CPU and RSS at rest, SIGTERM until exit, and
// `restore --sessions-dir` of them all into an empty directory. Run against a baseline build too, when
// one is given, so that before and after come from one run on one machine.
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { cliEnv, runCli } from '../harness/cli.js';
import { startService, waitFor, type Service } from '../harness/sidecar.js';

export interface RestPlan {
  /** How long CPU and RSS are sampled at rest, s (after `settleSeconds`). */
  restSeconds: number;
  /** Quiet time after readiness before sampling: start-up's garbage is collected by then. */
  settleSeconds: number;
}

export interface RestFigures {
  /** Which build: 'this build', or the baseline's label. */
  build: string;
  sessions: number;
  /** A first start with nothing stored, until /readyz 200, ms. */
  firstReadyMs: number;
  /** A restart with everything stored, until /readyz 200, ms. */
  restartReadyMs: number;
  /** CPU over the rest window, % of one core. */
  cpuPercent: number;
  /** RSS over the rest window: the median of its second half (after V8's memory reducer ran), and the highest sample. */
  rssBytes: number;
  rssPeakBytes: number;
  /** From SIGTERM until the process exited, ms; and its exit code. */
  stopMs: number;
  exitCode: number | null;
  /** `restore --sessions-dir` of every session into an empty directory, ms. */
  restoreAllMs: number;
}

const CLOCK_TICKS = 100; // Linux USER_HZ
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function cpuTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function untilReady(service: Service): Promise<void> {
  await waitFor(
    async () => ((await service.get('/readyz')).status === 200 ? true : null),
    30 * 60_000,
    () => service.output.slice(-20).join('\n'),
    service.exited,
  );
}

/**
 * Measures one build (`script`: the bundled CLI to run, undefined for this build) keeping the sessions
 * in `sessionsDir` under its own schema: a first start, a restart, the rest window, the stop, a restore.
 */
export async function measureRest(
  databaseUrl: string,
  sessionsDir: string,
  sessions: number,
  plan: RestPlan,
  build: { label: string; script?: string; schema: string },
  /** Where the restore writes (removed afterwards). */
  work: string,
  say: (line: string) => void,
): Promise<RestFigures> {
  const env = cliEnv(databaseUrl, { KEEPER_SCHEMA: build.schema });
  const options = build.script === undefined ? {} : { script: build.script };
  const args = ['sidecar', '--sessions-dir', sessionsDir, '--session-prefix', 'r-', '--retention', 'none'];
  const timed = async () => {
    const started = performance.now();
    const service = await startService(args, env, options);
    await untilReady(service);
    return { service, ms: performance.now() - started };
  };

  const first = await timed();
  await first.service.stop();
  const restart = await timed();
  const { service } = restart;
  const pid = service.child.pid!;
  await sleep(plan.settleSeconds * 1000);
  const start = { ticks: await cpuTicks(pid), t: performance.now() };
  const samples: number[] = [];
  while (performance.now() - start.t < plan.restSeconds * 1000) {
    await sleep(1000);
    samples.push(await rss(pid));
  }
  const elapsed = (performance.now() - start.t) / 1000;
  const cpuPercent = (((await cpuTicks(pid)) - start.ticks) / CLOCK_TICKS / elapsed) * 100;
  const stopStarted = performance.now();
  const end = await service.stop();
  const stopMs = performance.now() - stopStarted;

  const restored = path.join(work, `restored-${build.schema}`);
  const restoreStarted = performance.now();
  const result = await runCli(['restore', '--sessions-dir', restored, '--session-prefix', 'r-'], {
    env,
    timeoutMs: 30 * 60_000,
    ...options,
  });
  const restoreAllMs = performance.now() - restoreStarted;
  if (result.code !== 0) throw new Error(`restore --sessions-dir failed: ${result.stdout}${result.stderr}`);
  await rm(restored, { recursive: true, force: true });

  const sorted = samples.slice(Math.floor(samples.length / 2)).sort((a, b) => a - b);
  const figures: RestFigures = {
    build: build.label,
    sessions,
    firstReadyMs: first.ms,
    restartReadyMs: restart.ms,
    cpuPercent,
    rssBytes: sorted[Math.floor(sorted.length / 2)] ?? NaN,
    rssPeakBytes: Math.max(...samples),
    stopMs,
    exitCode: end.code,
    restoreAllMs,
  };
  say(`at rest (${build.label}): ${JSON.stringify(figures)}`);
  return figures;
}
