// The fault scenarios. Each churns a real bot under one kind of fault at random instants and returns
// once its bot has stopped; the runner then checks the invariants against what is left running.
import { execFileSync } from 'node:child_process';
import { existsSync, watch, writeFileSync } from 'node:fs';
import { cp, mkdir, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { STAGING_PREFIX } from '../../src/restore.js';
import path from 'node:path';
import { Curve } from '@whiskeysockets/baileys';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, collect, messages, runCli, startCli } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { tcpProxy, type ChunkVerdict } from '../../harness/proxy.js';
import { query } from '../../harness/db.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';
import { LEASE_TTL_MS, SESSION, SkipRun, type RunContext } from './context.js';
import { CHAT_SCENARIOS } from './chat-scenarios.js';
import { PROTECTION_SCENARIOS } from './protection-scenarios.js';
import { checkStaleNeverHead, compareWithHead, waitConverged, withWriterName } from './invariants.js';
import type { Keeper } from './processes.js';
import type { Random } from './random.js';

export interface Scenario {
  name: string;
  /** What the fault is, for the report. */
  fault: string;
  /** Needs the private PostgreSQL server it may kill. */
  killsPostgres?: boolean;
  /** Why this scenario cannot run on this machine, or null. */
  unavailable?: () => string | null;
  /**
   * The count (RunLog.count label) that shows this scenario's fault hit the state it is about; the
   * suite fails if it stays 0 across all of the scenario's runs.
   */
  landed?: string;
  /** Its runs in a default suite (default DEFAULT_RUNS): the slow ones get fewer. */
  runs?: number;
  /** Runs the scenario; may return something to do right before the keepers are stopped. */
  run(ctx: RunContext): Promise<void | (() => Promise<void>)>;
}

/** A scenario's runs in a default suite, unless it says otherwise. */
export const DEFAULT_RUNS = 11;

export { SkipRun } from './context.js';

/** The count of faults that hit a backup transaction while it was open. */
export const LANDED_MID_TRANSACTION = 'landed mid-transaction';

/** Waits until the bot under `run` says it is ready. */
function botStarted(keeper: Keeper): Promise<true> {
  return waitFor(
    () => (keeper.output.includes('ready') ? true : null),
    30_000,
    () => 'the bot under run did not start',
    keeper.exited,
  );
}

/** The keeper holding the lease now (waits for one). */
async function writer(ctx: RunContext): Promise<Keeper> {
  return waitFor(
    async () => {
      for (const keeper of ctx.liveKeepers) {
        if ((await keeper.metric('baileys_keeper_lease_held').catch(() => 0)) === 1) return keeper;
      }
      return null;
    },
    20_000,
    () => 'no keeper took the lease',
  );
}

const killBot: Scenario = {
  name: 'kill-bot',
  fault: 'SIGKILL of the bot mid-write, then a new bot on the same directory',
  async run(ctx) {
    await ctx.startKeeper();
    let bot = await ctx.startBot();
    for (let i = ctx.random.int(1, 2); i > 0; i--) {
      await ctx.pause(100, 1500);
      await bot.kill();
      await ctx.pause(0, 500);
      bot = await ctx.startBot();
    }
    await ctx.pause(300, 1000);
    await bot.stop();
  },
};

const killSidecar: Scenario = {
  name: 'kill-sidecar',
  fault: 'SIGKILL of the sidecar during churn, then a new sidecar',
  async run(ctx) {
    let keeper = await ctx.startKeeper();
    const bot = await ctx.startBot();
    for (let i = ctx.random.int(1, 2); i > 0; i--) {
      await ctx.pause(100, 1500);
      await keeper.kill('SIGKILL');
      await ctx.pause(0, 800);
      keeper = await ctx.startKeeper();
    }
    await ctx.pause(300, 1000);
    await bot.stop();
  },
};

const killPostgres: Scenario = {
  name: 'kill-postgres',
  fault: 'SIGKILL of the PostgreSQL postmaster during churn, restarted on the same port',
  killsPostgres: true,
  async run(ctx) {
    const server = ctx.server!;
    await ctx.startKeeper();
    const bot = await ctx.startBot();
    await ctx.pause(200, 1500);
    server.kill();
    ctx.run.note('postgres: SIGKILL on purpose');
    const down = await ctx.pause(200, 2000);
    await server.restart();
    ctx.run.note(`postgres restarted after ${down} ms`);
    await ctx.pause(300, 1000);
    await bot.stop();
  },
};

