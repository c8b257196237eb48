// Progress of long work on a terminal — a restore (one session or a sessions directory), an import, an
// export, the first backup of a large session: what is done (files or sessions, bytes), the rate, on one
// line of stderr redrawn in place. Only when stderr is a terminal and JSON logs were not asked for
// (cli.ts decides, showProgressOn); otherwise every call here does nothing, so the output of a pipe, a
// file or a container's log collector is what it was without it.
//
// Drawn with cli-progress (MIT, no native parts, bundles with esbuild): it throttles redraws, keeps the
// line within the terminal's width, draws nothing when the stream is no terminal, and is the most used
// library of its kind; what is left here is what the line says.
import { clearLine, cursorTo } from 'node:readline';
import type cliProgress from 'cli-progress';
import { formatBytes } from './commands/output.js';

/** What a piece of long work has to do: its totals when known in advance (null: not known). */
export interface ProgressWork {
  /** What is being done, first on the line ("restoring session default"). */
  label: string;
  /** Items to do (files, or sessions with `unit`), or null. */
  count: number | null;
  /** Bytes to do, or null. */
  bytes: number | null;
  /** What the items are, plural (default "files"); null: only bytes are counted. */
  unit?: string | null;
}

/** A progress line: advance() as work is done, stop() when it ends (the line is cleared; safe to call twice). */
export interface Progress {
  /** Whether the line is drawn: work may then be cut into steps to show them (never when it is not). */
  readonly shown: boolean;
  /** `count` more items and `bytes` more bytes are done. */
  advance(count: number, bytes: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { shown: false, advance: () => undefined, stop: () => undefined };

/** Where progress is drawn (null: nowhere), and the line being drawn: one at a time, a terminal has one cursor. */
let output: NodeJS.WriteStream | null = null;
/** cli-progress, loaded only where progress is drawn: a container's start does not pay for it. */
let library: typeof cliProgress | null = null;
let active: cliProgress.SingleBar | null = null;

/**
 * Progress is drawn on `stream` from now on (cli.ts: stderr, when it is a terminal and the logs are not
 * JSON); null: nowhere. Resolves once the drawing library is loaded.
 */
export async function showProgressOn(stream: NodeJS.WriteStream | null): Promise<void> {
  library ??= stream === null ? null : (await import('cli-progress')).default;
  output = stream;
}

/**
 * Starts a progress line for `work`, drawn at once and then every 100 ms until stop(). Nothing is drawn
 * (the Progress does nothing) where progress is not shown, or while another line is drawn: nested work
 * (the sessions of a sessions directory) advances the outer line instead.
 */
export function startProgress(work: ProgressWork): Progress {
  if (output === null || library === null || active !== null) return NO_PROGRESS;
  const done = { count: 0, bytes: 0 };
  const format = library.Format.BarFormat;
  const bar = new library.SingleBar({
    stream: output,
    terminal: lineTerminal(output),
    format: (options, params) => describe(work, done, params.startTime, params.maxWidth, (share) => format(share, options as never)),
    // Redrawn at every tick, also without a change: a log line may have cleared it (clearProgressLine).
    forceRedraw: true,
    clearOnComplete: true,
    barsize: 20,
    // Left as they are: a process ended by a signal must not leave the terminal without a cursor or wrapping.
    hideCursor: false,
    linewrap: true,
    gracefulExit: false,
  } as cliProgress.Options);
  active = bar;
  bar.start(1, 0);
  return {
    shown: true,
    advance(count, bytes) {
      done.count += count;
      done.bytes += bytes;
      bar.update(0);
    },
    stop() {
      if (active !== bar) return;
      active = null;
      bar.stop();
    },
  };
}

/** Stops the line being drawn, if any: a command that ended by an error must not leave its timer running. */
export function stopProgress(): void {
  if (active === null) return;
  const bar = active;
  active = null;
  bar.stop();
}

/**
 * The terminal cli-progress draws on (its `terminal` option): its own but for the saved cursor. cli-progress
 * saves the cursor's place at start and goes back to it at the end, which is right for a bar alone on the
 * screen; here log lines are written below it meanwhile (the screen scrolls), and going back would draw
 * over them. The line is drawn where the cursor is, always at the start of the current line.
 */
function lineTerminal(stream: NodeJS.WriteStream) {
  return {
    isTTY: () => stream.isTTY === true,
    getWidth: () => stream.columns || 80,
    write: (text: string) => stream.write(text),
    cursorTo: (x: number | null) => cursorTo(stream, x ?? 0),
    clearRight: () => clearLine(stream, 1),
    clearLine: () => clearLine(stream, 0),
    newline: () => stream.write('\n'),
    cursorSave: () => undefined,
    cursorRestore: () => undefined,
    cursor: () => undefined,
    lineWrapping: () => undefined,
  };
}

/** Clears the progress line being drawn, if any, so that a log line starts at the left margin. */
export function clearProgressLine(): void {
  if (active === null || output === null) return;
  cursorTo(output, 0);
  clearLine(output, 0);
}

/** "restoring session s  [=========-----------] 45% | 3,915/8,700 files | 2.3 MiB/5.2 MiB | 870 files/s, 1.1 MiB/s", cut to the terminal's width. */
function describe(
  work: ProgressWork,
  done: { count: number; bytes: number },
  startTime: number,
  maxWidth: number,
  drawBar: (share: number) => string,
): string {
  const unit = work.unit === undefined ? 'files' : work.unit;
  const share = work.bytes ? done.bytes / work.bytes : work.count ? done.count / work.count : null;
  const parts = [work.label];
  if (share !== null) {
    const progress = Math.min(1, share);
    parts[0] += `  [${drawBar(progress)}] ${Math.floor(progress * 100)}%`;
  }
  if (unit !== null)
    parts.push(`${done.count.toLocaleString('en-US')}${work.count === null ? '' : `/${work.count.toLocaleString('en-US')}`} ${unit}`);
  parts.push(work.bytes === null ? formatBytes(done.bytes) : `${formatBytes(done.bytes)}/${formatBytes(work.bytes)}`);
  const seconds = (Date.now() - startTime) / 1000;
  if (seconds > 0) {
    const items = unit === null ? '' : `${Math.round(done.count / seconds).toLocaleString('en-US')} ${unit}/s, `;
    parts.push(`${items}${formatBytes(Math.round(done.bytes / seconds))}/s`);
  }
  return parts.join(' | ').slice(0, Math.max(0, maxWidth - 1));
}
