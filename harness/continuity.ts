// Deploys that a chat must survive, played with real keeper processes, a real chat-bot process and the
// conversation harness (./conversation.ts) on the other side of every chat. Each play ends with a probe
// of every chat against the bot of the new pod. Used by test/e2e/chat-continuity.test.ts (small), the
// fault suite (more chats, more runs, seeded) and the bench (the price of a crash).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { cliEnv, collect, startCli } from './cli.js';
import { BotLink, chatBotCommand, ChatBotProcess, Conversation, type ContinuityReport } from './conversation.js';
import { query } from './db.js';
import { readTree } from './fs.js';
import { diffTrees, startService, storedHead, waitFor } from './sidecar.js';
import { mulberry32 } from './churn.js';
import { tornReason } from '../src/creds.js';

/** A keeper process of a pod: `sidecar`, or `run -- <the chat bot>`. */
export interface KeeperHandle {
  pid: number;
  /** SIGTERM; resolves once it has exited (the caller's launcher judges the exit). */
  stop(): Promise<void>;
  /** SIGKILL; resolves once it is gone. */
  kill(): Promise<void>;
}

/** Starts keepers on the play's session: `sidecar` on `dir`, or with `command`, `run -- command`. */
export type KeeperLauncher = (dir: string, options: { command?: string[]; args?: string[] }) => Promise<KeeperHandle>;

/**
 * Keepers as the real CLI processes on `url`'s session, with `baseArgs` (timings) before each pod's own
 * flags; a stop that does not end in exit 0 throws.
 */
export function serviceLauncher(url: string, session: string, baseArgs: string[] = []): KeeperLauncher {
  return async (dir, { command, args = [] }) => {
    const role = command ? 'run' : 'sidecar';
    const service = await startService(
      [role, '--dir', dir, '--session', session, ...baseArgs, ...args, ...(command ? ['--', ...command] : [])],
      cliEnv(url),
    );
    return {
      pid: service.child.pid!,
      async stop() {
        const ended = await service.stop('SIGTERM');
        if (ended.code !== 0)
          throw new Error(`${role} stopped with ${ended.code ?? ended.signal}:\n${service.output.slice(-10).join('\n')}`);
      },
      async kill() {
        await service.stop('SIGKILL');
      },
    };
  };
}

export interface PlayOptions {
  url: string;
  session: string;
  /** Where the pods' directories and sockets go. */
  workDir: string;
  start: KeeperLauncher;
  /** Decides the conversation and the instants of the play. */
  seed: number;
  /** Contacts and groups before the fault (default 4 and 1), and exchanges while it talks before it (default 10). */
  contacts?: number;
  groups?: number;
  exchanges?: number;
  /** Extra keeper flags for the first pod (timings). */
  keeperArgs?: string[];
  /** A line about what the play did, for traces. */
  note?: (line: string) => void;
  /** Registers how to kill a process the play started, for when the play fails half-way. */
  track?: (kill: () => Promise<void>) => void;
}

export interface PlayResult {
  report: ContinuityReport;
  /** Exchanges the conversation completed before the fault. */
  exchanges: number;
  /** Rolling deploy: the new pod's restore waited for the old pod's lease. */
  restoreWaited?: boolean;
  /** Crash: how far the stored head was behind the killed pod's directory. */
  staleness?: Staleness;
}

export interface Staleness {
  /** Time from the head's commit to the kill, ms (the conversation never paused, so changes were pending all along). */
  headAgeMs: number;
  /** Exchanges the conversation completed after the head's commit. */
  exchangesAfterHead: number;
  /** Files of the killed pod's directory that the head lacks or holds differently (torn leftovers aside). */
  filesBehind: number;
}

export interface Pod {
  dir: string;
  socket: string;
  keeper: KeeperHandle | null;
  bot: ChatBotProcess | null;
  link: BotLink;
}

/** A small delay from the play's seed. */
function pauses(seed: number): (minMs: number, maxMs: number) => Promise<number> {
  const random = mulberry32(seed ^ 0x5eed);
  return async (minMs, maxMs) => {
    const ms = minMs + Math.floor(random() * (maxMs - minMs + 1));
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  };
}