/** Points in a backup transaction where a connection can be cut, by what the client is about to send. */
const CUT_POINTS: Array<{ label: string; matches: RegExp; verdict: ChunkVerdict }> = [
  { label: 'after BEGIN, at the session lock', matches: /FOR UPDATE/, verdict: 'cut-before' },
  { label: 'while inserting file versions', matches: /INSERT INTO \S+\.files/, verdict: 'cut-before' },
  { label: 'after inserting file versions', matches: /INSERT INTO \S+\.files/, verdict: 'cut-after' },
  { label: 'after inserting the generation', matches: /INSERT INTO \S+\.generations/, verdict: 'cut-after' },
  { label: 'before COMMIT reaches the server', matches: /COMMIT\0/, verdict: 'cut-before' },
  { label: 'after COMMIT, before its answer (ambiguous commit)', matches: /COMMIT\0/, verdict: 'cut-after' },
];

const dropConnection: Scenario = {
  name: 'drop-connection',
  fault: 'the database connection cut mid-transaction (TCP proxy), at a random statement of a backup',
  landed: LANDED_MID_TRANSACTION,
  async run(ctx) {
    // The cuts draw from their own stream: when each happens depends on timing.
    const cutRandom = ctx.random.stream('cuts');
    let armed = cutRandom.pick(CUT_POINTS);
    let skip = cutRandom.int(0, 3);
    let cuts = 0;
    const proxy = await tcpProxy(ctx.url, (chunk) => {
      if (cuts >= 3 || !armed.matches.test(chunk.toString('latin1'))) return 'pass';
      if (skip-- > 0) return 'pass';
      ctx.run.note(`connection cut ${armed.label}`);
      ctx.run.count(LANDED_MID_TRANSACTION);
      cuts++;
      const verdict = armed.verdict;
      armed = cutRandom.pick(CUT_POINTS);
      skip = cutRandom.int(0, 3);
      return verdict;
    });
    ctx.onCleanup(() => proxy.close());
    await ctx.startKeeper({ url: proxy.url });
    const bot = await ctx.startBot();
    await ctx.pause(1500, 3000);
    // The point of the run is a cut inside a backup transaction: churn on until one has happened.
    await waitFor(
      () => (cuts > 0 ? true : null),
      30_000,
      () => 'no backup reached the armed cut point within 30 s of churn',
    );
    await bot.stop();
  },
};

/** Restores started per restore-kill run before it stops trying to kill one mid-way. */
const RESTORE_KILL_ATTEMPTS = 15;
/** The longest kill delay after a stage appears; halved each time a kill comes after the restore finished. */
const RESTORE_KILL_MAX_DELAY_MS = 40;

