// A live bot process for the tests and the bench: churns an auth directory the way a running Baileys bot does.
// Usage: node churn-bot.js <dir> [--rate N] [--seconds S] [--seed K] [--linger-ms L]
//   Prints `ready` once the directory is open, then performs about N steps a second (default 20)
//   until S seconds have passed (default: forever) or SIGTERM/SIGINT arrives; then it finishes the
//   step in progress, saves the creds one last time, prints `stopped <steps>` and exits 0. With
//   --linger-ms, a signal stops it only after L more ms of steps (a bot whose shutdown keeps writing:
//   closing the socket, flushing queues); it prints `lingering` when the signal arrives.
//   Steps run one after another, each 20-30 ms of CPU (real curve25519 in JavaScript), so rates
//   above about 35 a second run flat out instead.
import { Console } from 'node:console';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { ChurnBot } from './churn.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    'linger-ms': { type: 'string', default: '0' },
  },
});
const dir = positionals[0];
const rate = Number(values.rate);
const seconds = values.seconds === undefined ? Infinity : Number(values.seconds);
const seed = values.seed === undefined ? undefined : Number(values.seed);
const lingerMs = Number(values['linger-ms']);
if (
  !dir ||
  positionals.length > 1 ||
  !(rate > 0) ||
  !(seconds > 0) ||
  (seed !== undefined && !Number.isInteger(seed)) ||
  !(lingerMs >= 0)
) {
  process.stderr.write('usage: churn-bot <dir> [--rate N] [--seconds S] [--seed K] [--linger-ms L]\n');
  process.exit(2);
}

// stdout carries only `ready` and `stopped`: libsignal prints session dumps with console.info.
globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });

const stop = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    if (lingerMs === 0) return stop.abort();
    process.stdout.write('lingering\n');
    setTimeout(() => stop.abort(), lingerMs);
  });
}
const bot = await ChurnBot.open(dir, { seed });
const deadline = Number.isFinite(seconds) ? setTimeout(() => stop.abort(), seconds * 1000) : null;
process.stdout.write('ready\n');

const interval = 1000 / rate;
let steps = 0;
let next = performance.now();
while (!stop.signal.aborted) {
  await bot.step();
  steps++;
  // Paced to the rate, without bursting to catch up after slow steps.
  next = Math.max(next + interval, performance.now());
  await sleep(Math.max(0, next - performance.now()), undefined, { signal: stop.signal }).catch(() => undefined);
}

if (deadline) clearTimeout(deadline);
await bot.saveCreds();
await bot.close();
process.stdout.write(`stopped ${steps}\n`);