/** A sidecar pod (keeper + bot container) or a `run` pod (one container), with the bot connected. */
async function startPod(options: PlayOptions, name: string, mode: 'sidecar' | 'run' | 'bot only', args: string[] = []): Promise<Pod> {
  const dir = path.join(options.workDir, name, 'auth_info');
  const socket = path.join(options.workDir, `${name}.sock`);
  let keeper: KeeperHandle | null = null;
  let bot: ChatBotProcess | null = null;
  if (mode === 'run') keeper = await options.start(dir, { command: chatBotCommand(dir, socket), args });
  // A pod's containers start together: the sidecar must catch writes the bot makes before it watches.
  else if (mode === 'sidecar') [keeper, bot] = await Promise.all([options.start(dir, { args }), ChatBotProcess.start(dir, socket)]);
  else bot = await ChatBotProcess.start(dir, socket);
  for (const started of [keeper, bot]) if (started) options.track?.(() => started.kill());
  return { dir, socket, keeper, bot, link: await BotLink.connect(socket) };
}

/** A graceful stop: the bot first (it finishes its request and saves its creds), then the keeper. */
async function stopPod(pod: Pod): Promise<void> {
  pod.link.close();
  await pod.bot?.stop();
  await pod.keeper?.stop();
}

/** The first pod's conversation: peers and groups made, then `exchanges` exchanges. */
async function converse(options: PlayOptions, pod: Pod): Promise<Conversation> {
  const conversation = new Conversation(options.seed);
  await conversation.attach(pod.link);
  await conversation.populate(options.contacts ?? 4, options.groups ?? 1);
  for (let i = 0; i < (options.exchanges ?? 10); i++) await conversation.step();
  return conversation;
}

/** The first pod, talking without pause from now on; `talked()` (once the bot is gone) counts the exchanges. */
async function talkingPod(options: PlayOptions, mode: 'sidecar' | 'run') {
  const pod = await startPod(options, 'pod1', mode, options.keeperArgs);
  const conversation = await converse(options, pod);
  // A pod that is deployed over has been backing up for a while: its keeper holds the lease and a head.
  await settled(options, pod.dir);
  const stop = new AbortController();
  const talking = conversation.talk(stop.signal);
  return {
    pod,
    conversation,
    async talked(): Promise<number> {
      stop.abort();
      const exchanges = (options.exchanges ?? 10) + (await talking);
      pod.link.close();
      return exchanges;
    },
  };
}

/** The next pod on `mode`, probed by the same peers. */
async function probeNewPod(options: PlayOptions, conversation: Conversation, mode: 'sidecar' | 'run' | 'bot only') {
  const newPod = await startPod(options, 'pod2', mode);
  const held = conversation.heldForNextBot;
  await conversation.attach(newPod.link);
  if (held > 0) options.note?.(`${held} message(s) the old bot never acked, delivered to the new one on connect`);
  return { newPod, report: await conversation.probe() };
}

/**
 * Scenario 1, a rolling deploy: the new pod's `restore` starts while the old pod (sidecar + bot) talks,
 * waits for the old pod's lease; the old pod gets SIGTERM (both containers at once) mid-conversation;
 * the new pod restores what the old one's final backup stored and talks to the same peers.
 */
export async function rollingDeploy(options: PlayOptions): Promise<PlayResult & { newPod: Pod }> {
  const pause = pauses(options.seed);
  const { pod: old, conversation, talked } = await talkingPod(options, 'sidecar');
  const dir = path.join(options.workDir, 'pod2', 'auth_info');
  const restore = startCli(['restore', '--dir', dir, '--session', options.session], { env: cliEnv(options.url) });
  let said = '';
  restore.stdout!.on('data', (chunk: Buffer) => (said += chunk.toString()));
  const restored = collect(restore, { timeoutMs: 120_000 });
  const restoreWaited = await waitFor(
    () => (said.includes('waiting for its final backup') ? true : restore.exitCode !== null ? false : null),
    20_000,
    () => `the new pod's restore neither waited nor finished: ${said}`,
  );
  options.note?.(
    `new pod's restore ${restoreWaited ? 'waits for the old pod' : 'did not wait'}; SIGTERM to the old pod in ${await pause(0, 800)} ms`,
  );
  await Promise.all([old.bot!.stop(), old.keeper!.stop()]);
  const exchanges = await talked();
  const result = await restored;
  if (result.code !== 0) throw new Error(`the new pod's restore exited ${result.code}: ${said}${result.stderr}`);
  return { ...(await probeNewPod(options, conversation, 'sidecar')), exchanges, restoreWaited };
}

/**
 * Scenario 2: the `run` container (keeper + bot as one process tree) gets SIGTERM mid-conversation;
 * the next container starts on an empty disk, restores from PostgreSQL and talks to the same peers.
 */
export async function runStopped(options: PlayOptions): Promise<PlayResult & { newPod: Pod }> {
  const pause = pauses(options.seed);
  const { pod: old, conversation, talked } = await talkingPod(options, 'run');
  options.note?.(`SIGTERM to the run container in ${await pause(100, 1000)} ms`);
  await old.keeper!.stop();
  const exchanges = await talked();
  return { ...(await probeNewPod(options, conversation, 'run')), exchanges };
}

