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
import { parseArgs } from 'node:util';
import { startEmbedded } from '../src/embedded-postgres.js';
import { KeeperError } from '../src/errors.js';
import { createLogger } from '../src/log.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(repo, 'dist', 'cli.js');
const bot = path.join(repo, 'build', 'examples', 'demo-bot.js');
// As root the embedded server runs as an unprivileged account (postgres or nobody), which may not reach
// a checkout under a private home directory; a directory under the system temp dir always works.
const defaultDataDir = process.getuid?.() === 0 ? path.join(os.tmpdir(), 'baileys-keeper-demo') : path.join(repo, '.baileys-keeper');

const USAGE = `Usage: npm start -- [options]   (or: node build/examples/demo.js [options])

Runs a stand-in bot under \`baileys-keeper run\` against an embedded PostgreSQL. Every start wipes the
bot's directory, as a new container's disk would be, and the login comes back from PostgreSQL.

Options:
  --port PORT      the keeper's HTTP port on 127.0.0.1 (metrics, health; 0: any free port) (default 9464)
  --dir DIR        the bot's auth directory, wiped at every start (default demo/auth_info in the clone)
  --data-dir DIR   the embedded PostgreSQL's data (default .baileys-keeper in the clone; as root
                   ${path.join(os.tmpdir(), 'baileys-keeper-demo')}, which its unprivileged account can reach)
  --seconds N      stop by itself after N seconds (default 0: at Ctrl-C)
  -h, --help       show this help
`;

/** The demo's options from argv; a usage error (exit 64, with the usage) for anything else. */
function options(): { port: number; dir: string; dataDir: string; seconds: number } {
  const usage = (problem: string): never => {
    process.stderr.write(`demo: ${problem}\n\n${USAGE}`);
    process.exit(64);
  };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '9464' },
        dir: { type: 'string', default: path.join(repo, 'demo', 'auth_info') },
        'data-dir': { type: 'string', default: defaultDataDir },
        seconds: { type: 'string', default: '0' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return usage((error as Error).message);
  }
  if (values['help']) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const port = Number(values['port']);
  if (!/^\d+$/.test(String(values['port'])) || port > 65535) usage(`--port takes a port number from 0 to 65535, not ${values['port']}`);
  const seconds = Number(values['seconds']);
  if (!/^\d+$/.test(String(values['seconds']))) usage(`--seconds takes a whole number of seconds, not ${values['seconds']}`);
  return { port, dir: path.resolve(String(values['dir'])), dataDir: path.resolve(String(values['data-dir'])), seconds };
}

const { port, dir: authDir, dataDir, seconds } = options();
const listen = `127.0.0.1:${port}`;

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
// A server that cannot start (a data directory its account cannot reach, no such account) says why and
// what to do: the message, and the keeper's exit code, not a stack trace.
const server = await startEmbedded(dataDir, createLogger('warn', 'stdout')).catch((error: Error) => {
  process.stderr.write(`demo: ${error.message}\n`);
  process.exit(error instanceof KeeperError ? error.exitCode : 1);
});
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
