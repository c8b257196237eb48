// `npm start`: the whole job on a laptop, against the embedded PostgreSQL.
//  1. Every start is a "deploy": the bot's directory is wiped, as a new container's disk would be.
//  2. `baileys-keeper run -- node demo-bot.js` restores the login, starts the bot, and backs up
//     every change it writes within about a second, with metrics on http://127.0.0.1:9464/metrics.
//  3. Ctrl-C: the bot stops, the keeper stores its last writes. Run `npm start` again: the login
//     comes back from PostgreSQL instead of a QR scan.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbedded } from '../src/embedded-postgres.js';
import { createLogger } from '../src/log.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repo, 'dist', 'cli.js');
const bot = path.join(repo, 'build', 'examples', 'demo-bot.js');
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
const listen = process.env['DEMO_LISTEN'] ?? '127.0.0.1:9464';

const say = (line: string) => process.stdout.write(`\x1b[36m[demo]\x1b[0m ${line}\n`);

let running: ChildProcess | null = null;
let stopped = false;

function keeper(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    running = child;
    if (seconds > 0) setTimeout(() => child.kill('SIGTERM'), seconds * 1000);
    child.once('close', (code) => {
      running = null;
      resolve(code ?? 1);
    });
  });
}

// Ctrl-C reaches the whole process group: `run` passes it to the bot and does the final backup, and
// this script stays to show the result and stop PostgreSQL. SIGTERM and SIGHUP (a process manager,
// `timeout`, a closed terminal) reach only this process: it passes them on as SIGTERM and does the same.
process.on('SIGINT', () => (stopped = true));
for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    stopped = true;
    running?.kill('SIGTERM');
  });
}
await mkdir(dataDir, { recursive: true });
await chmod(dataDir, 0o755);
const server = await startEmbedded(dataDir, createLogger('warn', 'stdout'));
if (stopped) {
  await server.stop();
  process.exit(143);
}
const env = { ...process.env, DATABASE_URL: server.url, KEEPER_DIR: authDir, KEEPER_SESSION_ID: 'demo', KEEPER_LOG_LEVEL: 'info' };
say(`PostgreSQL (embedded) is running; its data lives in ${dataDir}`);
say('deploy: a new container, so the bot directory starts empty');
await rm(authDir, { recursive: true, force: true });
say(`$ baileys-keeper run -- node demo-bot.js   (metrics: http://${listen}/metrics; Ctrl-C to stop)`);
const code = await keeper(['run', '--listen', listen, '--shutdown-quiet', '200', '--', process.execPath, bot, authDir], env);
say(`run exited with ${code}; what PostgreSQL holds now:`);
await keeper(['status'], { ...env, KEEPER_LOG_LEVEL: 'error' });
await keeper(['history'], { ...env, KEEPER_LOG_LEVEL: 'error' });
say('run `npm start` again: the directory is wiped and the login comes back from PostgreSQL');
await server.stop();
say('PostgreSQL (embedded) stopped');
process.exit(code);
