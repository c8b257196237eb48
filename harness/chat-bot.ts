// A bot process for conversation tests: the bot's side of every chat, on the real useMultiFileAuthState
// directory with Baileys' own Signal repository (wrapped by addTransactionCapability, as makeSocket
// does), so every byte on disk is written by Baileys, and SIGTERM/SIGKILL hit a real process.
// Usage: node chat-bot.js <dir> --socket <path>
//   Listens on a unix socket for JSON lines {id, op, ...} and answers {id, ok, ...} or {id, error}, one
//   request at a time (Baileys handles stanzas one by one: its messageMutex). Prints `ready` once the
//   directory is open. On SIGTERM/SIGINT it finishes the request in progress, refuses new ones, saves
//   the creds one last time, prints `stopped <requests>` and exits 0. An answer is sent only once the
//   keys it changed are written (the repository's transaction commits through keys.set).
// The operations are what a socket does with a stanza (see ./conversation.ts for the other side):
//   hello                      the bot's identity and signed pre-key (what the server serves in bundles)
//   upload {count}             uploadPreKeys: getNextPreKeys in a transaction, creds saved
//   decrypt {lid, pn, encs, skmsg?}  decryptMessageNode: LID mapping stored, each enc decrypted (sender
//                              keys processed), then the group's skmsg; a failure answers {error}
//   retryReceipt {jid, count}  sendRetryRequest after a failed decrypt: the registration id, and from
//                              the second retry on the session deleted and a fresh pre-key bundle included
//   encrypt {jid, text}        one 1:1 message
//   inject {jid, bundle}       a session from a bundle (assertSessions after a USync/pre-key fetch)
//   groupEncrypt {group, text, members}  relayMessage to a group: sender key message, SKDM 1:1 to the
//                              member devices not in sender-key-memory, memory stored
//   resend {jid, text, group?, bundle}   sendMessagesAgain after a retry receipt: a session from the
//                              receipt's bundle (or the server's fresh one), then the message re-sent
import { Console } from 'node:console';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { parseArgs } from 'node:util';
import {
  addTransactionCapability,
  DEFAULT_CONNECTION_CONFIG,
  encodeWAMessage,
  generateSignalPubKey,
  getNextPreKeys,
  proto,
  unpadRandomMax16,
} from '@whiskeysockets/baileys';
import { makeLibSignalRepository } from '@whiskeysockets/baileys/lib/Signal/libsignal.js';
import { pino } from 'pino';
import { openAuth, register } from './baileys.js';
import { b64, fromB64 as bytes, toSession, type WireBundle, type WireEnc } from './signal-wire.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { socket: { type: 'string' } } });
const dir = positionals[0];
if (!dir || positionals.length > 1 || !values.socket) {
  process.stderr.write('usage: chat-bot <dir> --socket <path>\n');
  process.exit(2);
}
const socketPath = values.socket;
// stdout carries only `ready` and `stopped`: libsignal prints session dumps with console.info.
globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });

const logger = pino({ level: 'silent' });
const auth = await openAuth(dir);
if (!auth.state.creds.me) await register(auth);
const { creds } = auth.state;
const me = creds.me!.id;
const keys = addTransactionCapability(auth.state.keys, logger, DEFAULT_CONNECTION_CONFIG.transactionOpts);
const repository = makeLibSignalRepository({ creds, keys }, logger);

function ownBundle(preKey?: { keyId: number; public: Uint8Array }): WireBundle {
  return {
    registrationId: creds.registrationId,
    identityKey: b64(generateSignalPubKey(creds.signedIdentityKey.public)),
    signedPreKey: {
      keyId: creds.signedPreKey.keyId,
      publicKey: b64(generateSignalPubKey(creds.signedPreKey.keyPair.public)),
      signature: b64(creds.signedPreKey.signature),
    },
    ...(preKey ? { preKey: { keyId: preKey.keyId, publicKey: b64(generateSignalPubKey(preKey.public)) } } : {}),
  };
}

function decode(plaintext: Uint8Array): proto.Message {
  return proto.Message.decode(unpadRandomMax16(plaintext));
}

async function encrypt(jid: string, message: proto.IMessage): Promise<WireEnc> {
  const { type, ciphertext } = await repository.encryptMessage({ jid, data: encodeWAMessage(message) });
  return { type, ciphertext: b64(ciphertext) };
}

/** getNextPreKeys + creds.update → saveCreds, as uploadPreKeys and sendRetryRequest do. */
async function nextPreKeys(count: number): Promise<Array<{ keyId: number; public: Uint8Array }>> {
  const preKeys = await keys.transaction(async () => {
    const { update, preKeys } = await getNextPreKeys({ creds, keys }, count);
    Object.assign(creds, update);
    return preKeys;
  }, me);
  await auth.saveCreds();
  return Object.entries(preKeys).map(([id, pair]) => ({ keyId: Number(id), public: pair.public }));
}

