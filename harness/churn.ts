// A "churning bot": changes an auth directory exactly the way a live Baileys bot does, by running
// Baileys' own Signal repository over useMultiFileAuthState (with addTransactionCapability, as
// makeSocket wraps the keys). Nothing here writes a file itself: every byte on disk is written or
// deleted by Baileys, through the calls its socket makes, concurrent where the socket's are.
//
// The rest of WhatsApp is simulated in memory: contacts are real Baileys Signal repositories
// (their own initAuthCreds and a Map-backed key store), and "the server" is the pool of the bot's
// uploaded one-time pre-keys plus a PN → LID directory (what USync answers). One world per
// directory lives for the whole process, so a bot reopened from disk (ChurnBot.open on the same
// directory) still talks to the contacts and groups it knew: proof that the disk state is coherent.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  addTransactionCapability,
  BufferJSON,
  Curve,
  DEFAULT_CONNECTION_CONFIG,
  encodeWAMessage,
  generateSignalPubKey,
  getNextPreKeys,
  initAuthCreds,
  jidNormalizedUser,
  proto,
  unpadRandomMax16,
  useMultiFileAuthState,
  type AuthenticationCreds,
  type LIDMapping,
  type SignalCreds,
  type SignalDataSet,
  type SignalDataTypeMap,
  type SignalKeyStore,
  type SignalKeyStoreWithTransaction,
  type SignalRepository,
  type SignalRepositoryWithLIDStore,
} from '@whiskeysockets/baileys';
// Not re-exported from the package root; the package has no `exports` map, so the deep import works.
import { makeLibSignalRepository } from '@whiskeysockets/baileys/lib/Signal/libsignal.js';
import { pino } from 'pino';
import { REGISTERED_JID, type AuthState } from './baileys.js';

type E2ESession = Parameters<SignalRepository['injectE2ESession']>[0]['session'];
type Encrypted = Awaited<ReturnType<SignalRepository['encryptMessage']>>;

const logger = pino({ level: 'silent' });

/** What the pool of uploaded pre-keys must not fall below before the bot uploads more. */
const REPLENISH_BELOW = 10;
/** Contacts the world grows to; after that, "new contacts" are existing ones who reinstalled WhatsApp. */
const MAX_CONTACTS = 50;
const MAX_GROUPS = 5;
/** History-sync notifications stop after the first few chunks; this keeps creds.json bounded. */
const MAX_HISTORY_CHUNKS = 8;
/** Steps burst() runs at once, as a bot handles a few messages at a time. */
const BURST_CONCURRENCY = 4;

/** How often each operation is picked; preconditions (contacts, groups) may turn one into another. */
const WEIGHTS = {
  'new-contact': 22,
  'bot-initiates': 6,
  chat: 30,
  'group-send': 16,
  'group-receive': 12,
  creds: 14,
} as const;
type Operation = keyof typeof WEIGHTS;

/** A contact's phone: real Baileys Signal state, kept in memory. */
export interface Device {
  creds: AuthenticationCreds;
  keys: SignalKeyStoreWithTransaction;
  repository: SignalRepositoryWithLIDStore;
  /** Groups in which the bot already got this device's sender key. */
  gaveSenderKey: Set<string>;
}

interface Contact {
  /** `<number>@s.whatsapp.net` */
  pn: string;
  /** `<lid>@lid`: how WhatsApp addresses the contact to the bot. */
  lid: string;
  device: Device;
}

interface Group {
  jid: string;
  members: Contact[];
}

/** Everything outside the bot's directory: the server's directory and the bot's contacts and groups. */
interface World {
  locks: Locks;
  contacts: Map<string, Contact>;
  groups: Map<string, Group>;
  /** PN → LID, what a USync query would answer (also for people the bot never talked to). */
  directory: Map<string, string>;
}

const worlds = new Map<string, World>();
/** The lock key of the bot's incoming stanzas (no jid looks like it). */
const INCOMING = 'incoming';

