// The conversation harness: a bot's chats, driven from the other side, to prove that they keep
// decrypting after a deploy. The bot is a real process (./chat-bot.ts: useMultiFileAuthState and
// Baileys' own Signal repository, reached over a unix socket); the other side is a set of peers —
// contacts with 1–3 devices, and groups — whose Signal state is real Baileys repository state kept in
// this process's memory, never on disk and never backed up. "The server" is the pool of the bot's
// uploaded one-time pre-keys (handed out to new contacts) and the peers' pre-keys (fetched for the bot).
//
// A Conversation survives its bot: attach() it to another bot process on another copy of the
// directory (a restored pod) and probe() tells, per chat, whether the next exchange decrypts on both
// sides, and if not, whether Baileys' retry receipts bring it back. The retry round trip needs a
// WhatsApp server, so it is modelled with the same repository calls both ends make:
//   - the bot fails to decrypt → it sends a retry receipt (sendRetryRequest): the first carries only its
//     registration id; from the second on, with Baileys' default enableAutoSessionRecreation, the bot
//     deletes the session and includes a fresh pre-key bundle. The peer resends as Baileys'
//     sendMessagesAgain does: a new session from the receipt's bundle, or else from a fresh bundle
//     fetched from the server (assertSessions with force), and for a group the sender key again;
//   - a peer fails to decrypt → it sends the same receipts (a peer behaves as a Baileys client), and
//     the bot resends from its recent-message cache (enableRecentMessageCache, the default) with a
//     session built from the receipt's bundle or the peer's fresh server bundle.
// Up to 5 retries per message (Baileys' maxMsgRetryCount).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Curve, encodeWAMessage, proto, unpadRandomMax16 } from '@whiskeysockets/baileys';
import { bundleOf, mulberry32, newDevice, pickWeighted, type Device } from './churn.js';
import { CHAT_BOT } from './paths.js';
import { waitFor } from './sidecar.js';
import { b64, fromB64, toSession, toWire, type WireBundle, type WireEnc } from './signal-wire.js';

/**
 * libsignal narrates on the console (whole session records with "Closing session", every failed
 * decrypt with its stack): the peers live in this process, so their narration is dropped here; other
 * console output passes through.
 */
const LIBSIGNAL_NARRATION =
  /^(Closing session|Opening session|Removing old closed session|Closing open session|Failed to decrypt message with any known session|Session error|Decrypted message with closed session|Session already)/;
for (const method of ['info', 'warn', 'error'] as const) {
  const original = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && LIBSIGNAL_NARRATION.test(args[0])) return;
    original(...args);
  };
}

/** Baileys' maxMsgRetryCount default: retry receipts per message before it gives up. */
export const MAX_RETRIES = 5;
/** How long one request to the bot may take, ms. */
const REQUEST_TIMEOUT_MS = 60_000;
/** The server asks for more pre-keys when it holds fewer than this; the bot then uploads UPLOAD_BATCH. */
const POOL_LOW = 5;
const UPLOAD_BATCH = 20;

/** The command line of a chat-bot process on `dir`, listening on `socket`. */
export function chatBotCommand(dir: string, socket: string): string[] {
  return [process.execPath, CHAT_BOT, dir, '--socket', socket];
}

/** The bot process stopped answering (killed, or stopping after SIGTERM) while a request was pending. */
export class BotGone extends Error {}

type Answer = Record<string, unknown> & { error?: string };

