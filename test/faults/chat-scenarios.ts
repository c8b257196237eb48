// The chat-continuity scenarios: deploys and crashes played against live Signal peers
// (harness/continuity.ts), each ending with a probe of every chat on the new pod's bot. A
// graceful deploy must break no chat (invariant 9); a crash is measured, not judged: how stale the
// head was and what that cost the chats; a restore one exchange stale, made on purpose, must be seen.
import { describeReport, type ContinuityReport } from '../../harness/conversation.js';
import { crashed, rollingDeploy, runStopped, staleRestore, type Pod, type PlayOptions } from '../../harness/continuity.js';
import { SESSION, type RunContext } from './context.js';
import type { Scenario } from './scenarios.js';

/** Counts of the chat probes, by RunLog label (the report's columns). */
export const CHAT_COUNTS = {
  probed: 'chats probed',
  broken: 'broken chats',
  recovered: 'broken chats recovered by retry receipts',
  lost: 'broken chats lost',
} as const;

/** Counts of a crash run, by RunLog label (the report's crash lines). */
export const CRASH_COUNTS = {
  runs: 'crashes',
  landed: 'crashes that lost changes',
  headAgeMs: 'crash: head age at the kill, ms',
  exchanges: 'crash: exchanges after the head',
  files: 'crash: files behind the head',
} as const;

/** The smaller --max-delay the crash is also measured with (debounce lowered with it: max-delay must cover it). */
export const FAST_CRASH_ARGS = ['--debounce', '100', '--max-delay', '250'];
/** The defaults, spelled out: the suite's own timings are shorter. */
export const DEFAULT_CRASH_ARGS = ['--debounce', '1000', '--max-delay', '1000'];

function playOptions(ctx: RunContext, keeperArgs: string[] = []): PlayOptions {
  return {
    url: ctx.url,
    session: SESSION,
    workDir: ctx.workDir,
    seed: ctx.random.seed,
    contacts: ctx.random.int(4, 7),
    groups: ctx.random.int(1, 3),
    exchanges: ctx.random.int(8, 20),
    keeperArgs,
    start: async (dir, { command, args }) => {
      // The runner's final checks follow the newest pod's directory.
      ctx.dir = dir;
      const keeper = await ctx.startKeeper({ ...(command ? { command } : {}), ...(args ? { args } : {}) });
      return { pid: keeper.pid, stop: () => keeper.stop(), kill: () => keeper.kill('SIGKILL') };
    },
    note: (line) => ctx.run.note(line),
    track: (kill) => ctx.onCleanup(kill),
  };
}

function record(ctx: RunContext, report: ContinuityReport): void {
  ctx.run.count(CHAT_COUNTS.probed, report.chats.length);
  ctx.run.count(CHAT_COUNTS.broken, report.broken);
  ctx.run.count(CHAT_COUNTS.recovered, report.recovered);
  ctx.run.count(CHAT_COUNTS.lost, report.lost);
  ctx.run.note(`probe: ${describeReport(report)}`);
}

/** The new pod's bot stops (a sidecar pod's bot container); its keeper is left to the runner's checks. */
async function leaveKeeper(pod: Pod): Promise<void> {
  pod.link.close();
  await pod.bot?.stop();
}

const chatRollingDeploy: Scenario = {
  name: 'chat-rolling-deploy',
  fault:
    "a rolling deploy mid-conversation: the new pod's restore waits for the old pod's lease, the old " +
    "pod (sidecar + bot) gets SIGTERM while it talks; then every chat is probed from the peers' side",
  landed: 'restores that waited for the old pod',
  runs: 3,
  async run(ctx) {
    const { report, restoreWaited, newPod } = await rollingDeploy(playOptions(ctx));
    if (restoreWaited) ctx.run.count('restores that waited for the old pod');
    record(ctx, report);
    if (report.broken > 0) ctx.run.violate(9, `a rolling deploy broke chats: ${describeReport(report)}`);
    await leaveKeeper(newPod);
  },
};

const chatRunStop: Scenario = {
  name: 'chat-run-stop',
  fault:
    '`run -- bot` stopped (SIGTERM) mid-conversation; the next container ' +
    'on an empty disk restores from PostgreSQL; then every chat is probed',
  runs: 3,
  async run(ctx) {
    const { report, newPod } = await runStopped(playOptions(ctx));
    record(ctx, report);
    if (report.broken > 0) ctx.run.violate(9, `a stopped run container broke chats: ${describeReport(report)}`);
    await leaveKeeper(newPod);
  },
};

function crashScenario(name: string, keeperArgs: string[], what: string): Scenario {
  return {
    name,
    fault:
      `\`run -- bot\` SIGKILLed (bot and keeper together) at a random instant of a conversation ` +
      `that never pauses, ${what}; the next container restores the head on an empty disk; then every chat is probed (measured, not judged)`,
    landed: CRASH_COUNTS.landed,
    runs: 4,
    async run(ctx) {
      const { report, staleness, newPod } = await crashed(playOptions(ctx, keeperArgs));
      record(ctx, report);
      ctx.run.count(CRASH_COUNTS.runs);
      ctx.run.count(CRASH_COUNTS.headAgeMs, staleness!.headAgeMs);
      ctx.run.count(CRASH_COUNTS.exchanges, staleness!.exchangesAfterHead);
      ctx.run.count(CRASH_COUNTS.files, staleness!.filesBehind);
      if (staleness!.filesBehind > 0) ctx.run.count(CRASH_COUNTS.landed);
      await leaveKeeper(newPod);
    },
  };
}

const chatStaleRestore: Scenario = {
  name: 'chat-stale-restore',
  fault:
    'the new pod restored on purpose from the generation before one more exchange ' +
    'in every chat (`restore --generation`); the harness must see broken chats',
  runs: 3,
  async run(ctx) {
    const { report, staleBy } = await staleRestore(playOptions(ctx));
    record(ctx, report);
    ctx.run.note(`restored ${staleBy} generation(s) behind the head`);
    const chats = report.chats.filter((chat) => chat.kind !== 'new contact');
    if (!chats.some((chat) => chat.outcome !== 'ok'))
      ctx.run.violate(9, `a restore one exchange stale broke no chat: the harness cannot see staleness (${describeReport(report)})`);
  },
};

export const CHAT_SCENARIOS: readonly Scenario[] = [
  chatRollingDeploy,
  chatRunStop,
  crashScenario('chat-crash', DEFAULT_CRASH_ARGS, 'with the default --debounce/--max-delay (1 s)'),
  crashScenario('chat-crash-fast', FAST_CRASH_ARGS, 'with --max-delay 250 ms (--debounce 100 ms)'),
  chatStaleRestore,
];