/** mulberry32: a tiny seeded PRNG, enough to make the sequence of choices reproducible. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A key of `weights`, drawn with probability proportional to its weight. */
export function pickWeighted<K extends string>(random: () => number, weights: Readonly<Record<K, number>>): K {
  const entries = Object.entries(weights) as Array<[K, number]>;
  let roll = random() * entries.reduce((sum, [, weight]) => sum + weight, 0);
  for (const [key, weight] of entries) {
    roll -= weight;
    if (roll < 0) return key;
  }
  return entries[0]![0];
}

/** A SignalKeyStore for contacts, storing values as useMultiFileAuthState does (a BufferJSON round trip). */
function memoryKeyStore(): SignalKeyStore {
  const entries = new Map<string, string>();
  return {
    async get<T extends keyof SignalDataTypeMap>(type: T, ids: string[]) {
      const found: { [id: string]: SignalDataTypeMap[T] } = {};
      for (const id of ids) {
        const json = entries.get(`${type}-${id}`);
        if (json !== undefined) found[id] = JSON.parse(json, BufferJSON.reviver) as SignalDataTypeMap[T];
      }
      return found;
    },
    async set(data: SignalDataSet) {
      for (const [type, values] of Object.entries(data)) {
        for (const [id, value] of Object.entries(values ?? {})) {
          if (value) entries.set(`${type}-${id}`, JSON.stringify(value, BufferJSON.replacer));
          else entries.delete(`${type}-${id}`);
        }
      }
    },
  };
}

/**
 * The repository calls keys.transaction, but a phone needs no atomicity: nothing else reads its
 * store. Not addTransactionCapability, whose AsyncLocalStorage breaks here: libsignal queues session
 * jobs in a process-global map keyed by address, and every phone addresses the bot alike, so one
 * phone's job can run in another's async context, i.e. in a stale transaction whose writes are lost.
 * (Each instance also slows every promise on Node < 24, where AsyncLocalStorage uses async_hooks.)
 */
function withoutTransactions(store: SignalKeyStore): SignalKeyStoreWithTransaction {
  return { ...store, isInTransaction: () => false, transaction: (work) => work() };
}

/** A phone with fresh Signal state (its own identity), kept in memory only. */
export function newDevice(): Device {
  const creds = initAuthCreds();
  const keys = withoutTransactions(memoryKeyStore());
  return { creds, keys, repository: makeLibSignalRepository({ creds, keys }, logger), gaveSenderKey: new Set() };
}

/** The pre-key bundle the server hands out, in the form parseAndInjectE2ESessions builds from its reply. */
export function bundleOf(creds: SignalCreds, preKey?: { id: number; public: Uint8Array }): E2ESession {
  return {
    registrationId: creds.registrationId,
    identityKey: generateSignalPubKey(creds.signedIdentityKey.public),
    signedPreKey: {
      keyId: creds.signedPreKey.keyId,
      publicKey: generateSignalPubKey(creds.signedPreKey.keyPair.public),
      signature: creds.signedPreKey.signature,
    },
    ...(preKey ? { preKey: { keyId: preKey.id, publicKey: generateSignalPubKey(preKey.public) } } : {}),
  };
}

function decode(plaintext: Uint8Array): proto.Message {
  return proto.Message.decode(unpadRandomMax16(plaintext));
}

function expectText(message: proto.IMessage, text: string, what: string): void {
  if (message.conversation !== text)
    throw new Error(`${what}: decrypted ${JSON.stringify(message.conversation)}, sent ${JSON.stringify(text)}`);
}

function skdmMessage(group: string, skdm: Uint8Array): proto.IMessage {
  return { senderKeyDistributionMessage: { groupId: group, axolotlSenderKeyDistributionMessage: skdm } };
}

/**
 * Per-key FIFO locks, so that two concurrent steps never talk to the same contact at once (a
 * contact's phone handles its messages in order). Callers take a group's lock before its members'
 * and members in sorted order, so no two steps wait on each other.
 */
