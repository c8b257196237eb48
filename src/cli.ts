#!/usr/bin/env node
// The baileys-keeper command line: finds the command, parses argv/env into a Config, runs it, maps
// errors to exit codes.
import os from 'node:os';
import type { CommandSpec } from './commands/command.js';
import { COMMAND_SPECS } from './commands/index.js';
import { type ConfigOf, loadConfig, wantsHelp } from './config.js';
import { resolveDatabase } from './commands/database.js';
import { describeError, ExitCode, KeeperError, UsageError } from './errors.js';
import { commandHelp, usage } from './help.js';
import { createLogger, type Logger } from './log.js';
import { COMMANDS, type Command } from './options.js';
import { startWarnings } from './start-warnings.js';
import { showProgressOn, stopProgress } from './progress.js';
import { didYouMean } from './suggest.js';
import { VERSION } from './version.js';

/** The flags that print the version: -v and -V as well, as other CLIs answer (npm, node; git, curl). */
const VERSION_FLAGS = ['--version', '-v', '-V'];
/**
 * Exit code when the reader of stdout went away before the output was written (`history | head -1`):
 * 128 + SIGPIPE, what a shell reports for git, tar or cat in the same pipeline, which die of that signal
 * (Node ignores it and sees EPIPE instead); quietly, as they end.
 */
const EXIT_STDOUT_CLOSED = 128 + os.constants.signals.SIGPIPE;

/** Runs the CLI and resolves to the process exit code; never throws. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const output = watchOutput(process.stdout);
  // Messages on a closed stderr (`… 2>&1 | head -1`) are lost, not a crash that changes the exit code.
  process.stderr.on('error', () => undefined);
  const [word, ...rest] = argv;
  if (word === undefined) {
    process.stderr.write(`${usage(COMMAND_SPECS.values())}\n`);
    return ExitCode.usage;
  }
  if (word === 'help' && rest[0] !== undefined) {
    const spec = COMMAND_SPECS.get(rest[0] as Command);
    if (!spec) return unknownCommand(rest[0]);
    process.stdout.write(`${commandHelp(spec)}\n`);
    return ExitCode.ok;
  }
  if (word === '--help' || word === '-h' || word === 'help') {
    process.stdout.write(`${usage(COMMAND_SPECS.values())}\n`);
    return ExitCode.ok;
  }
  if ([...VERSION_FLAGS, 'version'].includes(word)) {
    process.stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }
  const spec = COMMAND_SPECS.get(word as Command);
  if (!spec) return unknownCommand(word);
  const command = spec.name;
  // Only what comes before `--`: after it, `run -- node -v` is the bot's command line.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (wantsHelp(own)) {
    process.stdout.write(`${commandHelp(spec)}\n`);
    return ExitCode.ok;
  }
  // `sidecar --version` as well as `--version`: the version of what would run, whatever else is given.
  if (own.some((arg) => VERSION_FLAGS.includes(arg))) {
    process.stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }

  let config: ConfigOf<Command>;
  try {
    config = loadConfig(command, rest, env);
    // A database setting that cannot work is a usage error now, before anything starts.
    resolveDatabase(config.database);
  } catch (error) {
    process.stderr.write(`baileys-keeper: ${(error as Error).message}\n`);
    return error instanceof KeeperError ? error.exitCode : ExitCode.usage;
  }
  const log = createLogger(config.logLevel, spec.logTo, config.logFormat);
  if (!spec.reportsStartWarnings) {
    for (const warning of startWarnings(config)) log.warn(warning.fields, warning.message);
  }
  // Progress lines (restore, import, export, a first backup) are for a person at a terminal: not for a
  // pipe, a file, or logs asked for as JSON (a log collector reading a container's terminal).
  if (process.stderr.isTTY && config.logFormat !== 'json') await showProgressOn(process.stderr);
  let code: number;
  try {
    code = await spec.run({ config, log, stdout: process.stdout, stdin: process.stdin });
  } catch (error) {
    // A write that failed because stdout is closed is the output's end, not the command's failure.
    if (!(await output.causedBy(error))) return failed(error, spec, log);
    code = ExitCode.ok;
  }
  return output.settle(code, log);
}

/** The exit code of a command that threw `error`, which is said once (stack traces only at debug). */
function failed(error: unknown, spec: CommandSpec, log: Logger): number {
  if (error instanceof KeeperError) {
    // A usage error is said once, as a plain line on stderr like every other usage error; the roles
    // (which log to stdout, where their container's logs are collected) also log it.
    const usage = error instanceof UsageError;
    if (!usage || spec.logTo === 'stdout') {
      log.error({ exitCode: error.exitCode, ...(log.isLevelEnabled('debug') ? { err: error } : {}) }, error.message);
    }
    if (usage) process.stderr.write(`baileys-keeper: ${error.message}\n`);
    return error.exitCode;
  }
  log.error(
    { exitCode: ExitCode.unexpected, ...(log.isLevelEnabled('debug') ? { err: error } : {}) },
    `unexpected error: ${describeError(error)} (rerun with --log-level debug for details)`,
  );
  return ExitCode.unexpected;
}

/**
 * Watches the stream a command writes its result to. Without a listener, a write to a pipe whose reader
 * has gone (EPIPE) is an uncaught 'error' with a stack trace; with one, the command finishes what it does
 * (a database change it makes is committed or not as a whole, its files written atomically or not at
 * all), later writes are dropped, and `settle` turns its exit code into EXIT_STDOUT_CLOSED quietly, or 1
 * (said once) for another write error such as ENOSPC. A command's own failure keeps its code.
 */
function watchOutput(stream: NodeJS.WriteStream): {
  causedBy(error: unknown): Promise<boolean>;
  settle(code: number, log: Logger): Promise<number>;
} {
  let writeError: NodeJS.ErrnoException | null = null;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    writeError ??= error;
  });
  // A failed write emits its 'error' a tick or two later: a command that wrote its last line and returned
  // (or whose write callback rejected first) is judged once those ticks have run.
  const settled = async (): Promise<NodeJS.ErrnoException | null> => {
    await new Promise((resolve) => setImmediate(resolve));
    return writeError;
  };
  return {
    async causedBy(error) {
      const failure = await settled();
      const code = (error as NodeJS.ErrnoException | null)?.code ?? '';
      return failure !== null && (error === failure || ['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END'].includes(code));
    },
    async settle(code, log) {
      const failure = await settled();
      if (failure === null || code !== ExitCode.ok) return code;
      if (failure.code === 'EPIPE') return EXIT_STDOUT_CLOSED;
      log.error({ exitCode: ExitCode.unexpected }, `cannot write the output to stdout (${describeError(failure)}): check where it goes`);
      return ExitCode.unexpected;
    },
  };
}

/** Exit 64 for a word that is no command, with the nearest command when it looks like a typo. */
function unknownCommand(word: string): number {
  const near = didYouMean(word, COMMANDS);
  const hint = near ? `: did you mean '${near}'?` : '';
  process.stderr.write(`baileys-keeper: unknown command ${JSON.stringify(word)}${hint}\n\n${usage(COMMAND_SPECS.values())}\n`);
  return ExitCode.usage;
}

const exitCode = await main(process.argv.slice(2), process.env);
stopProgress();
if (['sidecar', 'run'].includes(process.argv[2] ?? '')) {
  // The long-running roles have flushed, released and logged (synchronously) by now; a socket left
  // hanging by a dead database must not keep the process alive past its shutdown.
  process.exit(exitCode);
}
process.exitCode = exitCode;
