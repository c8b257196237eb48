// "Never green while different" (invariant 10, SPEC "Protection"): a fault that leaves the directory
// different from the head — a file or directory the keeper may not read, a file over the size limit, events
// the watcher never delivers, the directory replaced, a stale write through the session API — and, within
// --interval + --max-delay (+ one backup), either the head equals the directory again or the keeper says it is
// not protected, with the right reason, while its lag grows.
import { chmod, chown, mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readTree } from '../../harness/fs.js';
import { diffTrees, storedHead } from '../../harness/sidecar.js';
import { throwawayUser } from '../support/throwaway-user.js';
import { SESSION, SkipRun, type RunContext } from './context.js';
import type { Keeper } from './processes.js';
import type { Scenario } from './scenarios.js';

/** The keepers' --interval in these runs: the audit's period, and so the window the invariant allows. */
const INTERVAL_MS = 1_000;
/** --max-delay of the suite's keepers (context.ts). */
const MAX_DELAY_MS = 400;
/** One backup after the window (a real process on a busy machine). */
const BACKUP_SLACK_MS = 2_000;
const TOKEN = 'faults-protection-token-0123456789';
/** The count that shows a run checked the invariant against a real difference. */
export const CHECKED_UNPROTECTED = 'unprotected while different';

const FAULTS = ['unreadable-file', 'unreadable-dir', 'too-large', 'events-dropped', 'dir-recreated'] as const;
type Fault = (typeof FAULTS)[number];

interface Sample {
  equal: boolean;
  diff: string[];
  protected: number;
  lag: number;
  reasons: string[];
}

