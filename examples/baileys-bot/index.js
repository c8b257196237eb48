// A stand-in for a real bot, unmodified: it keeps its login in ./auth_info through Baileys'
// useMultiFileAuthState, as bots do, and churns keys the way a chatting bot does (no network here).
// On SIGTERM it writes one last key — the write a careless shutdown would lose — and exits.
import { randomBytes } from 'node:crypto';
import { useMultiFileAuthState } from '@whiskeysockets/baileys';

const dir = process.env.AUTH_DIR ?? 'auth_info';
const { state, saveCreds } = await useMultiFileAuthState(dir);
console.log(state.creds.me ? `bot: logged in as ${state.creds.me.id}` : 'bot: no login, would show a QR code');
await saveCreds();

let written = 0;
const writeKeys = async () => {
  written += 1;
  await state.keys.set({
    'pre-key': { [String(written)]: { public: randomBytes(32), private: randomBytes(32) } },
    session: { [`5511${String(written % 50).padStart(8, '0')}.0`]: randomBytes(512) },
  });
};
const churn = setInterval(() => void writeKeys(), 100);

process.once('SIGTERM', async () => {
  clearInterval(churn);
  await state.keys.set({ session: { 'last-write-before-exit.0': randomBytes(64) } });
  console.log(`bot: stopping after ${written} key writes`);
  process.exit(0);
});
console.log('bot: running');
