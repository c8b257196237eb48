// `npm start`: the whole job on a laptop, against the embedded PostgreSQL.
//  1. Every start is a "deploy": the bot's disk is wiped, then `baileys-keeper restore` brings the login back.
//  2. A stand-in bot writes its keys with the real Baileys useMultiFileAuthState, like a live bot does.
//  3. `baileys-keeper backup` stores each change as a generation. Ctrl-C stops; run `npm start` again
//     and the login comes back from PostgreSQL instead of a QR scan.
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Curve, useMultiFileAuthState } from '@whiskeysockets/baileys';
import { maskJid } from '../src/creds.js';
import { createLogger } from '../src/log.js';
import { startEmbedded } from '../src/db/embedded.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repo, 'dist', 'cli.js');
// DEMO_DIR moves everything the demo writes (the smoke test uses a temporary one).
const demoRoot = process.env['DEMO_DIR'] ?? null;
const authDir = path.join(demoRoot ?? path.join(repo, 'demo'), 'auth_info');
// As root the embedded server runs as `postgres`, which may not reach a checkout under a private
// home directory; a directory under the system temp dir always works.
const dataDir = demoRoot
  ? path.join(demoRoot, 'pg')
  : process.getuid?.() === 0
    ? path.join(os.tmpdir(), 'baileys-keeper-demo')
    : path.join(repo, '.baileys-keeper');
const seconds = Number(process.env['DEMO_SECONDS'] ?? 0); // 0: until Ctrl-C
const BACKUP_EVERY_MS = 3_000;
const WRITE_EVERY_MS = 700;

const say = (line: string) => process.stdout.write(`\x1b[36m[demo]\x1b[0m ${line}\n`);

function keeper(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'inherit', 'ignore'] });
    child.once('close', (code) => resolve(code ?? 1));
  });
}

await mkdir(dataDir, { recursive: true });
await chmod(dataDir, 0o755);
const server = await startEmbedded(dataDir, createLogger('warn', 'stdout'));
const env = { ...process.env, DATABASE_URL: server.url, KEEPER_DIR: authDir, KEEPER_SESSION_ID: 'demo', KEEPER_LOG_LEVEL: 'warn' };
say(`PostgreSQL (embedded) is running; its data lives in ${dataDir}`);

say('deploy: the container disk is new, so the bot directory starts empty');
await rm(authDir, { recursive: true, force: true });
say('$ baileys-keeper restore');
await keeper(['restore', '--log-level', 'info'], env);

const auth = await useMultiFileAuthState(authDir);
if (auth.state.creds.me) {
  say(`the bot starts already paired as ${maskJid(auth.state.creds.me.id)}: no QR code needed`);
} else {
  say('no login yet: a real bot would show a QR code now; the demo "scans" it');
  auth.state.creds.me = { id: `5511${randomInt(1e8, 1e9)}:1@s.whatsapp.net`, name: 'Demo bot' };
  auth.state.creds.registered = true;
  await auth.saveCreds();
  const preKeys: Record<string, ReturnType<typeof Curve.generateKeyPair>> = {};
  for (let i = 1; i <= 30; i++) preKeys[String(i)] = Curve.generateKeyPair();
  await auth.state.keys.set({ 'pre-key': preKeys });
  auth.state.creds.nextPreKeyId = 31;
  await auth.saveCreds();
}

// The bot at work: new chats (sessions), group sender keys, used pre-keys, creds counters.
let nextPreKey = auth.state.creds.nextPreKeyId;
const writer = setInterval(() => {
  void (async () => {
    const used = String(nextPreKey - 30);
    await auth.state.keys.set({
      session: { [`5511${randomInt(1e8, 1e9)}.0`]: randomBytes(randomInt(400, 1500)) },
      'sender-key': { [`120363${randomInt(1e8, 1e9)}@g.us--5511${randomInt(1e8, 1e9)}--0`]: randomBytes(300) },
      'pre-key': { [used]: null, [String(nextPreKey)]: Curve.generateKeyPair() },
    } as never);
    auth.state.creds.nextPreKeyId = ++nextPreKey;
    auth.state.creds.accountSyncCounter += 1;
    await auth.saveCreds();
  })();
}, WRITE_EVERY_MS);

let backingUp: Promise<number> | null = null;
const backup = async () => {
  if (backingUp) return backingUp;
  backingUp = keeper(['backup'], env);
  try {
    return await backingUp;
  } finally {
    backingUp = null;
  }
};
say(`the bot is writing keys; backing up every ${BACKUP_EVERY_MS / 1000} s (Ctrl-C to stop)`);
const ticker = setInterval(() => void backup(), BACKUP_EVERY_MS);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(writer);
  clearInterval(ticker);
  await backingUp;
  say('stopping: one last backup, then what PostgreSQL holds');
  await backup();
  await keeper(['status'], env);
  await keeper(['history'], { ...env, KEEPER_LOG_LEVEL: 'error' });
  say('run `npm start` again: the directory is wiped and the login comes back from PostgreSQL');
  await server.stop();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (seconds > 0) setTimeout(() => void stop(), seconds * 1000);
