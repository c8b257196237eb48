// A bot that detaches itself, as `pm2 start`, `nohup … &` under setsid or a double fork do: it writes its
// login through the real useMultiFileAuthState, starts a writer in a new session and process group
// (setsid, stdio ignored, unref), waits until the writer runs (as `pm2 start` waits for "online") and
// exits 0, while the writer keeps writing keys outside the group.
//   node detaching-bot.js <auth-dir> <pid-file> <writes> <interval-ms>
// The writer writes its first key, then its pid into <pid-file>, then <writes> more keys <interval-ms>
// apart (0: for ever, until killed). <writes> -1: an idle bot, which writes nothing at all and runs until killed. It is `node detaching-bot.js <auth-dir> --writer <pid-file> <writes> <interval-ms>`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { useMultiFileAuthState } from '@whiskeysockets/baileys';

const [dir, ...rest] = process.argv.slice(2) as [string, ...string[]];
const auth = await useMultiFileAuthState(dir);
const writeKey = (id: string) => auth.state.keys.set({ session: { [id]: randomBytes(64) } } as never);

if (rest[0] === '--writer') {
  const [, pidFile, writesText, intervalText] = rest as [string, string, string, string];
  const writes = Number(writesText);
  const interval = Number(intervalText);
  if (writes >= 0) await writeKey('detached-00000');
  await writeFile(pidFile, String(process.pid));
  if (writes < 0) setInterval(() => undefined, 60_000); // idle: alive and silent until killed
  for (let written = 1; writes === 0 || written <= writes; written++) {
    await new Promise((resolve) => setTimeout(resolve, interval));
    // Key ids in the order written, so a test can tell the last one.
    await writeKey(`detached-${String(written).padStart(5, '0')}`);
  }
} else {
  const [pidFile, writesText, intervalText] = rest as [string, string, string];
  await auth.saveCreds();
  await writeKey('before-detach');
  const writer = spawn(process.execPath, [fileURLToPath(import.meta.url), dir, '--writer', pidFile, writesText, intervalText], {
    detached: true, // setsid(): a session and process group of its own, outside the one `run` watches
    stdio: 'ignore',
  });
  writer.unref();
  while (
    !(await access(pidFile).then(
      () => true,
      () => false,
    ))
  )
    await new Promise((resolve) => setTimeout(resolve, 20));
  // pm2 start prints its table before it exits: the bot's side lingers a moment, as there.
  await new Promise((resolve) => setTimeout(resolve, 300));
  process.stdout.write(`bot: detached writer ${writer.pid} runs\n`);
}
