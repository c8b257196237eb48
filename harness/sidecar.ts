// Runs `baileys-keeper sidecar` / `run` as real processes and reads their HTTP endpoints.
import type { ChildProcess } from 'node:child_process';
import { startCli, type CliOptions } from './cli.js';
import { query } from './db.js';

export interface Service {
  child: ChildProcess;
  port: number;
  /** Every line the process printed so far (stdout and stderr). */
  output: string[];
  get(path: string): Promise<{ status: number; text: string }>;
  metrics(): Promise<Map<string, number>>;
  metric(name: string): Promise<number>;
  /** Sends a signal and resolves with how the process ended. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the CLI with `args` (listening on an ephemeral loopback port) and waits for it to listen. */
export async function startService(
  args: string[],
  env: Record<string, string | undefined>,
  options: Omit<CliOptions, 'env'> = {},
): Promise<Service> {
  const child = startCli([...args.slice(0, 1), '--listen', '127.0.0.1:0', ...args.slice(1)], { ...options, env });
  child.stdin!.end();
  const output: string[] = [];
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    output.push(...lines);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const port = await waitFor(
    () => {
      for (const line of output) {
        const match = /"msg":"listening on [^"]*:(\d+)"/.exec(line);
        if (match) return Number(match[1]);
      }
      return null;
    },
    20_000,
    () => `the service did not start listening:\n${output.join('\n')}`,
    exited,
  );
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, text: await response.text() };
  };
  const metrics = async () => {
    const map = new Map<string, number>();
    for (const line of (await get('/metrics')).text.split('\n')) {
      const match = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (match) map.set(match[1]!, Number(match[2]));
    }
    return map;
  };
  return {
    child,
    port,
    output,
    get,
    metrics,
    async metric(name) {
      const value = (await metrics()).get(name);
      if (value === undefined) throw new Error(`no metric ${name}`);
      return value;
    },
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return exited;
    },
    exited,
  };
}

/**
 * Polls `probe` until it returns a non-null value; fails after timeoutMs with `explain()`. If `exited`
 * settles first (the process died), fails at once.
 */
export async function waitFor<T>(
  probe: () => T | null | Promise<T | null>,
  timeoutMs: number,
  explain: () => string = () => 'condition not met',
  exited?: Promise<unknown>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void exited?.then(() => (dead = true));
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (dead) throw new Error(`process exited: ${explain()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${explain()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The stored head of a session as name → content. */
export async function storedHead(url: string, sessionId: string, schema = 'baileys_keeper'): Promise<Map<string, string>> {
  const rows = await query<{ name: string; content: Buffer }>(
    url,
    `SELECT name, content FROM ${schema}.files WHERE session_id = $1 AND generation_to IS NULL`,
    [sessionId],
  );
  return new Map(rows.map((row) => [row.name, row.content.toString('utf8')]));
}

/** Differences between two name → content maps, for assertion messages. */
export function diffTrees(stored: Map<string, string>, dir: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, content] of dir) {
    if (!stored.has(name)) problems.push(`missing in store: ${name}`);
    else if (stored.get(name) !== content) problems.push(`differs: ${name}`);
  }
  for (const name of stored.keys()) if (!dir.has(name)) problems.push(`deleted in dir but stored: ${name}`);
  return problems;
}
