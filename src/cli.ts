#!/usr/bin/env node
// The baileys-keeper command line: parses argv/env into a Config, runs one command, maps errors to exit codes.
import { backupCommand } from './commands/backup.js';
import { exportCommand, importCommand } from './commands/archive.js';
import { importLegacyCommand } from './commands/legacy.js';
import type { Context } from './commands/context.js';
import { deleteCommand, historyCommand, migrateCommand, rekeyCommand, statusCommand, verifyCommand } from './commands/query.js';
import { restoreCommand } from './commands/restore.js';
import { runCommand } from './commands/run.js';
import { sidecarCommand } from './commands/sidecar.js';
import { COMMANDS, loadConfig, OPTIONS, wantsHelp, type Command } from './config.js';
import { describeError } from './db/errors.js';
import { ExitCode, KeeperError, UsageError } from './errors.js';
import { createLogger, type LogStream } from './log.js';
import { VERSION } from './version.js';

const HANDLERS: Record<Command, (ctx: Context) => Promise<number>> = {
  restore: restoreCommand,
  sidecar: sidecarCommand,
  run: runCommand,
  backup: backupCommand,
  status: statusCommand,
  history: historyCommand,
  export: exportCommand,
  import: importCommand,
  'import-legacy': importLegacyCommand,
  delete: deleteCommand,
  verify: verifyCommand,
  rekey: rekeyCommand,
  migrate: migrateCommand,
};

const SUMMARIES: Record<Command, string> = {
  restore: 'restore the newest (or a chosen) generation into --dir; the init container',
  sidecar: 'watch --dir and back up every change; serves /healthz, /readyz, /metrics',
  run: 'restore, run the bot (run -- node bot.js) and back up while it runs; one container',
  backup: 'back up --dir once now',
  status: 'list sessions: generation, last backup, files, bytes, registered, lease holder',
  history: "list a session's retained generations",
  export: 'write a generation as a tar to stdout or --output FILE',
  import: 'store a tar from stdin or --input FILE as a new generation',
  'import-legacy': "import sessions from the old system's whatsapp_sessions table (--all for every row)",
  delete: 'delete a session and its history (needs --yes)',
  verify: 'check every stored file of a session: name, size, checksum and (encrypted) authenticity',
  rekey: "re-encrypt a session's retained history under the newest key of KEEPER_ENCRYPTION_KEYS",
  migrate: 'create or upgrade the database schema',
};

// The container roles (restore, sidecar, run) log to stdout, as containers expect; commands whose
// stdout carries a result (a table, JSON, a tar) log to stderr so the result stays clean.
const LOG_STREAM: Record<Command, LogStream> = {
  restore: 'stdout',
  sidecar: 'stdout',
  run: 'stdout',
  backup: 'stderr',
  status: 'stderr',
  history: 'stderr',
  export: 'stderr',
  import: 'stderr',
  'import-legacy': 'stderr',
  delete: 'stderr',
  verify: 'stderr',
  rekey: 'stderr',
  migrate: 'stderr',
};

function usage(): string {
  const commands = COMMANDS.map((name) => `  ${name.padEnd(13)} ${SUMMARIES[name]}`).join('\n');
  return `baileys-keeper ${VERSION}: keeps a Baileys auth directory safe in PostgreSQL

Usage: baileys-keeper <command> [options]

Commands:
${commands}

Run 'baileys-keeper <command> --help' for its options.
Exit codes: 0 ok, 1 error, 2 database unreachable, 3 nothing to restore / no such session,
4 integrity failure, 64 usage error.`;
}

function commandHelp(command: Command): string {
  const lines = Object.entries(OPTIONS)
    .filter(([, spec]) => !spec.commands || spec.commands.includes(command))
    .map(([name, spec]) => {
      const flag = `--${name}${spec.kind === 'string' ? ' VALUE' : ''}`;
      return `  ${flag.padEnd(24)} ${spec.help}${spec.env ? ` [env ${spec.env}]` : ''}`;
    });
  return `baileys-keeper ${command}: ${SUMMARIES[command]}\n\nOptions:\n${lines.join('\n')}`;
}

/** Runs the CLI and resolves to the process exit code; never throws. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [word, ...rest] = argv;
  if (word === undefined) {
    process.stderr.write(`${usage()}\n`);
    return ExitCode.usage;
  }
  if (word === '--help' || word === '-h' || word === 'help') {
    process.stdout.write(`${usage()}\n`);
    return ExitCode.ok;
  }
  if (word === '--version' || word === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return ExitCode.ok;
  }
  if (!(COMMANDS as readonly string[]).includes(word)) {
    process.stderr.write(`baileys-keeper: unknown command ${JSON.stringify(word)}\n\n${usage()}\n`);
    return ExitCode.usage;
  }
  const command = word as Command;
  if (wantsHelp(rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest)) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return ExitCode.ok;
  }

  let config;
  try {
    config = loadConfig(command, rest, env);
  } catch (error) {
    process.stderr.write(`baileys-keeper: ${(error as Error).message}\n`);
    return error instanceof KeeperError ? error.exitCode : ExitCode.usage;
  }
  const log = createLogger(config.logLevel, LOG_STREAM[command]);
  try {
    return await HANDLERS[command]({ config, log, stdout: process.stdout, stdin: process.stdin });
  } catch (error) {
    if (error instanceof KeeperError) {
      log.error({ exitCode: error.exitCode, ...(log.isLevelEnabled('debug') ? { err: error } : {}) }, error.message);
      if (error instanceof UsageError) process.stderr.write(`baileys-keeper: ${error.message}\n`);
      return error.exitCode;
    }
    log.error(
      { exitCode: ExitCode.unexpected, ...(log.isLevelEnabled('debug') ? { err: error } : {}) },
      `unexpected error: ${describeError(error)} (rerun with --log-level debug for details)`,
    );
    return ExitCode.unexpected;
  }
}

const exitCode = await main(process.argv.slice(2), process.env);
if (['sidecar', 'run'].includes(process.argv[2] ?? '')) {
  // The long-running roles have flushed, released and logged (synchronously) by now; a socket left
  // hanging by a dead database must not keep the process alive past its shutdown.
  process.exit(exitCode);
}
process.exitCode = exitCode;
