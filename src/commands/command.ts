// What a command is: its name, one-line summary, where it logs, and what it runs with its Context.
// Every src/commands/<name>.ts exports one `command`; index.ts lists them; the settings each takes are
// in the settings table (src/options.ts).
import type { Readable, Writable } from 'node:stream';
import type { ConfigOf } from '../config.js';
import type { LogStream } from '../log.js';
import type { Logger } from '../log.js';
import type { Command } from '../options.js';

/**
 * What a command gets: its validated configuration (only the settings it declares in the settings
 * table), a logger, and the process's streams. Context without a command: what every command has.
 */
export interface Context<C extends Command = Command> {
  config: ConfigOf<C>;
  log: Logger;
  stdout: Writable;
  stdin: Readable;
}

export interface CommandSpec<C extends Command = Command> {
  readonly name: C;
  /** One line for the command list of `--help`. */
  readonly summary: string;
  /**
   * Where its logs go. The container roles log to stdout, as containers expect; commands whose stdout
   * carries a result (a table, JSON, a tar) log to stderr so the result stays clean.
   */
  readonly logTo: LogStream;
  /** It reports the start-up warnings (src/start-warnings.ts) itself, as doctor does, instead of having them logged. */
  readonly reportsStartWarnings?: boolean;
  /** Runs the command; resolves to the process exit code, or throws a KeeperError (its exit code). */
  run(ctx: Context<C>): Promise<number>;
}