interface KillOutcome {
  kind: 'landed' | 'too late' | 'finished first';
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Starts `restore` and SIGKILLs it a random 0-`maxDelayMs` ms after its stage directory appears in
 * `dir` (inotify). 'landed' when the process died from the kill and left a stage behind; 'too late'
 * when the kill came after the restore had finished; 'finished first' when it finished before its
 * stage was seen at all.
 */
async function killRestoreMidway(
  ctx: RunContext,
  random: Random,
  maxDelayMs: number,
  args: string[],
  dir: string,
  env: Record<string, string | undefined>,
): Promise<KillOutcome> {
  await mkdir(dir, { recursive: true });
  let stageSeen!: () => void;
  const staged = new Promise<'staged'>((resolve) => (stageSeen = () => resolve('staged')));
  // A stage an earlier killed restore left is recovered (and removed) first: its events are not this
  // restore's stage appearing.
  const leftBefore = new Set((await readdir(dir)).filter((name) => name.startsWith(STAGING_PREFIX)));
  const watcher = watch(dir, (_event, name) => {
    if (String(name).startsWith(STAGING_PREFIX) && !leftBefore.has(String(name))) stageSeen();
  });
  try {
    const child = startCli(args, { env });
    const done = collect(child);
    const first = await Promise.race([staged, done.then(() => 'exited' as const)]);
    let after = -1;
    if (first === 'staged') {
      after = await ctx.pause(0, maxDelayMs, random);
      child.kill('SIGKILL');
    }
    const ended = await done;
    const left = (await readdir(dir)).filter((name) => name.startsWith(STAGING_PREFIX));
    const kind = after < 0 ? 'finished first' : ended.signal === 'SIGKILL' && left.length > 0 ? 'landed' : 'too late';
    ctx.run.note(
      after < 0
        ? `restore finished (exit ${ended.code}) before its stage was seen; trying again`
        : `restore SIGKILLed ${after} ms after its stage appeared (${ended.signal ?? `exit ${ended.code}`}); ` +
            `${kind === 'landed' ? `left ${left.length} stage(s)` : 'it had finished'}`,
    );
    if (kind === 'landed') ctx.run.count('landed mid-restore');
    return { kind, code: ended.code, signal: ended.signal };
  } finally {
    watcher.close();
  }
}

const restoreKill: Scenario = {
  name: 'restore-kill',
  fault: 'a new pod whose restore is SIGKILLed while it stages files (empty dir, or --force over an older one)',
  landed: 'landed mid-restore',
  async run(ctx) {
    const first = await ctx.startKeeper();
    let bot = await ctx.startBot();
    await ctx.pause(800, 2000);
    await bot.stop();
    await waitConverged(ctx.url, SESSION, ctx.dir, ctx.run, 20_000);
    await first.stop();

    // The next pod: its own directory, restored from the store while being killed.
    const dir = path.join(await ctx.subdir('pod2'), 'auth_info');
    const env = cliEnv(ctx.url);
    const overOlder = ctx.random.chance(0.5);
    const force = overOlder ? ['--force'] : [];
    // The pod's directory as the scenario starts it: empty, or an older generation to restore over.
    const freshPod = async () => {
      await rm(dir, { recursive: true, force: true });
      if (!overOlder) return;
      const older = await runCli(['restore', '--dir', dir, '--session', SESSION, '--generation', '1'], { env });
      if (older.code !== 0) throw new Error(`restore of generation 1 failed: ${older.stderr}`);
    };
    await freshPod();
    // Each kill must land mid-restore (it leaves a stage behind, which the next restore meets). A
    // restore that finished is a pod that came up: the next attempt is a new pod on a fresh directory
    // (without that, an unforced restore would find a valid login and skip), and a kill that came too
    // late shortens the next delay, so a fast restore on a fast machine is still caught mid-way.
    const kills = ctx.random.int(1, 3);
    // How many attempts it takes depends on timing: the kill delays have their own stream.
    const killRandom = ctx.random.stream('restore kills');
    let maxDelayMs = RESTORE_KILL_MAX_DELAY_MS;
    for (let attempt = 1, landed = 0; landed < kills && attempt <= RESTORE_KILL_ATTEMPTS; attempt++) {
      ctx.run.count('restore kill attempts');
      const outcome = await killRestoreMidway(
        ctx,
        killRandom,
        maxDelayMs,
        ['restore', '--dir', dir, '--session', SESSION, ...force],
        dir,
        env,
      );
      if (outcome.kind === 'landed') {
        landed++;
        continue;
      }
      // A restore that finished is a pod that came up (often on a stage an earlier kill left behind):
      // it must have succeeded and written exactly the head before the next attempt starts afresh.
      if (outcome.code !== 0 && outcome.signal !== 'SIGKILL')
        ctx.run.violate(5, `a restore after ${landed} killed one(s) exited ${outcome.code ?? outcome.signal}`);
      await compareWithHead(ctx.url, SESSION, dir, ctx.run, `the restore of attempt ${attempt}, after ${landed} killed one(s)`);
      await freshPod();
      if (outcome.kind === 'too late') maxDelayMs = Math.floor(maxDelayMs / 2);
    }
    const last = await runCli(['restore', '--dir', dir, '--session', SESSION, ...force], { env });
    if (last.code !== 0)
      ctx.run.violate(5, `the restore after the killed ones exited ${last.code}: ${messages(last.stdout + last.stderr).slice(-400)}`);
    await compareWithHead(ctx.url, SESSION, dir, ctx.run, 'the restore after killed restores');

    // The new pod runs: its bot works on the restored keys (a resurrected one would be stored again).
    ctx.dir = dir;
    await ctx.startKeeper();
    bot = await ctx.startBot();
    await ctx.pause(500, 1500);
    await bot.stop();
  },
};

/** A sidecar behind a proxy of its own, which can freeze it (SIGSTOP) as its next backup transaction begins. */
interface FreezableKeeper {
  keeper: Keeper;
  /** Resolves with the freeze (SIGSTOP just after BEGIN reached the server), or null if no backup began within `withinMs`. */
  freezeAtNextBegin(withinMs: number): Promise<{ resume(): void } | null>;
}

async function startFreezableKeeper(ctx: RunContext): Promise<FreezableKeeper> {
  let arm: ((frozen: boolean) => void) | null = null;
  let self: Keeper | null = null;
  const stale = staleTransactionWatch(ctx);
  const proxy = await tcpProxy(ctx.url, (chunk) => {
    stale.see(chunk);
    if (arm && self && chunk.toString('latin1').includes('BEGIN\0')) {
      // BEGIN is forwarded, so the server holds the transaction open while the process is stopped
      // before its lease check: a stale writer in the making.
      self.pause();
      arm(true);
      arm = null;
    }
    return 'pass';
  });
  ctx.onCleanup(() => proxy.close());
  const keeper = await ctx.startKeeper({ url: proxy.url });
  self = keeper;
  return {
    keeper,
    async freezeAtNextBegin(withinMs) {
      const landed = await new Promise<boolean>((resolve) => {
        arm = resolve;
        setTimeout(() => {
          if (arm === resolve) {
            arm = null;
            resolve(false);
          }
        }, withinMs);
      });
      return landed
        ? {
            resume: () => {
              stale.watch();
              keeper.resume();
            },
          }
        : null;
    },
  };
}

/**
 * After a writer frozen mid-transaction is thawed, how its transaction ends, as its connection says
 * it (so it is counted even when the process logs nothing): ROLLBACK is the lease check refusing a
 * stale writer; COMMIT is a stale writer's commit, which invariant 6 must then report.
 */
function staleTransactionWatch(ctx: RunContext): { watch(): void; see(chunk: Buffer): void } {
  let watching = false;
  return {
    watch: () => (watching = true),
    see(chunk) {
      if (!watching) return;
      const text = chunk.toString('latin1');
      if (text.includes('ROLLBACK\0')) ctx.run.count('stale backups refused');
      else if (text.includes('COMMIT\0')) {
        ctx.run.count('stale backups committed');
        ctx.run.note('the thawed stale writer sent COMMIT');
      } else return;
      watching = false;
    },
  };
}

/** Attempts at freezing the writer mid-transaction before a lease-race run gives up on it (each waits up to 2 s for a backup). */
const FREEZE_ATTEMPTS = 10;

const leaseRace: Scenario = {
  name: 'lease-race',
  fault:
    'two or three sidecars racing for the lease; the writer stopped, SIGKILLed, or SIGSTOPped ' +
    'with its backup transaction open until another takes the lease (then SIGCONT: a stale writer)',
  landed: 'stale backups refused',
  async run(ctx) {
    const freezable = new Map<Keeper, FreezableKeeper>();
    const start = async () => {
      const started = await startFreezableKeeper(ctx);
      freezable.set(started.keeper, started);
    };
    await Promise.all([start(), start()]);
    const bot = await ctx.startBot();
    // Every run has at least one stale writer; the other rounds stop or kill the writer.
    const rounds = ctx.random.int(1, 3);
    const staleRound = ctx.random.int(1, rounds);
    for (let round = 1; round <= rounds; round++) {
      await ctx.pause(300, 1500);
      if (round === staleRound) {
        if (ctx.liveKeepers.length < 2) await start();
        await freezeWriterMidBackup(ctx, freezable);
        continue;
      }
      const holder = await writer(ctx);
      if (ctx.random.chance(0.5)) await holder.kill('SIGKILL');
      else await holder.stop();
      const replace = ctx.random.chance(0.6); // drawn either way, so the plan does not depend on who is alive
      if (ctx.liveKeepers.length === 0 || replace) await start();
    }
    await ctx.pause(300, 1000);
    await bot.stop();
  },
};

/**
 * SIGSTOPs the writer between its BEGIN and its lease check, keeps it stopped until another sidecar
 * holds the lease, then SIGCONTs it: its backup must be refused. Retries (counted) until a backup
 * transaction is caught open.
 */
async function freezeWriterMidBackup(ctx: RunContext, freezable: Map<Keeper, FreezableKeeper>): Promise<void> {
  for (let attempt = 1; attempt <= FREEZE_ATTEMPTS; attempt++) {
    const holder = await writer(ctx);
    const freeze = await freezable.get(holder)!.freezeAtNextBegin(2_000);
    if (!freeze) continue;
    ctx.run.count('freeze attempts', attempt);
    ctx.run.count(LANDED_MID_TRANSACTION);
    const takenBy = await waitFor(
      async () => {
        for (const keeper of ctx.liveKeepers) {
          if (keeper !== holder && (await keeper.metric('baileys_keeper_lease_held').catch(() => 0)) === 1) return keeper;
        }
        return null;
      },
      20_000,
      () => 'no other sidecar took the lease from the frozen writer',
    );
    await ctx.pause(0, 500);
    ctx.run.note(`${takenBy.name} holds the lease; thawing ${holder.name} mid-transaction`);
    freeze.resume();
    return;
  }
  ctx.run.count('freeze attempts', FREEZE_ATTEMPTS);
  ctx.run.note(`no backup transaction of the writer began in ${FREEZE_ATTEMPTS} attempts`);
}

const runMode: Scenario = {
  name: 'run-mode',
  fault: '`run -- bot` (single container): the bot SIGKILLed, or the container stopped; then a new container on an empty directory',
  async run(ctx) {
    for (let container = 1; container <= 2; container++) {
      // The second container starts on an empty directory: `run` restores it before starting the bot.
      if (container === 2) ctx.dir = path.join(await ctx.subdir('container2'), 'auth_info');
      const keeper = await ctx.startKeeper({ bot: true });
      await botStarted(keeper);
      await ctx.pause(300, 2000);
      if (ctx.random.chance(0.5)) {
        const [bot] = await keeper.childPids();
        if (bot === undefined) throw new Error('run has no bot process');
        keeper.expectExit('its bot SIGKILLed on purpose');
        process.kill(bot, 'SIGKILL');
        const { code } = await keeper.exited;
        if (code !== 137) ctx.run.violate(7, `run exited ${code} after its bot was SIGKILLed (expected 137, 128+9)`);
      } else await keeper.stop();
      // run's final backup happens before it exits: the head must already equal the directory.
      await waitConverged(ctx.url, SESSION, ctx.dir, ctx.run, 2_000);
    }
  },
};

const rollingUpdate: Scenario = {
  name: 'rolling-update',
  fault:
    "a rolling update: the new pod's restore starts while the old pod churns (and " +
    'waits for its lease), then the old pod is SIGTERMed or SIGKILLed at a random instant',
  landed: 'restores that waited for the old pod',
  async run(ctx) {
    await ctx.startKeeper();
    const oldBot = await ctx.startBot();
    const oldPod = await writer(ctx);
    await ctx.pause(200, 1200);

    // The new pod's init container: the old pod's sidecar holds the lease, so restore must wait for it.
    const oldDir = ctx.dir;
    const newDir = path.join(await ctx.subdir('pod2'), 'auth_info');
    const child = startCli(['restore', '--dir', newDir, '--session', SESSION], { env: cliEnv(ctx.url) });
    let said = '';
    child.stdout!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const restored = collect(child, { timeoutMs: 120_000 });
    const waiting = await waitFor(
      () => (said.includes('waiting for its final backup') ? true : said.includes('"msg"') && child.exitCode !== null ? false : null),
      20_000,
      () => `the new pod's restore neither waited nor finished: ${said}`,
    );
    if (waiting) ctx.run.count('restores that waited for the old pod');
    else ctx.run.note("the new pod's restore did not wait for the old pod");

    // The old pod goes at a random instant: gracefully (bot first, then the sidecar's final backup), or killed.
    await ctx.pause(0, 2000);
    const graceful = ctx.random.chance(0.5);
    if (graceful) {
      ctx.run.note('old pod: SIGTERM (bot, then sidecar)');
      await oldBot.stop();
      await oldPod.stop();
    } else {
      ctx.run.note('old pod: SIGKILL (bot and sidecar)');
      await oldBot.kill();
      await oldPod.kill('SIGKILL');
    }
    const result = await restored;
    if (result.code !== 0)
      return ctx.run.violate(5, `the new pod's restore exited ${result.code}: ${messages(result.stdout + result.stderr).slice(-400)}`);
    await compareWithHead(ctx.url, SESSION, newDir, ctx.run, "the new pod's restore");
    if (graceful) {
      // A graceful hand-over loses nothing: the new pod starts with exactly the old pod's last directory.
      const [before, after] = [await readTree(oldDir), await readTree(newDir)];
      const back = [...after.keys()].filter((name) => !before.has(name));
      if (back.length > 0) ctx.run.violate(3, `the new pod got files the old pod had deleted: ${back.slice(0, 6).join(', ')}`);
      const differs = diffTrees(before, after);
      if (differs.length > 0)
        ctx.run.violate(
          4,
          `the new pod's directory differs from the old pod's last one after a graceful hand-over: ${differs.slice(0, 6).join('; ')}`,
        );
    }

    // The new pod runs on what it restored; a resurrected key would be stored again.
    ctx.dir = newDir;
    await ctx.startKeeper();
    const bot = await ctx.startBot();
    await ctx.pause(500, 1500);
    await bot.stop();
  },
};

const FAKETIME_LIBRARY = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
];

