// The processes of a run: keepers (sidecars) watched for invariant 7 — every exit and every failed
// /healthz must be one the run caused on purpose — and churning bots on Baileys' signal repository.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { CHURN_BOT } from '../../harness/paths.js';
import { startService, waitFor, type Service } from '../../harness/sidecar.js';
import type { RunLog } from './violations.js';

/** How often /healthz is polled, and how long one answer may take on a busy machine, ms. */
const HEALTH_POLL_MS = 250;
const HEALTH_TIMEOUT_MS = 5_000;
/** A graceful stop must finish well within a pod's grace period, ms. */
export const STOP_TIMEOUT_MS = 30_000;
/** pino's level number for "fatal". */
const FATAL_LEVEL = 60;

export interface BackupLine {
  generation: number;
  token: number;
}

export class Keeper {
  /** Set before any signal the run sends on purpose: exits and failed probes after it are expected. */
  private deliberate = false;
  private paused = false;
  /** /readyz has answered 200 at least once. */
  private wasReady = false;
  private exitedAt: number | null = null;
  private readonly polling: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly service: Service,
    private readonly run: RunLog,
  ) {
    void service.exited.then(({ code, signal }) => {
      this.exitedAt = Date.now();
      if (!this.deliberate) run.violate(7, `${name} exited on its own (code ${code}, signal ${signal}): ${this.tail()}`);
      else run.note(`${name} exited (code ${code}, signal ${signal})`);
    });
    this.polling = this.pollHealth();
  }

  /** `as`: run it as another user (with the bundle and node that user can run), e.g. a ThrowawayUser. */
  static async start(
    name: string,
    args: string[],
    env: Record<string, string | undefined>,
    run: RunLog,
    as: { uid: number; script: string; node: string } | null = null,
  ): Promise<Keeper> {
    const service = await startService(args, env, as ?? {});
    run.note(`${name} started (pid ${service.child.pid})`);
    return new Keeper(name, service, run);
  }

  get pid(): number {
    return this.service.child.pid!;
  }

  /** The HTTP port it listens on (loopback). */
  get port(): number {
    return this.service.port;
  }

  get alive(): boolean {
    return this.exitedAt === null;
  }

  get output(): string[] {
    return this.service.output;
  }

  metric(name: string): Promise<number> {
    return this.service.metric(name);
  }

  /** Every "backup stored" this process logged, with the lease token it committed under. */
  backups(): BackupLine[] {
    const lines: BackupLine[] = [];
    for (const line of this.service.output) {
      if (!line.includes('"backup stored"')) continue;
      const entry = JSON.parse(line) as { generation?: number; token?: number };
      lines.push({ generation: Number(entry.generation), token: Number(entry.token) });
    }
    return lines;
  }

  /** Whether this process logged acquiring lease `token`. */
  acquired(): number[] {
    return this.service.output
      .filter((line) => line.includes('"lease acquired'))
      .map((line) => Number((JSON.parse(line) as { token?: number }).token));
  }

  /** A deliberate kill (SIGKILL by default); resolves once the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.deliberate = true;
    this.run.note(`${this.name}: ${signal} on purpose`);
    if (this.paused) this.service.child.kill('SIGCONT');
    await this.service.stop(signal);
  }

  /** How the process ended, once it has. */
  get exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.service.exited;
  }

  /** The process is about to exit because of something the run did on purpose (its bot was killed). */
  expectExit(why: string): void {
    this.deliberate = true;
    this.run.note(`${this.name}: ${why}`);
  }

  /** The process's direct children (`run`'s bot), from /proc. */
  async childPids(): Promise<number[]> {
    const text = await readFile(`/proc/${this.pid}/task/${this.pid}/children`, 'utf8').catch(() => '');
    return text.split(' ').filter(Boolean).map(Number);
  }

  /** SIGSTOP: a writer frozen (a long GC pause, a throttled container) while its lease runs out. */
  pause(): void {
    this.paused = true;
    this.run.note(`${this.name}: SIGSTOP on purpose`);
    this.service.child.kill('SIGSTOP');
  }

  resume(): void {
    this.service.child.kill('SIGCONT');
    this.run.note(`${this.name}: SIGCONT`);
    // Probes sent before the pause may still fail; the window ends with the first good answer.
  }

  /** SIGTERM and a clean exit 0 within STOP_TIMEOUT_MS, as a pod's graceful stop requires (invariant 7). */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.deliberate = true;
    this.run.note(`${this.name}: SIGTERM`);
    this.service.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.run.violate(7, `${this.name} did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM: ${this.tail()}`);
      this.service.child.kill('SIGKILL');
    }, STOP_TIMEOUT_MS);
    const { code, signal } = await this.service.exited;
    clearTimeout(timer);
    // A graceful stop is exit 0: dying from a signal after SIGTERM (the SIGTERM itself) is no clean stop.
    if (code !== 0) this.run.violate(7, `${this.name} exited ${code === null ? `from ${signal}` : code} after SIGTERM: ${this.tail()}`);
    await this.polling;
  }

  /**
   * /healthz and /readyz together: once the keeper has been ready, both must stay 200 (/readyz
   * reports 503 again only while shutting down, which is deliberate here). Before that, /healthz 503
   * is the keeper saying truthfully that a start-up step (a connection cut during its migration) is
   * being retried; a keeper that never gets ready is reported at the end (checkReady, checkLog).
   */
  private async pollHealth(): Promise<void> {
    while (this.alive && !this.deliberate) {
      const [health, ready] = await Promise.all([this.probe('/healthz'), this.probe('/readyz')]);
      if (health === null && (ready === null || !this.wasReady)) this.paused = false;
      if (ready === null) this.wasReady = true;
      const failure =
        health !== null && this.wasReady
          ? `/healthz failed after it had been ready: ${health}`
          : this.wasReady && ready !== null
            ? `/readyz failed after it had been ready: ${ready}`
            : null;
      if (failure !== null && this.alive && !this.deliberate && !this.paused) this.run.violate(7, `${this.name} ${failure}`);
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
    }
  }

  private probe(pathname: string): Promise<string | null> {
    return fetch(`http://127.0.0.1:${this.service.port}${pathname}`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) }).then(
      (response) => (response.status === 200 ? null : `status ${response.status}`),
      (error: Error) => error.message,
    );
  }

  /** A keeper still running when the run settles must be ready (or get ready within `timeoutMs`). */
  async checkReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let failure = await this.probe('/readyz');
    while (failure !== null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
      failure = await this.probe('/readyz');
    }
    if (failure !== null)
      this.run.violate(
        7,
        `${this.name} is running but not ready ${timeoutMs} ms after the run settled (/readyz: ${failure}): ${this.tail()}`,
      );
  }

  /**
   * The rest of invariant 7, from the keeper's own log: a start-up that failed (the process lives on
   * but never works) or an error the process calls fatal is a keeper that was down, whatever /healthz said.
   */
  checkLog(): void {
    for (const line of this.service.output) {
      let entry: { level?: number; msg?: string };
      try {
        entry = JSON.parse(line) as { level?: number; msg?: string };
      } catch {
        continue;
      }
      if (entry.msg?.includes('start failed') || (entry.level ?? 0) >= FATAL_LEVEL)
        this.run.violate(7, `${this.name} logged: ${line.slice(0, 400)}`);
    }
  }

  private tail(): string {
    return this.service.output.slice(-8).join('\n');
  }
}