/**
 * Scenario 3: a crash. The `run` container's keeper and bot are SIGKILLed together at a random instant
 * of a conversation that never pauses; the next container restores the head on an empty disk. What
 * the head lacked (at most about --max-delay of changes) is measured, and so is what it costs the chats.
 */
export async function crashed(options: PlayOptions): Promise<PlayResult & { newPod: Pod }> {
  const pause = pauses(options.seed);
  const { pod: old, conversation, talked } = await talkingPod(options, 'run');
  const after = await pause(500, 2500);
  const [bot] = await childPids(old.keeper!.pid);
  if (bot === undefined) throw new Error('the run container has no bot process');
  // Both at once, as when a node dies or the container is OOM-killed: no final backup.
  process.kill(bot, 'SIGKILL');
  const killed = old.keeper!.kill();
  const killedAt = Date.now();
  await killed;
  const exchanges = await talked();
  const staleness = await measureStaleness(options, old.dir, killedAt, conversation);
  options.note?.(
    `SIGKILL of bot and keeper ${after} ms into the talk: head ${staleness.headAgeMs} ms ` +
      `old, ${staleness.exchangesAfterHead} exchanges and ${staleness.filesBehind} files behind`,
  );
  return { ...(await probeNewPod(options, conversation, 'run')), exchanges, staleness };
}

/**
 * Scenario 4, the proof that the harness can fail: after one more exchange in every chat, the new
 * pod's directory is restored on purpose from the generation before it (`restore --generation`): one
 * exchange stale. Its bot runs without a keeper (a stale copy backed up would bring back deleted keys
 * under the session, which is not what this play is about).
 */
export async function staleRestore(options: PlayOptions): Promise<PlayResult & { staleBy: number }> {
  const old = await startPod(options, 'pod1', 'sidecar', options.keeperArgs);
  const conversation = await converse(options, old);
  const before = await settled(options, old.dir);
  await conversation.exchangeAll();
  const head = await settled(options, old.dir);
  await stopPod(old);
  const dir = path.join(options.workDir, 'pod2', 'auth_info');
  const result = await collect(
    startCli(['restore', '--dir', dir, '--session', options.session, '--generation', String(before)], { env: cliEnv(options.url) }),
  );
  if (result.code !== 0) throw new Error(`restore --generation ${before} exited ${result.code}: ${result.stdout}${result.stderr}`);
  options.note?.(`restored generation ${before}, the head before one exchange in every chat (head ${head})`);
  const { newPod, report } = await probeNewPod(options, conversation, 'bot only');
  await stopPod(newPod);
  return { report, exchanges: (options.exchanges ?? 10) + conversation.peers.length + conversation.groups.length, staleBy: head - before };
}

/** The new pod of a play, stopped gracefully (bot, then keeper). */
export function stopNewPod(pod: Pod): Promise<void> {
  return stopPod(pod);
}

/** Waits until the stored head equals `dir` and returns the head generation. */
export async function settled(options: { url: string; session: string }, dir: string, timeoutMs = 30_000): Promise<number> {
  await waitFor(
    async () => (diffTrees(await storedHead(options.url, options.session), await readTree(dir)).length === 0 ? true : null),
    timeoutMs,
    () => `the head never equalled ${dir}`,
  );
  const [row] = await query<{ head_generation: string }>(
    options.url,
    'SELECT head_generation FROM baileys_keeper.sessions WHERE session_id = $1',
    [options.session],
  );
  return Number(row!.head_generation);
}

async function measureStaleness(options: PlayOptions, dir: string, killedAt: number, conversation: Conversation): Promise<Staleness> {
  const [row] = await query<{ at: Date }>(
    options.url,
    'SELECT g.created_at AS at FROM baileys_keeper.generations g JOIN baileys_keeper.sessions ' +
      's USING (session_id) WHERE g.session_id = $1 AND g.generation = s.head_generation',
    [options.session],
  );
  const headAt = row ? row.at.getTime() : 0;
  // A torn leftover of the killed bot is read by Baileys as missing; the store keeps its last good version.
  const [tree, head] = [await readTree(dir), await storedHead(options.url, options.session)];
  for (const [name, text] of tree) {
    if (tornReason(name, Buffer.from(text)) === null) continue;
    tree.delete(name);
    head.delete(name);
  }
  return {
    headAgeMs: Math.max(0, killedAt - headAt),
    exchangesAfterHead: conversation.completedAt.filter((at) => at > headAt).length,
    filesBehind: diffTrees(head, tree).length,
  };
}

/** A process's direct children, from /proc. */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}