class Locks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    try {
      for (const key of keys) releases.push(await this.acquire(key));
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  private async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => held);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}

export interface ChurnOptions {
  /** Pre-keys per upload, initial and on replenishing (default 50). */
  preKeys?: number;
  /** Makes the sequence of choices reproducible (sequential steps); default random. */
  seed?: number;
}

export class ChurnBot {
  private readonly random: () => number;
  private readonly inFlight = new Set<Promise<string>>();
  /** The bot's pre-keys the server still holds (uploaded, not handed out yet), lowest id first. */
  private readonly serverPreKeys = new Map<number, Uint8Array>();
  private upload: Promise<string> | null = null;
  private closed = false;
  private sent = 0;

  private constructor(
    readonly dir: string,
    private readonly auth: AuthState,
    private readonly keys: SignalKeyStoreWithTransaction,
    private readonly repository: SignalRepositoryWithLIDStore,
    private readonly world: World,
    private readonly batch: number,
    /** The seed in use, to reproduce a run. */
    readonly seed: number,
  ) {
    this.random = mulberry32(seed);
  }

  /** Opens (and pairs, if needed) the bot's directory. One ChurnBot per directory at a time. */
  static async open(dir: string, options: ChurnOptions = {}): Promise<ChurnBot> {
    const auth = await useMultiFileAuthState(dir);
    const { creds } = auth.state;
    if (!creds.me) {
      creds.me = { id: REGISTERED_JID, name: 'Keeper Test' };
      creds.registered = true;
      await auth.saveCreds();
    }
    const absolute = path.resolve(dir);
    let world = worlds.get(absolute);
    if (!world) {
      world = { locks: new Locks(), contacts: new Map(), groups: new Map(), directory: new Map() };
      worlds.set(absolute, world);
    }
    const directory = world.directory;
    // The pnToLIDFunc makeSocket passes is a USync query; here the world's directory answers it.
    const usync = async (jids: string[]): Promise<LIDMapping[] | undefined> => {
      const found = jids.flatMap((pn) => {
        const lid = directory.get(pn);
        return lid ? [{ pn, lid }] : [];
      });
      return found.length > 0 ? found : undefined;
    };
    const keys = addTransactionCapability(auth.state.keys, logger, DEFAULT_CONNECTION_CONFIG.transactionOpts);
    const repository = makeLibSignalRepository({ creds, keys }, logger, usync);
    const batch = options.preKeys ?? 50;
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`preKeys must be a positive integer, not ${batch}`);
    const seed = options.seed ?? randomBytes(4).readUInt32LE();
    const bot = new ChurnBot(dir, auth, keys, repository, world, batch, seed);
    await bot.loadServerPreKeys();
    // What uploadPreKeysToServerIfRequired does on connect: upload when the server runs low.
    if (bot.preKeysLow()) await bot.replenish();
    return bot;
  }

  /** The LIDs of the contacts the bot has a session with (and whose phones the world still has). */
  get contacts(): string[] {
    return [...this.world.contacts.keys()];
  }

  /** The jids of the groups the bot is in. */
  get groups(): string[] {
    return [...this.world.groups.keys()];
  }

  /** Performs one random mutation, as a live bot would, and returns a short label of what it did. */
  step(): Promise<string> {
    return this.track(() => this.randomStep());
  }

  /** `n` steps as fast as possible, a few at a time; resolves with their labels. */
  async burst(n: number): Promise<string[]> {
    const labels: string[] = [];
    let started = 0;
    let failure: unknown = null;
    const worker = async (): Promise<void> => {
      while (started < n && failure === null) {
        started++;
        try {
          labels.push(await this.step());
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BURST_CONCURRENCY, n) }, worker));
    if (failure !== null) throw failure;
    return labels;
  }

  /** Messages both ways with one contact (its LID; default a random one). Throws if any fails to decrypt. */
  chat(contact?: string): Promise<string> {
    return this.track(() => this.chatWith(contact === undefined ? this.pick([...this.world.contacts.values()]) : this.contact(contact)));
  }

  /** Sends to a group (its jid; default a random one); every member must decrypt it. */
  sendToGroup(group?: string): Promise<string> {
    return this.track(() => {
      const chosen = group === undefined ? this.pick([...this.world.groups.values()]) : this.world.groups.get(group);
      if (!chosen) throw new Error(`no group ${group ?? ''}`);
      return this.groupSend(chosen);
    });
  }

  /** saveCreds() of the bot's useMultiFileAuthState, as a bot does on creds.update. */
  saveCreds(): Promise<void> {
    return this.auth.saveCreds();
  }

  /** Waits for the steps in progress, then closes the bot's repository. The world stays for a reopen. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    this.repository.close?.();
  }

  private get creds(): AuthenticationCreds {
    return this.auth.state.creds;
  }

  /** The bot's own jid, as contacts address it and as its groups' sender. */
  private get me(): string {
    return this.creds.me!.id;
  }

  private async track(work: () => Promise<string>): Promise<string> {
    if (this.closed) throw new Error('ChurnBot is closed');
    const running = work();
    this.inFlight.add(running);
    try {
      return await running;
    } finally {
      this.inFlight.delete(running);
    }
  }

  private randomStep(): Promise<string> {
    // The server's "pre-keys low" notification makes the bot upload; one upload at a time.
    if (this.preKeysLow() && !this.upload) return this.replenish();
    const contacts = [...this.world.contacts.values()];
    const groups = [...this.world.groups.values()];
    const operation = this.pickOperation();
    if (operation === 'creds') return this.credsUpdate();
    if (operation === 'bot-initiates' && this.world.contacts.size < MAX_CONTACTS) return this.botInitiates();
    if (operation === 'new-contact' || operation === 'bot-initiates' || contacts.length === 0) return this.newContact();
    if (operation === 'chat') return this.chatWith(this.pick(contacts));
    if (operation === 'group-send') {
      const createGroup = groups.length === 0 || (groups.length < MAX_GROUPS && this.chance(0.1));
      if (createGroup && contacts.length >= 2) return this.groupSend(this.createGroup(contacts));
      if (groups.length > 0) return this.groupSend(this.pick(groups));
      return this.chatWith(this.pick(contacts));
    }
    const group = groups.length > 0 ? this.pick(groups) : null;
    return group ? this.groupReceive(group, this.pick(group.members)) : this.chatWith(this.pick(contacts));
  }

  // ---- operations -----------------------------------------------------------------------------

  /**
   * A new contact writes first: it fetches the bot's bundle (with one of its one-time pre-keys) from
   * the server and sends a pkmsg. Decrypting it writes session-, identity-key- and lid-mapping- files
   * and deletes the used pre-key-N.json. Past MAX_CONTACTS, an existing contact reinstalls WhatsApp
   * instead (a new identity: Baileys deletes the old session and rewrites identity-key).
   */
  private async newContact(): Promise<string> {
    const reinstall = this.world.contacts.size >= MAX_CONTACTS;
    const contact = reinstall ? this.pick([...this.world.contacts.values()]) : this.makeContact();
    return this.world.locks.run([contact.lid], async () => {
      if (reinstall) {
        contact.device.repository.close?.();
        contact.device = newDevice();
      }
      const preKey = this.handOutPreKey();
      await contact.device.repository.injectE2ESession({ jid: this.me, session: bundleOf(this.creds, preKey) });
      const hello = this.text();
      const [received] = await this.receive(contact, [await this.peerEncrypt(contact, { conversation: hello })]);
      expectText(received!, hello, `pkmsg from ${contact.lid}`);
      this.world.contacts.set(contact.lid, contact);
      await this.reply(contact);
      if (!reinstall) this.maybeJoinGroup(contact);
      return `${reinstall ? 'reinstall' : 'new-contact'} ${contact.lid} pre-key ${preKey?.id ?? 'none'}`;
    });
  }

  /**
   * The bot writes to someone it never talked to: a USync lookup (pnToLIDFunc) stores the LID
   * mapping, the device list is stored, the contact's bundle is injected and the bot sends a pkmsg.
   */
  private async botInitiates(): Promise<string> {
    const contact = this.makeContact();
    return this.world.locks.run([contact.lid], async () => {
      const [mapping] = (await this.repository.lidMapping.getLIDsForPNs([contact.pn])) ?? [];
      if (mapping?.lid !== contact.lid) throw new Error(`USync did not map ${contact.pn} to ${contact.lid}`);
      await this.keys.set({ 'device-list': { [contact.pn.split('@')[0]!]: ['0'] } });
      await this.repository.injectE2ESession({ jid: mapping.lid, session: await this.peerBundle(contact.device) });
      const hello = this.text();
      const encrypted = await this.botEncrypt(contact, { conversation: hello });
      if (encrypted.type !== 'pkmsg') throw new Error(`first message to ${contact.lid} is a ${encrypted.type}`);
      expectText(await this.deliver(contact, encrypted), hello, `pkmsg to ${contact.lid}`);
      this.world.contacts.set(contact.lid, contact);
      const answer = this.text();
      const [received] = await this.receive(contact, [await this.peerEncrypt(contact, { conversation: answer })]);
      expectText(received!, answer, `reply from ${contact.lid}`);
      this.maybeJoinGroup(contact);
      return `bot-initiates ${contact.lid}`;
    });
  }

  /** A few messages each way with an existing contact: the session ratchets on every one. */
  private chatWith(contact: Contact): Promise<string> {
    return this.world.locks.run([contact.lid], async () => {
      const fromContact = 1 + Math.floor(this.random() * 2);
      for (let i = 0; i < fromContact; i++) {
        const text = this.text();
        const [received] = await this.receive(contact, [await this.peerEncrypt(contact, { conversation: text })]);
        expectText(received!, text, `message from ${contact.lid}`);
      }
      const fromBot = await this.reply(contact);
      return `chat ${contact.lid} ${fromContact}+${fromBot}`;
    });
  }

  /**
   * The bot sends to a group, as relayMessage does: encryptGroupMessage (the bot's sender-key file),
   * the sender key distributed 1:1 to members not yet in sender-key-memory, then sender-key-memory
   * stored. A member who cannot decrypt (it reinstalled WhatsApp) sends a retry receipt.
   */
  private groupSend(group: Group): Promise<string> {
    const members = [...group.members].sort((a, b) => (a.lid < b.lid ? -1 : 1));
    return this.world.locks.run([group.jid, ...members.map((member) => member.lid)], async () => {
      const text = this.text();
      // useMultiFileAuthState answers null for a missing key
      const memory = (await this.keys.get('sender-key-memory', [group.jid]))[group.jid] ?? {};
      const { ciphertext, senderKeyDistributionMessage } = await this.repository.encryptGroupMessage({
        group: group.jid,
        meId: this.me,
        data: encodeWAMessage({ conversation: text }),
      });
      const recipients = members.filter((member) => !memory[member.lid]);
      // createParticipantNodes encrypts for all recipients concurrently.
      const distributed = await Promise.all(
        recipients.map((member) => this.botEncrypt(member, skdmMessage(group.jid, senderKeyDistributionMessage))),
      );
      for (const member of recipients) memory[member.lid] = true;
      await this.keys.set({ 'sender-key-memory': { [group.jid]: memory } });
      const retries: Contact[] = [];
      for (const member of members) {
        const index = recipients.indexOf(member);
        if (index >= 0) await this.processSenderKey(member, group.jid, await this.deliver(member, distributed[index]!));
        if (await member.device.repository.hasSenderKey({ group: group.jid, meId: this.me })) {
          const received = decode(
            await member.device.repository.decryptGroupMessage({ group: group.jid, authorJid: this.me, msg: ciphertext }),
          );
          expectText(received, text, `group message to ${member.lid}`);
        } else {
          retries.push(member);
        }
      }
      for (const member of retries) await this.resendTo(group, member, text);
      return `group-send ${group.jid} skdm ${recipients.length}/${members.length}${retries.length ? ` retry ${retries.length}` : ''}`;
    });
  }

  /**
   * The retry receipt path (messages-recv sendMessagesAgain): sender-key-memory is deleted, then the
   * message is re-encrypted for that participant with the sender key, and the memory stored again
   * holding only that participant.
   */
  private async resendTo(group: Group, member: Contact, text: string): Promise<void> {
    await this.keys.set({ 'sender-key-memory': { [group.jid]: null } });
    const { ciphertext, senderKeyDistributionMessage } = await this.repository.encryptGroupMessage({
      group: group.jid,
      meId: this.me,
      data: encodeWAMessage({ conversation: text }),
    });
    const distributed = await this.botEncrypt(member, skdmMessage(group.jid, senderKeyDistributionMessage));
    await this.keys.set({ 'sender-key-memory': { [group.jid]: { [member.lid]: true } } });
    await this.processSenderKey(member, group.jid, await this.deliver(member, distributed));
    const received = decode(await member.device.repository.decryptGroupMessage({ group: group.jid, authorJid: this.me, msg: ciphertext }));
    expectText(received, text, `resent group message to ${member.lid}`);
  }

  /** A member writes to a group: the bot gets its sender key 1:1 the first time, then the skmsg. */
  private groupReceive(group: Group, sender: Contact): Promise<string> {
    return this.world.locks.run([group.jid, sender.lid], async () => {
      const text = this.text();
      const { ciphertext, senderKeyDistributionMessage } = await sender.device.repository.encryptGroupMessage({
        group: group.jid,
        meId: sender.lid,
        data: encodeWAMessage({ conversation: text }),
      });
      const encs: Encrypted[] = [];
      if (!sender.device.gaveSenderKey.has(group.jid)) {
        encs.push(await this.peerEncrypt(sender, skdmMessage(group.jid, senderKeyDistributionMessage)));
        sender.device.gaveSenderKey.add(group.jid);
      }
      const messages = await this.receive(sender, encs, { group: group.jid, ciphertext });
      expectText(messages.at(-1)!, text, `group message from ${sender.lid}`);
      return `group-receive ${group.jid} from ${sender.lid}${encs.length ? ' skdm' : ''}`;
    });
  }

  /** Whether the server would report the pre-keys low (never more than a batch, or every step uploads). */
  private preKeysLow(): boolean {
    return this.serverPreKeys.size < Math.min(REPLENISH_BELOW, this.batch);
  }

  /** uploadPreKeys: getNextPreKeys in a transaction, creds.update, saveCreds; the server then holds them. */
  private replenish(): Promise<string> {
    this.upload ??= (async () => {
      try {
        const preKeys = await this.keys.transaction(async () => {
          const { update, preKeys } = await getNextPreKeys({ creds: this.creds, keys: this.keys }, this.batch);
          Object.assign(this.creds, update);
          return preKeys;
        }, this.me);
        await this.auth.saveCreds();
        const ids = Object.keys(preKeys)
          .map(Number)
          .sort((a, b) => a - b);
        for (const id of ids) this.serverPreKeys.set(id, preKeys[id]!.public);
        return `pre-keys +${ids.length} ${ids[0]}..${ids.at(-1)}`;
      } finally {
        this.upload = null;
      }
    })();
    return this.upload;
  }

  /** A creds.update Baileys emits while running, saved as bots do (ev.on('creds.update', saveCreds)). */
  private async credsUpdate(): Promise<string> {
    const { creds } = this;
    const now = Math.floor(Date.now() / 1000);
    let field: string;
    const kind = Math.floor(this.random() * 4);
    if (kind === 0) {
      // the edge routing info the server sends on each connection
      creds.routingInfo = randomBytes(16 + Math.floor(this.random() * 16));
      field = 'routingInfo';
    } else if (kind === 1) {
      // the hash of the A/B props fetched from the server
      creds.lastPropHash = randomBytes(4).toString('hex');
      field = 'lastPropHash';
    } else if (kind === 2 && creds.processedHistoryMessages.length < MAX_HISTORY_CHUNKS) {
      // a history sync notification processed
      const key = { remoteJid: jidNormalizedUser(this.me), fromMe: true, id: randomBytes(10).toString('hex').toUpperCase() };
      creds.processedHistoryMessages = [...creds.processedHistoryMessages, { key, messageTimestamp: now }];
      field = 'processedHistoryMessages';
    } else {
      // an account sync, counted in creds (Baileys 7 declares these fields but no longer updates them)
      creds.accountSyncCounter++;
      creds.lastAccountSyncTimestamp = now;
      field = 'accountSyncCounter';
    }
    await this.auth.saveCreds();
    return `creds ${field}`;
  }

  // ---- the bot's side of the wire ------------------------------------------------------------

  /**
   * What Baileys does with one incoming stanza from `contact` (messages-recv, decryptMessageNode):
   * the stanza's PN alt address stores the LID mapping (and migrates PN sessions), then each enc is
   * decrypted in order, sender keys processed, and finally the group's skmsg. Baileys decrypts
   * incoming stanzas one at a time (its messageMutex); so does this.
   */
  private receive(contact: Contact, encs: Encrypted[], skmsg?: { group: string; ciphertext: Uint8Array }): Promise<proto.Message[]> {
    return this.world.locks.run([INCOMING], async () => {
      await this.repository.lidMapping.storeLIDPNMappings([{ lid: contact.lid, pn: contact.pn }]);
      await this.repository.migrateSession(contact.pn, contact.lid);
      const messages: proto.Message[] = [];
      for (const { type, ciphertext } of encs) {
        const message = decode(await this.repository.decryptMessage({ jid: contact.lid, type, ciphertext }));
        if (message.senderKeyDistributionMessage) {
          await this.repository.processSenderKeyDistributionMessage({ item: message.senderKeyDistributionMessage, authorJid: contact.lid });
        }
        messages.push(message);
      }
      if (skmsg) {
        messages.push(
          decode(await this.repository.decryptGroupMessage({ group: skmsg.group, authorJid: contact.lid, msg: skmsg.ciphertext })),
        );
      }
      return messages;
    });
  }

  private botEncrypt(contact: Contact, message: proto.IMessage): Promise<Encrypted> {
    return this.repository.encryptMessage({ jid: contact.lid, data: encodeWAMessage(message) });
  }

  /** One or two messages from the bot, each decrypted by the contact; returns how many. */
  private async reply(contact: Contact): Promise<number> {
    const count = 1 + Math.floor(this.random() * 2);
    for (let i = 0; i < count; i++) {
      const text = this.text();
      expectText(await this.deliver(contact, await this.botEncrypt(contact, { conversation: text })), text, `message to ${contact.lid}`);
    }
    return count;
  }

  // ---- the contacts' side and the server -----------------------------------------------------

  private peerEncrypt(contact: Contact, message: proto.IMessage): Promise<Encrypted> {
    return contact.device.repository.encryptMessage({ jid: this.me, data: encodeWAMessage(message) });
  }

  /** The contact's phone decrypts a message from the bot. */
  private async deliver(contact: Contact, { type, ciphertext }: Encrypted): Promise<proto.Message> {
    return decode(await contact.device.repository.decryptMessage({ jid: this.me, type, ciphertext }));
  }

  private async processSenderKey(member: Contact, group: string, message: proto.Message): Promise<void> {
    const item = message.senderKeyDistributionMessage;
    if (item?.groupId !== group) throw new Error(`${member.lid} got no sender key for ${group}`);
    await member.device.repository.processSenderKeyDistributionMessage({ item, authorJid: this.me });
  }

  /** The server hands out one of the bot's one-time pre-keys (none left: a bundle without one). */
  private handOutPreKey(): { id: number; public: Uint8Array } | undefined {
    const next = this.serverPreKeys.entries().next();
    if (next.done) return undefined;
    const [id, publicKey] = next.value;
    this.serverPreKeys.delete(id);
    return { id, public: publicKey };
  }

  /** A contact's bundle as the server returns it: a fresh one-time pre-key of its phone. */
  private async peerBundle(device: Device): Promise<E2ESession> {
    const id = device.creds.nextPreKeyId++;
    const pair = Curve.generateKeyPair();
    await device.keys.set({ 'pre-key': { [id]: pair } });
    return bundleOf(device.creds, { id, public: pair.public });
  }

  /**
   * What the server holds: the bot's uploaded pre-keys (below firstUnuploadedPreKeyId) still on disk.
   * Those handed out to a contact whose message never arrived would be gone from the server too;
   * every step delivers its message, so between steps there are none.
   */
  private async loadServerPreKeys(): Promise<void> {
    const ids = (await readdir(this.dir))
      .map((name) => /^pre-key-(\d+)\.json$/.exec(name)?.[1])
      .filter((id): id is string => id !== undefined && Number(id) < this.creds.firstUnuploadedPreKeyId)
      .sort((a, b) => Number(a) - Number(b));
    const stored = await this.keys.get('pre-key', ids);
    for (const id of ids) {
      const pair = stored[id];
      if (pair) this.serverPreKeys.set(Number(id), pair.public);
    }
  }

  private makeContact(): Contact {
    let pn: string;
    do pn = `55${this.digits(2, 1)}9${this.digits(8)}@s.whatsapp.net`;
    while (this.world.directory.has(pn));
    const lid = `${this.digits(14, 1)}@lid`;
    this.world.directory.set(pn, lid);
    return { pn, lid, device: newDevice() };
  }

  private createGroup(contacts: Contact[]): Group {
    const size = Math.min(contacts.length, 2 + Math.floor(this.random() * 5));
    const members = new Set<Contact>();
    while (members.size < size) members.add(this.pick(contacts));
    const group = { jid: `120363${this.digits(12, 1)}@g.us`, members: [...members] };
    this.world.groups.set(group.jid, group);
    return group;
  }

  /**
   * A new contact sometimes joins a group (whose next send gives it the bot's sender key). A group
   * created by a concurrent step may already hold it: a member twice would deadlock on its own lock.
   */
  private maybeJoinGroup(contact: Contact): void {
    const groups = [...this.world.groups.values()].filter((group) => !group.members.includes(contact));
    if (groups.length > 0 && this.chance(0.3)) this.pick(groups).members.push(contact);
  }

  private contact(lid: string): Contact {
    const contact = this.world.contacts.get(lid);
    if (!contact) throw new Error(`no contact ${lid}`);
    return contact;
  }

  // ---- randomness ------------------------------------------------------------------------------

  private pickOperation(): Operation {
    return pickWeighted(this.random, WEIGHTS);
  }

  private pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.random() * items.length)];
    if (item === undefined) throw new Error('nothing to pick from');
    return item;
  }

  private chance(probability: number): boolean {
    return this.random() < probability;
  }

  /** `count` random decimal digits, the first at least `min`. */
  private digits(count: number, min = 0): string {
    let out = String(min + Math.floor(this.random() * (10 - min)));
    while (out.length < count) out += String(Math.floor(this.random() * 10));
    return out;
  }

  private text(): string {
    return `churn ${++this.sent} ${this.random().toString(36).slice(2)}`;
  }
}