function faketimeLibrary(): string | null {
  return FAKETIME_LIBRARY.find((file) => existsSync(file)) ?? null;
}

/** A wall-clock offset of 1 to 10 minutes either way, in libfaketime's notation. */
function skew(random: Random, direction: 1 | -1 = random.pick([1, -1] as const)): string {
  return `${direction > 0 ? '+' : '-'}${random.int(60, 600)}s`;
}

const clockSkew: Scenario = {
  name: 'clock-skew',
  fault: "the writer's wall clock stepped by ±1-10 min (libfaketime), frozen past its lease, and failing a commit as its clock steps back",
  unavailable: () => (faketimeLibrary() ? null : 'libfaketime is not installed (Debian package faketime)'),
  async run(ctx) {
    const library = faketimeLibrary();
    if (!library) throw new SkipRun('libfaketime is not installed (apt-get install faketime)');
    const clockFile = path.join(ctx.workDir, 'faketime');
    const step = (offset: string) => {
      writeFileSync(clockFile, `${offset}\n`);
      ctx.run.note(`skewed sidecar's clock now ${offset}`);
    };
    step(skew(ctx.random));
    // Only the wall clock steps (as NTP does); the monotonic clock behind timers keeps running.
    const env = { LD_PRELOAD: library, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    let failNextCommit = false;
    /** Set to freeze the skewed sidecar as its next backup transaction begins; resolves when it is thawed. */
    let freezeAtBegin: (() => void) | null = null;
    let skewed: Keeper | null = null;
    const stale = staleTransactionWatch(ctx);
    // What happens inside the proxy happens when the skewed sidecar's traffic says: its own stream.
    const proxyRandom = ctx.random.stream('clock-skew proxy');
    const proxy = await tcpProxy(ctx.url, (chunk) => {
      stale.see(chunk);
      const text = chunk.toString('latin1');
      if (freezeAtBegin && skewed && text.includes('BEGIN\0')) {
        // Frozen between BEGIN and the lease check: the other sidecar takes the lease meanwhile, and on
        // waking this one carries on with its backup. Only the fencing token can stop that commit.
        const [frozen, thawed] = [skewed, freezeAtBegin];
        freezeAtBegin = null;
        frozen.pause();
        setTimeout(
          () => {
            step(skew(proxyRandom, -1));
            stale.watch();
            frozen.resume();
            thawed();
          },
          proxyRandom.int(LEASE_TTL_MS + 500, LEASE_TTL_MS + 1500),
        );
        return 'pass';
      }
      if (!failNextCommit || !text.includes('COMMIT\0')) return 'pass';
      failNextCommit = false;
      step(skew(proxyRandom, -1));
      ctx.run.note('connection of the skewed sidecar cut before a COMMIT');
      return 'cut-before';
    });
    ctx.onCleanup(() => proxy.close());
    skewed = await ctx.startKeeper({ url: proxy.url, env });
    await writer(ctx);
    await ctx.startKeeper();
    const bot = await ctx.startBot();
    for (let i = ctx.random.int(2, 4); i > 0; i--) {
      await ctx.pause(200, 1000);
      const event = ctx.random.pick(['step', 'freeze-writer', 'freeze-mid-backup', 'fail-then-step-back'] as const);
      if (event === 'step') step(skew(ctx.random));
      else if (event === 'fail-then-step-back') failNextCommit = true;
      else if (event === 'freeze-mid-backup') {
        // Lands only while the skewed sidecar is the writer and begins a backup; tried a few times.
        for (let attempt = 1; attempt <= 3; attempt++) {
          let thaw!: () => void;
          const thawed = new Promise<void>((resolve) => (thaw = resolve));
          freezeAtBegin = thaw;
          await new Promise((resolve) => setTimeout(resolve, 1500));
          if (freezeAtBegin === thaw) {
            freezeAtBegin = null;
            continue;
          }
          ctx.run.count(LANDED_MID_TRANSACTION);
          await thawed;
          break;
        }
      } else {
        // A writer frozen past its lease (a GC pause, a throttled container): the other takes over;
        // on waking it must notice, by its own monotonic clock, that its lease ran out.
        const frozen = await writer(ctx);
        frozen.pause();
        await ctx.pause(LEASE_TTL_MS + 300, LEASE_TTL_MS + 1500);
        if (frozen === skewed) step(skew(ctx.random, -1));
        frozen.resume();
      }
    }
    await ctx.pause(300, 800);
    await bot.stop();
    // Sometimes the clock steps back just as the pod is stopped, during the shutdown's quiet wait.
    if (ctx.random.chance(0.5)) return async () => step(skew(ctx.random, -1));
  },
};

const warned = new Set<string>();
function warnOnce(message: string): void {
  if (!warned.has(message)) console.log(`!!! ${message}`);
  warned.add(message);
}

/** Mounts a tiny tmpfs at `dir` (root only); returns how to unmount it, or null when mounting is refused. */
function mountTmpfs(dir: string, size: string): (() => void) | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
    return () => execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
}