/** relayMessage to a group for `members` (device jids): SKDM to those not in sender-key-memory. */
async function groupEncrypt(group: string, text: string, members: string[], forget: boolean) {
  if (forget) await keys.set({ 'sender-key-memory': { [group]: null } });
  const memory = (await keys.get('sender-key-memory', [group]))[group] ?? {};
  const { ciphertext, senderKeyDistributionMessage } = await repository.encryptGroupMessage({
    group,
    meId: me,
    data: encodeWAMessage({ conversation: text }),
  });
  const recipients = members.filter((member) => !memory[member]);
  const skdm = { senderKeyDistributionMessage: { groupId: group, axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage } };
  const skdms: Record<string, WireEnc> = {};
  for (const [i, enc] of (await Promise.all(recipients.map((member) => encrypt(member, skdm)))).entries()) skdms[recipients[i]!] = enc;
  for (const member of recipients) memory[member] = true;
  await keys.set({ 'sender-key-memory': { [group]: memory } });
  return { ciphertext: b64(ciphertext), skdms };
}

type Request = { op: string } & Record<string, unknown>;

async function handle(request: Request): Promise<Record<string, unknown>> {
  switch (request.op) {
    case 'hello':
      return { me, bundle: ownBundle() };
    case 'upload':
      return {
        preKeys: (await nextPreKeys(Number(request['count']))).map((key) => ({
          keyId: key.keyId,
          publicKey: b64(generateSignalPubKey(key.public)),
        })),
      };
    case 'decrypt': {
      const lid = String(request['lid']);
      const pn = String(request['pn']);
      const user = lid.replace(/:\d+@/, '@');
      await repository.lidMapping.storeLIDPNMappings([{ lid: user, pn: pn.replace(/:\d+@/, '@') }]);
      await repository.migrateSession(pn.replace(/:\d+@/, '@'), user);
      const texts: string[] = [];
      for (const enc of request['encs'] as WireEnc[]) {
        const message = decode(await repository.decryptMessage({ jid: lid, type: enc.type, ciphertext: bytes(enc.ciphertext) }));
        if (message.senderKeyDistributionMessage)
          await repository.processSenderKeyDistributionMessage({ item: message.senderKeyDistributionMessage, authorJid: lid });
        texts.push(message.conversation ?? '');
      }
      const skmsg = request['skmsg'] as { group: string; ciphertext: string } | undefined;
      if (skmsg)
        texts.push(
          decode(await repository.decryptGroupMessage({ group: skmsg.group, authorJid: lid, msg: bytes(skmsg.ciphertext) })).conversation ??
            '',
        );
      return { texts };
    }
    case 'retryReceipt': {
      const jid = String(request['jid']);
      // From the second retry on, Baileys (enableAutoSessionRecreation, the default) deletes the session
      // and includes a fresh pre-key bundle; the first retry carries only the registration id.
      if (Number(request['count']) < 2) return { registrationId: creds.registrationId };
      await keys.set({ session: { [repository.jidToSignalProtocolAddress(jid)]: null } });
      const [preKey] = await nextPreKeys(1);
      return { registrationId: creds.registrationId, bundle: ownBundle(preKey) };
    }
    case 'encrypt':
      return { enc: await encrypt(String(request['jid']), { conversation: String(request['text']) }) };
    case 'inject':
      await repository.injectE2ESession({ jid: String(request['jid']), session: toSession(request['bundle'] as WireBundle) });
      return {};
    case 'groupEncrypt':
      return groupEncrypt(String(request['group']), String(request['text']), request['members'] as string[], false);
    case 'resend': {
      const jid = String(request['jid']);
      await repository.injectE2ESession({ jid, session: toSession(request['bundle'] as WireBundle) });
      const group = request['group'] as string | undefined;
      if (group) return groupEncrypt(group, String(request['text']), [jid], true);
      return { enc: await encrypt(jid, { conversation: String(request['text']) }) };
    }
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

let handled = 0;
let stopping = false;
let queue: Promise<unknown> = Promise.resolve();
const sockets = new Set<net.Socket>();
await rm(socketPath, { force: true });
const server = net.createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => undefined);
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const request = JSON.parse(line) as Request & { id: number };
      queue = queue.then(async () => {
        let answer: Record<string, unknown>;
        if (stopping) answer = { id: request.id, stopping: true };
        else {
          try {
            answer = { id: request.id, ok: true, ...(await handle(request)) };
          } catch (error) {
            answer = { id: request.id, error: (error as Error).message };
          }
          handled++;
        }
        if (!socket.destroyed) socket.write(`${JSON.stringify(answer)}\n`);
      });
    }
  });
});
await new Promise<void>((resolve) => server.listen(socketPath, resolve));
process.stdout.write('ready\n');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    stopping = true;
    void (async () => {
      await queue;
      await auth.saveCreds();
      repository.close?.();
      for (const socket of sockets) socket.end();
      server.close();
      process.stdout.write(`stopped ${handled}\n`);
      process.exit(0);
    })();
  });
}