/** A bot process (harness/churn-bot.ts) churning `dir` with Baileys' signal repository. */
export class Bot {
  private stopped = false;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private output = '';

  private constructor(
    readonly child: ChildProcess,
    private readonly run: RunLog,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.resume();
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** The command line of a bot process on `dir`. */
  static command(dir: string, seed: number, rate = 25): string[] {
    return [process.execPath, CHURN_BOT, dir, '--rate', String(rate), '--seed', String(seed)];
  }

  static async start(dir: string, seed: number, run: RunLog): Promise<Bot> {
    const [node, ...args] = Bot.command(dir, seed);
    const child = spawn(node!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const bot = new Bot(child, run);
    await waitFor(
      () => (bot.output.includes('ready') ? true : null),
      30_000,
      () => `the bot did not start: ${bot.output}`,
      bot.exited,
    );
    run.note(`bot started (pid ${child.pid})`);
    return bot;
  }

  /** SIGKILL: whatever Baileys was writing stays as it is on disk. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.stopped = true;
    this.run.note('bot: SIGKILL on purpose');
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: the bot finishes its step and saves its creds; fails the run if it crashed. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.child.kill('SIGTERM');
    const { code, signal } = await this.exited;
    if (code !== 0) throw new Error(`the bot failed (code ${code}, signal ${signal}): ${this.output.slice(-500)}`);
    this.run.note(`bot stopped: ${this.output.trim().split('\n').at(-1)}`);
  }
}