const restoreTarget: Scenario = {
  name: 'restore-target',
  fault:
    'restore --force onto a read-only or full filesystem (a real tmpfs, remounted ' +
    'read-only or filled up; where mount is refused, an immutable directory)',
  async run(ctx) {
    // A stored session with two generations: the target holds the first, the restore brings the second.
    const bot = await ctx.subdir('bot');
    const auth = await writeSession(bot, { preKeys: ctx.random.int(5, 30) });
    const env = cliEnv(ctx.url);
    const backup = async () => {
      const result = await runCli(['backup', '--dir', bot, '--session', SESSION], {
        env: cliEnv(withWriterName(ctx.url, 'backup-command')),
      });
      if (result.code !== 0) throw new Error(`backup failed: ${result.stderr}`);
    };
    await backup();
    const added: Record<string, unknown> = {};
    const adding = ctx.random.int(20, 60);
    for (let i = 0; i < adding; i++) added[String(1000 + i)] = Curve.generateKeyPair();
    await auth.state.keys.set({ 'pre-key': { ...added, '1': null, '2': null } as never });
    await backup();

    const target = await ctx.subdir('target');
    const unmount = mountTmpfs(target, '1m');
    let undo = unmount ?? (() => undefined);
    try {
      const first = await runCli(['restore', '--dir', target, '--session', SESSION, '--generation', '1'], { env });
      if (first.code !== 0) throw new Error(`restore of generation 1 failed: ${first.stderr}`);
      const before = await readTree(target);
      const mode = unmount ? ctx.random.pick(['read-only', 'full'] as const) : 'immutable';
      if (mode === 'read-only') execFileSync('mount', ['-o', 'remount,ro', target]);
      else if (mode === 'full') {
        const free = await statfs(target);
        await writeFile(path.join(target, '.filler'), Buffer.alloc(Math.max(0, free.bavail * free.bsize - ctx.random.int(0, 3) * 4096)));
      } else {
        // No mount here: an injected write failure instead, an immutable directory (EPERM even for root).
        warnOnce('mount is refused here: restore-target injects a write failure (chattr +i) instead of a read-only or full filesystem');
        try {
          execFileSync('chattr', ['+i', target], { stdio: 'ignore' });
        } catch {
          throw new SkipRun('neither mount nor chattr +i is permitted here: no write failure can be made');
        }
        undo = () => execFileSync('chattr', ['-i', target], { stdio: 'ignore' });
      }
      ctx.run.note(`target is ${mode}`);
      const result = await runCli(['restore', '--dir', target, '--session', SESSION, '--force'], { env });
      const said = messages(result.stdout + result.stderr);
      const expected = mode === 'read-only' ? /read-only/i : mode === 'full' ? /full|no space/i : /permission denied/i;
      if (result.code !== 1) ctx.run.violate(8, `restore onto a ${mode} target exited ${result.code} (expected 1): ${said.slice(-300)}`);
      if (!expected.test(said)) ctx.run.violate(8, `restore onto a ${mode} target did not say so: ${said.slice(-300)}`);
      const after = await readTree(target);
      const changed = [...new Set([...before.keys(), ...after.keys()])].filter((name) => before.get(name) !== after.get(name));
      if (changed.length > 0) ctx.run.violate(8, `the previous files changed: ${changed.slice(0, 6).join(', ')}`);
      const leftovers = (await readdir(target)).filter((name) => name.startsWith('.baileys-keeper-restore-'));
      if (mode === 'full' && leftovers.length > 0) ctx.run.violate(8, `the failed restore left its stage behind: ${leftovers.join(', ')}`);
    } finally {
      undo();
    }
    ctx.dir = bot;
  },
};

