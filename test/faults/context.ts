// What a scenario works with: its run's randomness, database, directory and processes.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cliEnv } from '../../harness/cli.js';
import type { PrivateServer } from './cluster.js';
import { withWriterName } from './invariants.js';
import { Bot, Keeper } from './processes.js';
import type { Random } from './random.js';
import type { ThrowawayUser } from '../support/throwaway-user.js';
import type { RunLog } from './violations.js';

export const SESSION = 'faults';
/** Short timings so that a run takes seconds: backups within 0.4 s, leases that expire in 2 s. */
export const LEASE_TTL_MS = 2_000;
const KEEPER_TIMING = [
  '--debounce',
  '100',
  '--max-delay',
  '400',
  '--lease-ttl',
  String(LEASE_TTL_MS),
  '--shutdown-quiet',
  '200',
  '--shutdown-timeout',
  '5000',
];

/** A scenario that cannot do what it promises on this machine (no mount, no libfaketime). */
export class SkipRun extends Error {}

export class RunContext {
  /** Every keeper of the run, alive or not (their logs are checked at the end). */
  readonly keepers: Keeper[] = [];
  private bots = 0;
  private started = 0;
  private readonly cleanups: Array<() => Promise<unknown>> = [];

  constructor(
    readonly random: Random,
    readonly run: RunLog,
    /** Where the run's files live (removed afterwards). */
    readonly workDir: string,
    /** The run's database, directly (checks and restores use it). */
    readonly url: string,
    /** The private server, for scenarios that kill PostgreSQL. */
    readonly server: PrivateServer | null,
    /** The auth directory the bot writes and the keepers watch; a scenario may move it (a new pod). */
    public dir: string,
  ) {}

  /**
   * A `sidecar` on the run's session and directory, or with `bot`, `run -- <a churning bot on the
   * directory>`, or with `command`, `run -- command`; `url` overrides the database (a proxy); `args`
   * come after the suite's timings (and so override them).
   */
  async startKeeper(
    options: {
      url?: string;
      env?: Record<string, string>;
      bot?: boolean;
      command?: string[];
      args?: string[];
      /** Run it as this user instead of root (a keeper that may not read everything the bot writes). */
      as?: ThrowawayUser;
    } = {},
  ): Promise<Keeper> {
    const child = options.command ?? (options.bot ? Bot.command(this.dir, this.nextBotSeed()) : null);
    const command = child ? 'run' : 'sidecar';
    const name = `${command}#${++this.started}`;
    const args = [command, '--dir', this.dir, '--session', SESSION, '--keep', '1000000', ...KEEPER_TIMING, ...(options.args ?? [])];
    if (child) args.push('--', ...child);
    // Its connections carry its name, so the audit trigger knows which process committed what.
    const url = withWriterName(options.url ?? this.url, name);
    // At debug: every stored backup is logged (routine ones at debug), and invariant 6 checks each one.
    const env = cliEnv(url, { KEEPER_LOG_LEVEL: 'debug', ...options.env });
    const keeper = await Keeper.start(name, args, env, this.run, options.as ?? null);
    this.keepers.push(keeper);
    return keeper;
  }

  /** A churning bot on the run's directory, seeded from the run's seed. */
  async startBot(): Promise<Bot> {
    const bot = await Bot.start(this.dir, this.nextBotSeed(), this.run);
    this.onCleanup(() => bot.kill());
    return bot;
  }

  private nextBotSeed(): number {
    return (this.random.seed + ++this.bots) >>> 0;
  }

  /** Waits a random time in [minMs, maxMs], drawn from `random` (the run's main sequence unless given). */
  async pause(minMs: number, maxMs: number, random: Random = this.random): Promise<number> {
    const ms = random.int(minMs, maxMs);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  }

  async subdir(name: string): Promise<string> {
    const dir = path.join(this.workDir, name);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Registers what to undo when the run ends (proxies, mounts), last registered first. */
  onCleanup(fn: () => Promise<unknown>): void {
    this.cleanups.unshift(fn);
  }

  /** Kills what is still running, writes every keeper's log into the work dir, undoes the rest. */
  async cleanup(): Promise<void> {
    for (const keeper of this.liveKeepers) await keeper.kill('SIGKILL').catch(() => undefined);
    for (const keeper of this.keepers)
      await writeFile(path.join(this.workDir, `${keeper.name}.log`), keeper.output.join('\n')).catch(() => undefined);
    for (const fn of this.cleanups) await fn().catch(() => undefined);
  }

  /** The keepers still running. */
  get liveKeepers(): Keeper[] {
    return this.keepers.filter((keeper) => keeper.alive);
  }
}
