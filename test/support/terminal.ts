// The built CLI at a terminal: util-linux `script` gives it a pseudo-terminal as stdin, stdout and stderr,
// as a person's shell does, and records what the terminal showed.
import { spawn } from 'node:child_process';
import { collect } from '../../harness/cli.js';
import { CLI } from '../../harness/paths.js';

export interface TerminalRun {
  code: number | null;
  /** Everything the terminal was sent (stdout and stderr together), with its line ends as `\n`. */
  output: string;
}

/** `value` quoted for sh. */
function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `node CLI ...args` on a pseudo-terminal with `env`, under `wrapper` (a command line it is run by,
 * e.g. ['timeout', '-s', 'TERM', '10']); resolves with its exit code and what the terminal showed.
 */
export async function runInTerminal(
  args: readonly string[],
  env: Record<string, string | undefined>,
  { timeoutMs = 120_000, wrapper = [] }: { timeoutMs?: number; wrapper?: readonly string[] } = {},
): Promise<TerminalRun> {
  // A pseudo-terminal made without one around it has no size: give it a wide one, as a person's has.
  const command = ['stty cols 200 rows 50;', 'exec', ...[...wrapper, process.execPath, CLI, ...args].map(quote)].join(' ');
  // -q: no "Script started" lines; -e: its exit code is the command's; -f: output as it comes.
  const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { TERM: 'xterm', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  const result = await collect(child, { timeoutMs });
  return { code: result.code, output: (result.stdout + result.stderr).replaceAll('\r\n', '\n') };
}