/** The stored head generation of the run's session. */
async function headGeneration(url: string): Promise<number> {
  const [row] = await query<{ g: string }>(url, 'SELECT head_generation AS g FROM baileys_keeper.sessions WHERE session_id = $1', [
    SESSION,
  ]);
  return Number(row?.g ?? 0);
}

const staleDisk: Scenario = {
  name: 'stale-disk',
  fault:
    'a persistent disk that missed generations comes back (a VM snapshot rolled back, a volume restored from an old ' +
    "backup) under a new pod's `restore`, a sidecar started on it, or `run -- bot` on it",
  landed: 'stale disks refused or replaced',
  async run(ctx) {
    const env = cliEnv(ctx.url);
    const first = await ctx.startKeeper();
    let bot = await ctx.startBot();
    await ctx.pause(300, 1500);
    await bot.stop();
    await waitConverged(ctx.url, SESSION, ctx.dir, ctx.run, 20_000);
    // The disk's snapshot: what it will hold when it comes back.
    const snapshot = path.join(await ctx.subdir('snapshot'), 'auth_info');
    await cp(ctx.dir, snapshot, { recursive: true });
    const stale = await readTree(snapshot);
    const staleGeneration = await headGeneration(ctx.url);
    // The pod lives on: new contacts take one-time pre-keys, sessions move on, pre-keys are uploaded.
    bot = await ctx.startBot();
    await ctx.pause(800, 2500);
    await bot.stop();
    await waitConverged(ctx.url, SESSION, ctx.dir, ctx.run, 20_000);
    await first.stop();
    const head = await headGeneration(ctx.url);
    if (diffTrees(await storedHead(ctx.url, SESSION), stale).length === 0) throw new SkipRun('the bot changed nothing after the snapshot');

    const dir = path.join(await ctx.subdir('pod2'), 'auth_info');
    await cp(snapshot, dir, { recursive: true });
    ctx.dir = dir;
    const how = ctx.random.pick(['restore', 'sidecar', 'run'] as const);
    ctx.run.note(`the disk of generation ${staleGeneration} comes back (head ${head}) under ${how}`);
    /** The init container over the stale disk: the head comes back, the stale files are kept aside. */
    const restoreOver = async () => {
      const result = await runCli(['restore', '--dir', dir, '--session', SESSION], { env });
      const said = messages(result.stdout + result.stderr);
      if (result.code !== 0) return ctx.run.violate(5, `restore over the stale disk exited ${result.code}: ${said.slice(-400)}`);
      if (!/older than the stored head/.test(said)) return ctx.run.violate(11, `restore kept the stale disk: ${said.slice(-400)}`);
      ctx.run.count('stale disks refused or replaced');
      await compareWithHead(ctx.url, SESSION, dir, ctx.run, 'restore over the stale disk');
      const aside = (await readdir(dir)).filter((name) => name.startsWith('.baileys-keeper-stale-'));
      if (aside.length !== 1 || diffTrees(await readTree(path.join(dir, aside[0]!)), stale).length > 0)
        ctx.run.violate(11, `restore did not keep the stale files aside as they were (${aside.join(', ') || 'no copy'})`);
    };
    if (how === 'restore') await restoreOver();
    else if (how === 'sidecar') {
      // A sidecar on the disk as it came back (no init container): its first backup reads it whole.
      const keeper = await ctx.startKeeper();
      const refused = await waitFor(
        async () => ((await keeper.metric('baileys_keeper_backups_total{result="refused"}')) >= 1 ? true : null),
        20_000,
        () => 'the sidecar never refused the stale disk',
      ).catch(() => false);
      if (refused) ctx.run.count('stale disks refused or replaced');
      else ctx.run.violate(11, 'a sidecar on the stale disk did not refuse it');
      await keeper.stop();
      // What its warning says to do: restore, then start again.
      await restoreOver();
    } else {
      // run's own restore replaces the stale login before the bot starts.
      const keeper = await ctx.startKeeper({ bot: true });
      await botStarted(keeper);
      if (keeper.output.some((line) => line.includes('older than the stored head'))) ctx.run.count('stale disks refused or replaced');
      else ctx.run.violate(11, 'run started its bot on the stale disk');
      await ctx.pause(300, 1500);
      await keeper.stop();
      await checkStaleNeverHead(ctx.url, SESSION, stale, head, ctx.run);
      return;
    }
    await ctx.startKeeper();
    bot = await ctx.startBot();
    await ctx.pause(300, 1500);
    await bot.stop();
    await checkStaleNeverHead(ctx.url, SESSION, stale, head, ctx.run);
  },
};

export const SCENARIOS: readonly Scenario[] = [
  killBot,
  killSidecar,
  killPostgres,
  dropConnection,
  restoreKill,
  leaseRace,
  clockSkew,
  restoreTarget,
  runMode,
  rollingUpdate,
  staleDisk,
  ...CHAT_SCENARIOS,
  ...PROTECTION_SCENARIOS,
];
