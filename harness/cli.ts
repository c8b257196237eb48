// Runs the real CLI as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './paths.js';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  input?: Buffer | string;
  cwd?: string;
  timeoutMs?: number;
  /** Run as this user and group (the test runs as root), with `script` (default: the built CLI) and `node`. */
  uid?: number;
  gid?: number;
  script?: string;
  node?: string;
  /** A command line the CLI runs under, e.g. ['bash', '-c', 'ulimit -n 120; exec "$@"', 'bash']. */
  wrapper?: string[];
}

/**
 * The test suite's own switches are named KEEPER_TEST_* (docs/development.md). They are the suite's, not the
 * keeper's: no keeper the harness starts is handed one, so the keeper knows no exception to its warning about
 * unknown KEEPER_* variables.
 */
export const TEST_VARIABLE_PREFIX = 'KEEPER_TEST_';

/** `env` without the test suite's own switches (TEST_VARIABLE_PREFIX). */
export function withoutTestVariables<T extends string | undefined>(env: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith(TEST_VARIABLE_PREFIX)));
}

/** Environment for the CLI: the test's database and nothing inherited that could change behaviour. */
export function cliEnv(databaseUrl: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('KEEPER_') && key !== 'DATABASE_URL'));
  return { ...base, DATABASE_URL: databaseUrl, KEEPER_LOG_LEVEL: 'info', ...extra };
}

export function startCli(args: string[], options: CliOptions = {}): ChildProcess {
  const command = [options.node ?? process.execPath, options.script ?? CLI, ...args];
  const [program, ...rest] = [...(options.wrapper ?? []), ...command];
  return spawn(program!, rest, {
    env: withoutTestVariables(options.env ?? process.env),
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
  });
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = startCli(args, options);
  return collect(child, options);
}

export function collect(child: ChildProcess, options: CliOptions = {}): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
  });
}

/** The text of a process's output with JSON log lines reduced to their messages (non-JSON lines kept). */
export function messages(output: string): string {
  return output
    .split('\n')
    .map((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: unknown };
        return typeof entry.msg === 'string' ? entry.msg : line;
      } catch {
        return line;
      }
    })
    .join('\n');
}