async function sample(ctx: RunContext, keeper: Keeper): Promise<Sample> {
  const diff = diffTrees(await storedHead(ctx.url, SESSION), await readTree(ctx.dir).catch(() => new Map<string, string>()));
  const response = await fetch(`http://127.0.0.1:${keeper.port}/api/session/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  // 503 while the schema is being prepared (nothing measured yet): no reasons to read.
  const body = response.ok ? ((await response.json()) as { sessions: Array<{ session_id: string; reasons: string[] }> }) : null;
  const reasons = body ? (body.sessions.find((s) => s.session_id === SESSION)?.reasons ?? []) : ['starting'];
  return {
    equal: diff.length === 0,
    diff,
    protected: await keeper.metric('baileys_keeper_protected'),
    lag: await keeper.metric('baileys_keeper_backup_lag_seconds'),
    reasons,
  };
}

/**
 * Checks invariant 10 after `what` was done: converged within the window, or — at the window's end and
 * 600 ms later — not protected, for one of `expected`, with a growing lag.
 */
async function neverGreenWhileDifferent(ctx: RunContext, keeper: Keeper, what: string, expected: readonly string[]): Promise<void> {
  const deadline = Date.now() + INTERVAL_MS + MAX_DELAY_MS + BACKUP_SLACK_MS;
  while (Date.now() < deadline) {
    if ((await sample(ctx, keeper)).equal) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const first = await sample(ctx, keeper);
  if (first.equal) return;
  ctx.run.count(CHECKED_UNPROTECTED);
  const differs = `${first.diff.slice(0, 4).join('; ')} (${first.diff.length} in all)`;
  if (first.protected !== 0) ctx.run.violate(10, `${what}: protected = 1 while the head differs from the directory: ${differs}`);
  else if (!first.reasons.some((reason) => expected.includes(reason)))
    ctx.run.violate(10, `${what}: not protected, but for ${first.reasons.join(', ') || 'no reason'} instead of ${expected.join(' or ')}`);
  await new Promise((resolve) => setTimeout(resolve, 600));
  const second = await sample(ctx, keeper);
  if (!second.equal && second.lag <= first.lag)
    ctx.run.violate(10, `${what}: the lag does not grow while the head differs (${first.lag} s, then ${second.lag} s)`);
  if (!second.equal && second.protected !== 0) ctx.run.violate(10, `${what}: protected again while the head still differs`);
}

/** Waits until the keeper reports protected with the head equal to the directory (the state before a fault). */
async function settled(ctx: RunContext, keeper: Keeper): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const now = await sample(ctx, keeper);
    if (now.equal && now.protected === 1 && now.lag === 0) return;
    if (Date.now() > deadline) throw new Error(`the keeper never settled before the fault: ${now.diff.slice(0, 4).join('; ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A keeper that is not root (root reads every file whatever its mode): the directory is made searchable for it. */
async function asOtherUser(ctx: RunContext) {
  if (process.getuid?.() !== 0) throw new SkipRun('needs root to run the keeper as a user that may not read every file');
  const home = await ctx.subdir('keeper-user');
  await chmod(ctx.workDir, 0o755);
  await chmod(ctx.dir, 0o755);
  for (const name of await readdir(ctx.dir)) await chmod(path.join(ctx.dir, name), 0o644);
  return throwawayUser(home);
}

const neverGreen: Scenario = {
  name: 'never-green',
  fault: 'after a churn: a file or the directory made unreadable, a file over the size limit, events dropped, the directory replaced',
  landed: CHECKED_UNPROTECTED,
  runs: 100,
  async run(ctx) {
    const fault: Fault = ctx.random.pick(FAULTS);
    ctx.run.note(`fault: ${fault}`);
    // The bot writes first (as root, umask 022), then stops: the state before the fault is settled.
    const bot = await ctx.startBot();
    await ctx.pause(300, 1200);
    await bot.stop();
    const as = fault === 'unreadable-file' || fault === 'unreadable-dir' ? await asOtherUser(ctx) : undefined;
    const args = [
      '--interval',
      String(INTERVAL_MS),
      ...(fault === 'events-dropped' ? ['--watch', 'poll', '--poll-interval', '3600000'] : []),
    ];
    const keeper = await ctx.startKeeper({ args, env: { KEEPER_API_TOKEN: TOKEN }, ...(as ? { as } : {}) });
    await settled(ctx, keeper);
    const names = (await readdir(ctx.dir)).filter((name) => name.endsWith('.json') && name !== 'creds.json');

    switch (fault) {
      case 'unreadable-file': {
        // The bot as root with umask 077: a new key file the keeper's user may not read.
        const file = path.join(ctx.dir, `session-fault${ctx.random.int(1, 9999)}.0.json`);
        await writeFile(file, JSON.stringify({ written: 'with umask 077' }), { mode: 0o600 });
        await chown(file, 0, 0);
        await neverGreenWhileDifferent(ctx, keeper, 'a file only root may read', ['unreadable']);
        await chmod(file, 0o644);
        break;
      }
      case 'unreadable-dir': {
        await writeFile(path.join(ctx.dir, ctx.random.pick(names)), JSON.stringify({ changed: ctx.random.int(1, 1e9) }));
        await chmod(ctx.dir, 0o700);
        await neverGreenWhileDifferent(ctx, keeper, 'a directory only root may read', ['unreadable', 'not_watched']);
        await chmod(ctx.dir, 0o755);
        break;
      }
      case 'too-large': {
        const file = path.join(ctx.dir, ctx.random.pick(['baileys_store.json', 'store.json', 'messages.json']));
        const handle = await open(file, 'w');
        await handle.truncate(16 * 1024 * 1024 + ctx.random.int(1, 4 * 1024 * 1024));
        await handle.close();
        await neverGreenWhileDifferent(ctx, keeper, 'a file over the 16 MiB limit', ['too_large']);
        await rm(file);
        break;
      }
      case 'events-dropped': {
        // Polling once an hour: none of these changes is ever reported by the watcher.
        for (let i = ctx.random.int(1, 5); i > 0; i--)
          await writeFile(path.join(ctx.dir, ctx.random.pick(names)), JSON.stringify({ changed: ctx.random.int(1, 1e9) }));
        if (ctx.random.int(0, 1) === 1) await rm(path.join(ctx.dir, ctx.random.pick(names)), { force: true });
        await neverGreenWhileDifferent(ctx, keeper, 'changes the watcher never reported', ['lagging']);
        break;
      }
      case 'dir-recreated': {
        // The directory replaced by a copy with one change (a new inode the watcher must follow).
        const copy = `${ctx.dir}.new`;
        await mkdir(copy);
        for (const [name, content] of await readTree(ctx.dir)) await writeFile(path.join(copy, name), content);
        await writeFile(path.join(copy, ctx.random.pick(names)), JSON.stringify({ changed: ctx.random.int(1, 1e9) }));
        await rm(ctx.dir, { recursive: true });
        await rename(copy, ctx.dir);
        await neverGreenWhileDifferent(ctx, keeper, 'the directory replaced', ['lagging', 'not_watched']);
        break;
      }
    }
  },
};

export const PROTECTION_SCENARIOS: readonly Scenario[] = [neverGreen];
