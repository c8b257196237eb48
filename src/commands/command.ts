// What a command is: its name, one-line summary, where it logs, and what it runs with its Context.
// Every src/commands/<name>.ts exports one `command`; index.ts lists them; the settings each takes are
// in the settings table (src/options.ts).
import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config.js';
import type { LogStream } from '../log.js';
import type { Logger } from '../log.js';
import type { Command } from '../options.js';

/** What every command gets: its validated config, a logger, and the process's streams. */
export interface Context {
  config: Config;
  log: Logger;
  stdout: Writable;
  stdin: Readable;
}

export interface CommandSpec {
  readonly name: Command;
  /** One line for the command list of `--help`. */
  readonly summary: string;
  /**
   * Where its logs go. The container roles log to stdout, as containers expect; commands whose stdout
   * carries a result (a table, JSON, a tar) log to stderr so the result stays clean.
   */
  readonly logTo: LogStream;
  /** Runs the command; resolves to the process exit code, or throws a KeeperError (its exit code). */
  run(ctx: Context): Promise<number>;
}