/** A connection to a chat-bot process: one JSON line per request, answered in order. */
export class BotLink {
  private nextId = 1;
  private buffered = '';
  private readonly pending = new Map<number, { resolve: (answer: Answer) => void; reject: (error: Error) => void }>();
  private gone = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString();
      const lines = this.buffered.split('\n');
      this.buffered = lines.pop()!;
      for (const line of lines) {
        const answer = JSON.parse(line) as Answer & { id: number; stopping?: boolean };
        const waiter = this.pending.get(answer.id);
        this.pending.delete(answer.id);
        if (answer.stopping) waiter?.reject(new BotGone('the bot is stopping'));
        else waiter?.resolve(answer);
      }
    });
    const fail = () => {
      this.gone = true;
      for (const waiter of this.pending.values()) waiter.reject(new BotGone('the bot closed its socket'));
      this.pending.clear();
    };
    socket.on('close', fail);
    socket.on('error', fail);
  }

  /** Connects to the bot listening on `socketPath` (retrying while it starts). */
  static async connect(socketPath: string, timeoutMs = 30_000): Promise<BotLink> {
    const socket = await waitFor(
      () =>
        new Promise<net.Socket | null>((resolve) => {
          const attempt = net.connect(socketPath);
          attempt.once('connect', () => resolve(attempt));
          attempt.once('error', () => resolve(null));
        }),
      timeoutMs,
      () => `no chat-bot listening on ${socketPath}`,
    );
    return new BotLink(socket);
  }

  /** Sends one request; resolves with the answer (a failed decrypt answers {error}); rejects with BotGone. */
  request(op: string, args: Record<string, unknown> = {}): Promise<Answer> {
    if (this.gone) return Promise.reject(new BotGone('the bot is gone'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // A bot that never answers is a failure to report, not a test that hangs.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the bot did not answer ${op} within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.socket.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A chat-bot process started directly (a sidecar pod's bot container). */
export class ChatBotProcess {
  private output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.resume();
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(dir: string, socket: string): Promise<ChatBotProcess> {
    const [node, ...args] = chatBotCommand(dir, socket);
    const bot = new ChatBotProcess(spawn(node!, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    await waitFor(
      () => (bot.output.includes('ready') ? true : null),
      30_000,
      () => `the chat bot did not start: ${bot.output}`,
      bot.exited,
    );
    return bot;
  }

  /** SIGTERM: the request in progress is answered, then the bot saves its creds and exits 0. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const { code, signal } = await this.exited;
    if (code !== 0) throw new Error(`the chat bot failed to stop (code ${code}, signal ${signal}): ${this.output.slice(-300)}`);
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

interface PeerDevice {
  /** `<user>[:<device>]@lid`: how the bot addresses this device. */
  jid: string;
  phone: Device;
}

export interface Peer {
  lid: string;
  pn: string;
  devices: PeerDevice[];
}

interface ChatGroup {
  jid: string;
  members: Peer[];
}

/** ok: decrypted at once; recovered: only after retry receipts; lost: not even after MAX_RETRIES. */
export type Outcome = 'ok' | 'recovered' | 'lost';

export interface DirectionReport {
  outcome: Outcome;
  /** Retry receipts it took (the most any device needed). */
  retries: number;
  /** The first decrypt error seen (Bad MAC, No session record, old counter, ...). */
  error?: string;
}

export interface ChatReport {
  chat: string;
  kind: '1:1' | 'group' | 'new contact';
  /** Messages from the peer(s) to the bot. */
  toBot: DirectionReport;
  /** Messages from the bot to the peer(s). */
  fromBot: DirectionReport;
  /** The worse of the two directions. */
  outcome: Outcome;
}

export interface ContinuityReport {
  chats: ChatReport[];
  /** Chats whose next exchange did not decrypt at once in both directions (recovered + lost). */
  broken: number;
  /** Broken chats that Baileys' retry receipts brought back without anyone writing again. */
  recovered: number;
  /** Broken chats still failing after MAX_RETRIES retry receipts. */
  lost: number;
}

const RANK: Record<Outcome, number> = { ok: 0, recovered: 1, lost: 2 };
const worse = (a: Outcome, b: Outcome): Outcome => (RANK[a] >= RANK[b] ? a : b);

function mergeDirections(reports: DirectionReport[]): DirectionReport {
  const outcome = reports.reduce<Outcome>((so, report) => worse(so, report.outcome), 'ok');
  const retries = Math.max(0, ...reports.map((report) => report.retries));
  const error = reports.find((report) => report.error !== undefined)?.error;
  return error === undefined ? { outcome, retries } : { outcome, retries, error };
}

export function summarise(chats: ChatReport[]): ContinuityReport {
  const recovered = chats.filter((chat) => chat.outcome === 'recovered').length;
  const lost = chats.filter((chat) => chat.outcome === 'lost').length;
  return { chats, broken: recovered + lost, recovered, lost };
}

function decode(plaintext: Uint8Array): proto.Message {
  return proto.Message.decode(unpadRandomMax16(plaintext));
}

const OPERATION_WEIGHTS = { chat: 40, 'group-send': 20, 'group-receive': 20, 'new-contact': 10, 'rotate-sender-key': 5 } as const;
type Operation = keyof typeof OPERATION_WEIGHTS;

export interface ConversationOptions {
  /** Devices per contact: 1 to this (default 3). */
  maxDevices?: number;
}

export class Conversation {
  readonly peers: Peer[] = [];
  readonly groups: ChatGroup[] = [];
  /** When each exchange completed (ms since the epoch): what a crash may have lost. */
  readonly completedAt: number[] = [];
  private readonly random: () => number;
  private readonly maxDevices: number;
  /** The bot's one-time pre-keys the server holds (uploaded, not handed out yet): id → public key. */
  private readonly pool = new Map<number, string>();
  private link: BotLink | null = null;
  private me = '';
  private botBundle: WireBundle | null = null;
  private sent = 0;
  private numbers = 0;
  /**
   * Messages to the bot that it never acknowledged: refused while stopping, or sent as it went away.
   * The peers' state already counts them as sent (a ratchet step, a sender key marked as given), and
   * WhatsApp's server keeps a message until the client acks it (Baileys acks after decrypting): the
   * next bot gets them on connect, before anything new (offline messages). A stopping chat-bot answers
   * everything it processed before it exits, so after a graceful stop these were never read; after a
   * SIGKILL one may have been read and not acked, and its redelivery is a duplicate, as on WhatsApp.
   */
  private readonly offline: Array<Record<string, unknown>> = [];
  /** Offline messages the next bot failed to decrypt, by chat (a group's jid or a contact's lid). */
  private readonly offlineFailures = new Map<string, string>();

  constructor(
    /** Makes the conversation (who talks, what, in which order) reproducible. */
    readonly seed: number,
    options: ConversationOptions = {},
  ) {
    this.random = mulberry32(seed);
    this.maxDevices = options.maxDevices ?? 3;
  }

  /**
   * Talks to `link`'s bot from now on (the same peers, the same server). As Baileys does on connect,
   * the bot uploads pre-keys when the server holds too few.
   */
  async attach(link: BotLink): Promise<void> {
    this.link = link;
    const hello = await this.ask('hello');
    this.me = String(hello['me']);
    this.botBundle = hello['bundle'] as WireBundle;
    await this.replenish();
    for (const args of this.offline.splice(0)) {
      const answer = await this.ask('decrypt', args);
      if (answer.error === undefined) continue;
      const skmsg = args['skmsg'] as { group: string } | undefined;
      const chat =
        skmsg?.group ?? this.peers.find((peer) => peer.devices.some((device) => device.jid === args['lid']))?.lid ?? String(args['lid']);
      if (!this.offlineFailures.has(chat)) this.offlineFailures.set(chat, `an offline message: ${answer.error}`);
    }
  }

  /** Offline messages held for the next bot (never acked by the last one). */
  get heldForNextBot(): number {
    return this.offline.length;
  }

  /** `contacts` new contacts (each starts its chat from a one-time pre-key) and `groups` groups of 2–4 of them. */
  async populate(contacts: number, groups: number): Promise<void> {
    for (let i = 0; i < contacts; i++) await this.newContact();
    for (let i = 0; i < groups; i++) {
      const size = Math.min(this.peers.length, 2 + Math.floor(this.random() * 3));
      const members = new Set<Peer>();
      while (members.size < size) members.add(this.pick(this.peers));
      const group = { jid: `120363${this.digits(12)}@g.us`, members: [...members] };
      this.groups.push(group);
      await this.groupSend(group);
    }
  }

  /** One random exchange, as a live chat has them; throws if anything fails to decrypt. */
  async step(): Promise<string> {
    const operation = this.pickOperation();
    let label: string;
    if (operation === 'new-contact' || this.peers.length === 0) label = `new-contact ${(await this.newContact()).lid}`;
    else if (operation === 'chat' || this.groups.length === 0) label = await this.chat(this.pick(this.peers));
    else if (operation === 'group-send') label = await this.groupSend(this.pick(this.groups));
    else {
      const group = this.pick(this.groups);
      const device = this.pick(this.pick(group.members).devices);
      if (operation === 'rotate-sender-key') await this.rotateSenderKey(group, device);
      label = await this.groupReceive(group, device);
    }
    this.completedAt.push(Date.now());
    return label;
  }

  /**
   * Steps one after another (pausing `pauseMs` between them) until `stop` aborts or the bot goes away
   * (a deploy or a crash stopped it mid-conversation); resolves with the number of exchanges.
   */
  async talk(stop: AbortSignal, pauseMs = 0): Promise<number> {
    let steps = 0;
    while (!stop.aborted) {
      try {
        await this.step();
      } catch (error) {
        if (error instanceof BotGone) break;
        throw error;
      }
      steps++;
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    return steps;
  }

  /** One exchange in every chat (each contact, each group): the state a deploy must carry over. */
  async exchangeAll(): Promise<void> {
    for (const peer of this.peers) await this.chat(peer);
    for (const group of this.groups) await this.groupSend(group);
  }

  /**
   * The proof: in every chat (1:1 with each contact and each of its devices, each group both ways) and
   * for a new contact, the next exchange in both directions — decrypted at once, or after retry
   * receipts, or not at all.
   */
  async probe(): Promise<ContinuityReport> {
    const chats: ChatReport[] = [];
    for (const peer of this.peers) {
      // Who writes first is drawn per chat: the first failure's retry decides what the other direction meets.
      const peerFirst = this.random() < 0.5;
      const toBot: DirectionReport[] = [];
      const fromBot: DirectionReport[] = [];
      for (const device of peer.devices) {
        if (peerFirst) toBot.push(await this.probeToBot(peer, device));
        fromBot.push(await this.probeFromBot(device));
        if (!peerFirst) toBot.push(await this.probeToBot(peer, device));
      }
      chats.push(this.report(peer.lid, '1:1', toBot, fromBot));
    }
    for (const group of this.groups) {
      const fromBot = await this.probeGroupFromBot(group);
      const toBot: DirectionReport[] = [];
      for (const member of group.members) toBot.push(await this.probeGroupToBot(group, member, member.devices[0]!));
      chats.push(this.report(group.jid, 'group', toBot, fromBot));
    }
    const peer = this.makePeer();
    const toBot: DirectionReport[] = [];
    const fromBot: DirectionReport[] = [];
    for (const device of peer.devices) {
      await device.phone.repository.injectE2ESession({ jid: this.me, session: toSession(await this.serverBundle()) });
      toBot.push(await this.probeToBot(peer, device));
    }
    this.peers.push(peer);
    for (const device of peer.devices) fromBot.push(await this.probeFromBot(device));
    chats.push(this.report(peer.lid, 'new contact', toBot, fromBot));
    // A contact whose first message was refused by a stopping bot has no chat of its own to probe.
    for (const [chat, error] of this.offlineFailures) {
      if (!chats.some((report) => report.chat === chat)) chats.push(this.report(chat, '1:1', [{ outcome: 'lost', retries: 0, error }], []));
    }
    this.offlineFailures.clear();
    return summarise(chats);
  }

  private report(chat: string, kind: ChatReport['kind'], toBot: DirectionReport[], fromBot: DirectionReport[]): ChatReport {
    // An offline message the new bot could not read broke the chat before the probe's own exchange.
    const offline = this.offlineFailures.get(chat);
    if (offline !== undefined) toBot = [{ outcome: 'lost', retries: 0, error: offline }, ...toBot];
    const [to, from] = [mergeDirections(toBot), mergeDirections(fromBot)];
    return { chat, kind, toBot: to, fromBot: from, outcome: worse(to.outcome, from.outcome) };
  }

  // ---- exchanges ---------------------------------------------------------------------------------

  /** A new contact writes first from each of its devices (a pkmsg on one of the bot's one-time pre-keys); the bot answers all. */
  private async newContact(): Promise<Peer> {
    const peer = this.makePeer();
    for (const device of peer.devices) {
      await device.phone.repository.injectE2ESession({ jid: this.me, session: toSession(await this.serverBundle()) });
      await this.expectToBot(device, peer, [await this.peerEncrypt(device, { conversation: this.text() })]);
    }
    this.peers.push(peer);
    await this.botReplies(peer);
    return peer;
  }

  /** A few messages each way: from one of the contact's devices, and from the bot to all of them. */
  private async chat(peer: Peer): Promise<string> {
    const device = this.pick(peer.devices);
    const fromPeer = 1 + Math.floor(this.random() * 2);
    for (let i = 0; i < fromPeer; i++)
      await this.expectToBot(device, peer, [await this.peerEncrypt(device, { conversation: this.text() })]);
    const fromBot = await this.botReplies(peer);
    return `chat ${peer.lid} ${fromPeer}+${fromBot}`;
  }

  private async botReplies(peer: Peer): Promise<number> {
    const count = 1 + Math.floor(this.random() * 2);
    for (let i = 0; i < count; i++) {
      const text = this.text();
      for (const device of peer.devices) {
        const answer = await this.ask('encrypt', { jid: device.jid, text });
        this.expect(await this.peerDecrypt(device, answer['enc'] as WireEnc), text, `message to ${device.jid}`);
      }
    }
    return count;
  }

  /** The bot writes to a group (relayMessage): new members' devices get its sender key 1:1 first. */
  private async groupSend(group: ChatGroup): Promise<string> {
    const text = this.text();
    const devices = group.members.flatMap((member) => member.devices);
    const answer = await this.ask('groupEncrypt', { group: group.jid, text, members: devices.map((device) => device.jid) });
    const skdms = answer['skdms'] as Record<string, WireEnc>;
    for (const device of devices) {
      const skdm = skdms[device.jid];
      if (skdm) await this.processSenderKey(device, group.jid, await this.peerDecrypt(device, skdm));
      this.expect(await this.peerDecryptGroup(device, group.jid, String(answer['ciphertext'])), text, `group message to ${device.jid}`);
    }
    return `group-send ${group.jid} skdm ${Object.keys(skdms).length}/${devices.length}`;
  }

  /** A member's device writes to a group: its sender key 1:1 to the bot the first time, then the skmsg. */
  private async groupReceive(group: ChatGroup, device: PeerDevice): Promise<string> {
    const member = group.members.find((peer) => peer.devices.includes(device))!;
    const { text, encs, skmsg } = await this.memberGroupMessage(group, device);
    const answer = await this.ask('decrypt', { lid: device.jid, pn: member.pn, encs, skmsg });
    if (answer.error !== undefined) throw new Error(`group message from ${device.jid} to the bot: ${answer.error}`);
    this.expect((answer['texts'] as string[]).at(-1), text, `group message from ${device.jid}`);
    return `group-receive ${group.jid} from ${device.jid}${encs.length > 0 ? ' skdm' : ''}`;
  }

  /** A member's device starts a new sender key (WhatsApp does after membership changes): the next message carries it. */
  private async rotateSenderKey(group: ChatGroup, device: PeerDevice): Promise<void> {
    const address = device.phone.repository.jidToSignalProtocolAddress(device.jid);
    const dot = address.lastIndexOf('.');
    await device.phone.keys.set({ 'sender-key': { [`${group.jid}::${address.slice(0, dot)}::${address.slice(dot + 1)}`]: null } });
    device.phone.gaveSenderKey.delete(group.jid);
  }

  private async memberGroupMessage(
    group: ChatGroup,
    device: PeerDevice,
  ): Promise<{ text: string; encs: WireEnc[]; skmsg: { group: string; ciphertext: string } }> {
    const text = this.text();
    const { ciphertext, senderKeyDistributionMessage } = await device.phone.repository.encryptGroupMessage({
      group: group.jid,
      meId: device.jid,
      data: encodeWAMessage({ conversation: text }),
    });
    const encs: WireEnc[] = [];
    if (!device.phone.gaveSenderKey.has(group.jid)) {
      encs.push(
        await this.peerEncrypt(device, {
          senderKeyDistributionMessage: { groupId: group.jid, axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage },
        }),
      );
      device.phone.gaveSenderKey.add(group.jid);
    }
    return { text, encs, skmsg: { group: group.jid, ciphertext: b64(ciphertext) } };
  }

  // ---- probes with retry receipts ------------------------------------------------------------------

  /** The peer's device writes 1:1; on failure the bot's retry receipts make the peer resend. */
  private probeToBot(peer: Peer, device: PeerDevice): Promise<DirectionReport> {
    const text = this.text();
    return this.withRetries(
      async () => ({
        text,
        answer: await this.ask('decrypt', { lid: device.jid, pn: peer.pn, encs: [await this.peerEncrypt(device, { conversation: text })] }),
      }),
      (count) => this.peerResendsAfter(device, count),
    );
  }

  /** A member's device writes to a group; on failure it resends (its sender key again, over a new 1:1 session). */
  private probeGroupToBot(group: ChatGroup, member: Peer, device: PeerDevice): Promise<DirectionReport> {
    return this.withRetries(
      async () => {
        const { text, encs, skmsg } = await this.memberGroupMessage(group, device);
        return { text, answer: await this.ask('decrypt', { lid: device.jid, pn: member.pn, encs, skmsg }) };
      },
      async (count) => {
        await this.peerResendsAfter(device, count);
        // sendMessagesAgain deletes sender-key-memory for a group: the sender key goes out again.
        device.phone.gaveSenderKey.delete(group.jid);
      },
    );
  }

  /** The bot writes 1:1 to one device; on failure the device's retry receipts make the bot resend. */
  private async probeFromBot(device: PeerDevice): Promise<DirectionReport> {
    const text = this.text();
    const first = await this.ask('encrypt', { jid: device.jid, text });
    let error = await this.peerAccepts(device, first['enc'] as WireEnc, text);
    if (error === null) return { outcome: 'ok', retries: 0 };
    const firstError = error;
    for (let count = 1; count <= MAX_RETRIES; count++) {
      const bundle = await this.peerRetryBundle(device, count);
      const resent = await this.ask('resend', { jid: device.jid, text, bundle });
      error = await this.peerAccepts(device, resent['enc'] as WireEnc, text);
      if (error === null) return { outcome: 'recovered', retries: count, error: firstError };
    }
    return { outcome: 'lost', retries: MAX_RETRIES, error: firstError };
  }

  /** The bot writes to a group; each member device that cannot decrypt asks for a retry. */
  private async probeGroupFromBot(group: ChatGroup): Promise<DirectionReport[]> {
    const text = this.text();
    const devices = group.members.flatMap((member) => member.devices);
    const answer = await this.ask('groupEncrypt', { group: group.jid, text, members: devices.map((device) => device.jid) });
    const reports: DirectionReport[] = [];
    for (const device of devices) {
      const receive = async (reply: Answer) => {
        try {
          const skdm = (reply['skdms'] as Record<string, WireEnc>)[device.jid];
          if (skdm) await this.processSenderKey(device, group.jid, await this.peerDecrypt(device, skdm));
          const got = await this.peerDecryptGroup(device, group.jid, String(reply['ciphertext']));
          return got.conversation === text ? null : `decrypted ${JSON.stringify(got.conversation)}`;
        } catch (error) {
          return (error as Error).message;
        }
      };
      let error = await receive(answer);
      if (error === null) {
        reports.push({ outcome: 'ok', retries: 0 });
        continue;
      }
      const firstError = error;
      let report: DirectionReport = { outcome: 'lost', retries: MAX_RETRIES, error: firstError };
      for (let count = 1; count <= MAX_RETRIES; count++) {
        const bundle = await this.peerRetryBundle(device, count);
        error = await receive(await this.ask('resend', { jid: device.jid, text, group: group.jid, bundle }));
        if (error === null) {
          report = { outcome: 'recovered', retries: count, error: firstError };
          break;
        }
      }
      reports.push(report);
    }
    return reports;
  }

  /** Sends a message to the bot; while it fails, the bot's retry receipt `count` and the peer's resend. */
  private async withRetries(
    send: () => Promise<{ text: string; answer: Answer }>,
    resend: (count: number) => Promise<void>,
  ): Promise<DirectionReport> {
    let { text, answer } = await send();
    if (this.delivered(answer, text)) return { outcome: 'ok', retries: 0 };
    const error = answer.error ?? 'decrypted the wrong text';
    for (let count = 1; count <= MAX_RETRIES; count++) {
      await resend(count);
      ({ text, answer } = await send());
      if (this.delivered(answer, text)) return { outcome: 'recovered', retries: count, error };
    }
    return { outcome: 'lost', retries: MAX_RETRIES, error };
  }

  /**
   * The bot failed to decrypt from `device`: its retry receipt number `count`, and the peer's answer
   * as Baileys' sendMessagesAgain gives it: a new session from the receipt's bundle, else from a fresh
   * bundle fetched from the server.
   */
  private async peerResendsAfter(device: PeerDevice, count: number): Promise<void> {
    const receipt = await this.ask('retryReceipt', { jid: device.jid, count });
    const bundle = (receipt['bundle'] as WireBundle | undefined) ?? (await this.serverBundle());
    await device.phone.repository.injectE2ESession({ jid: this.me, session: toSession(bundle) });
  }

  /**
   * `device` failed to decrypt from the bot: the bundle the bot builds its new session from — the one
   * in the device's retry receipt (from the second retry on, the device deletes its session and sends
   * a fresh pre-key bundle, as Baileys' sendRetryRequest does), else the device's bundle from the server.
   */
  private async peerRetryBundle(device: PeerDevice, count: number): Promise<WireBundle> {
    if (count >= 2) await device.phone.keys.set({ session: { [device.phone.repository.jidToSignalProtocolAddress(this.me)]: null } });
    return toWire(await this.peerBundle(device));
  }

  /** null when `enc` decrypts at `device` to `text`, else why not. */
  private async peerAccepts(device: PeerDevice, enc: WireEnc, text: string): Promise<string | null> {
    try {
      const got = await this.peerDecrypt(device, enc);
      return got.conversation === text ? null : `decrypted ${JSON.stringify(got.conversation)}`;
    } catch (error) {
      return (error as Error).message;
    }
  }

  // ---- the peers' side and the server --------------------------------------------------------------

  private async expectToBot(device: PeerDevice, peer: Peer, encs: WireEnc[]): Promise<void> {
    const answer = await this.ask('decrypt', { lid: device.jid, pn: peer.pn, encs });
    if (answer.error !== undefined) throw new Error(`message from ${device.jid} to the bot: ${answer.error}`);
  }

  private delivered(answer: Answer, text: string): boolean {
    return answer.error === undefined && (answer['texts'] as string[]).at(-1) === text;
  }

  private async peerEncrypt(device: PeerDevice, message: proto.IMessage): Promise<WireEnc> {
    const { type, ciphertext } = await device.phone.repository.encryptMessage({ jid: this.me, data: encodeWAMessage(message) });
    return { type, ciphertext: b64(ciphertext) };
  }

  private async peerDecrypt(device: PeerDevice, enc: WireEnc): Promise<proto.Message> {
    return decode(await device.phone.repository.decryptMessage({ jid: this.me, type: enc.type, ciphertext: fromB64(enc.ciphertext) }));
  }

  private async peerDecryptGroup(device: PeerDevice, group: string, ciphertext: string): Promise<proto.Message> {
    return decode(await device.phone.repository.decryptGroupMessage({ group, authorJid: this.me, msg: fromB64(ciphertext) }));
  }

  private async processSenderKey(device: PeerDevice, group: string, message: proto.Message): Promise<void> {
    const item = message.senderKeyDistributionMessage;
    if (item?.groupId !== group) throw new Error(`${device.jid} got no sender key for ${group}`);
    await device.phone.repository.processSenderKeyDistributionMessage({ item, authorJid: this.me });
  }

  /** The bot's bundle as the server serves it: one of its uploaded one-time pre-keys (none left: without one). */
  private async serverBundle(): Promise<WireBundle> {
    await this.replenish();
    const next = this.pool.entries().next();
    if (next.done) return this.botBundle!;
    const [keyId, publicKey] = next.value;
    this.pool.delete(keyId);
    return { ...this.botBundle!, preKey: { keyId, publicKey } };
  }

  /** The server's pre-key-low notification: the bot uploads a batch (ids it reuses replace the server's old ones). */
  private async replenish(): Promise<void> {
    if (this.pool.size >= POOL_LOW) return;
    const answer = await this.ask('upload', { count: UPLOAD_BATCH });
    for (const key of answer['preKeys'] as Array<{ keyId: number; publicKey: string }>) this.pool.set(key.keyId, key.publicKey);
  }

  /** A device's bundle from the server: a fresh one-time pre-key of its phone. */
  private async peerBundle(device: PeerDevice) {
    const id = device.phone.creds.nextPreKeyId++;
    const pair = Curve.generateKeyPair();
    await device.phone.keys.set({ 'pre-key': { [id]: pair } });
    return bundleOf(device.phone.creds, { id, public: pair.public });
  }

  private makePeer(): Peer {
    const user = `${this.digits(14)}`;
    const number = `55119${String(++this.numbers).padStart(8, '0')}`;
    const count = 1 + Math.floor(this.random() * this.maxDevices);
    const devices = Array.from({ length: count }, (_, index) => ({
      jid: index === 0 ? `${user}@lid` : `${user}:${index}@lid`,
      phone: newDevice(),
    }));
    return { lid: `${user}@lid`, pn: `${number}@s.whatsapp.net`, devices };
  }

  private async ask(op: string, args: Record<string, unknown> = {}): Promise<Answer> {
    if (!this.link) throw new Error('the conversation is not attached to a bot');
    try {
      return await this.link.request(op, args);
    } catch (error) {
      if (op === 'decrypt' && error instanceof BotGone) this.offline.push(args);
      throw error;
    }
  }

  private expect(got: string | null | undefined | proto.Message, text: string, what: string): void {
    const value = typeof got === 'object' && got !== null ? got.conversation : got;
    if (value !== text) throw new Error(`${what}: decrypted ${JSON.stringify(value)}, sent ${JSON.stringify(text)}`);
  }

  private pickOperation(): Operation {
    return pickWeighted(this.random, OPERATION_WEIGHTS);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private digits(count: number): string {
    let out = String(1 + Math.floor(this.random() * 9));
    while (out.length < count) out += String(Math.floor(this.random() * 10));
    return out;
  }

  private text(): string {
    return `message ${++this.sent} ${this.random().toString(36).slice(2, 8)}`;
  }
}

/** A one-line summary of a report, for logs and assertion messages. */
export function describeReport(report: ContinuityReport): string {
  const broken = report.chats.filter((chat) => chat.outcome !== 'ok');
  const direction = (report: DirectionReport) =>
    report.outcome === 'ok'
      ? 'ok'
      : `${report.outcome} after ${report.retries} retry receipt${report.retries === 1 ? '' : 's'} (${report.error ?? 'wrong text'})`;
  const details = broken.map((chat) => `${chat.kind} ${chat.chat}: to bot ${direction(chat.toBot)}, from bot ${direction(chat.fromBot)}`);
  return (
    `${report.chats.length} chats, ${report.broken} broken (${report.recovered} recovered by ` +
    `retry receipts, ${report.lost} lost)${details.length ? `: ${details.join('; ')}` : ''}`
  );
}
