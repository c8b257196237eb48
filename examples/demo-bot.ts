// A stand-in for a WhatsApp bot, for the demo: it keeps its login with Baileys' own
// useMultiFileAuthState and changes keys the way a live bot does. It knows nothing of baileys-keeper.
// Usage: node demo-bot.js <auth-dir>
import { randomBytes, randomInt } from 'node:crypto';
import { Curve, useMultiFileAuthState } from '@whiskeysockets/baileys';
import { maskJid } from '../src/creds.js';

const dir = process.argv[2] ?? './auth_info';
const WRITE_EVERY_MS = 700;
const say = (line: string) => process.stdout.write(`\x1b[35m[bot]\x1b[0m ${line}\n`);

const auth = await useMultiFileAuthState(dir);
if (auth.state.creds.me) {
  say(`started already paired as ${maskJid(auth.state.creds.me.id)}: no QR code needed`);
} else {
  say('no login: a real bot would show a QR code now; pretending it was scanned');
  auth.state.creds.me = { id: `5511${randomInt(1e8, 1e9)}:1@s.whatsapp.net`, name: 'Demo bot' };
  auth.state.creds.registered = true;
  const preKeys: Record<string, ReturnType<typeof Curve.generateKeyPair>> = {};
  for (let i = 1; i <= 30; i++) preKeys[String(i)] = Curve.generateKeyPair();
  await auth.state.keys.set({ 'pre-key': preKeys });
  auth.state.creds.nextPreKeyId = 31;
  await auth.saveCreds();
}

// Chats start (sessions), groups rotate sender keys, pre-keys are used up and replaced, creds move on.
let next = auth.state.creds.nextPreKeyId;
const timer = setInterval(() => {
  void (async () => {
    await auth.state.keys.set({
      session: { [`5511${randomInt(1e8, 1e9)}.0`]: randomBytes(randomInt(400, 1500)) },
      'sender-key': { [`120363${randomInt(1e8, 1e9)}@g.us--5511${randomInt(1e8, 1e9)}--0`]: randomBytes(300) },
      'pre-key': { [String(next - 30)]: null, [String(next)]: Curve.generateKeyPair() },
    } as never);
    auth.state.creds.nextPreKeyId = ++next;
    auth.state.creds.accountSyncCounter += 1;
    await auth.saveCreds();
  })();
}, WRITE_EVERY_MS);

const stop = (signal: string) => {
  clearInterval(timer);
  say(`${signal}: saving creds and exiting`);
  void auth.saveCreds().then(() => process.exit(0));
};
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
