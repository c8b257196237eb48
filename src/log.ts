// pino logs: JSON lines, or pino-pretty's human-readable lines on a terminal, one line per event. One
// root logger per process; components take a child ({ component }).
import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { clearProgressLine } from './progress.js';

export type { Logger };

/** Which stream a command's logs go to: stdout for the roles, stderr when stdout carries a result. */
export type LogStream = 'stdout' | 'stderr';

/**
 * A synchronous pino logger at `level` on `stream`, so lines are not lost when the process exits right
 * after an error. `format` json writes one object a line; pretty writes pino-pretty's lines, one per event
 * with its fields on the same line (colours only on a terminal); null picks pretty when the stream is a
 * terminal, json otherwise. Durations are rounded in both (roundDurations).
 */
export function createLogger(level: string, stream: LogStream, format: 'json' | 'pretty' | null = null): Logger {
  const fd = stream === 'stdout' ? 1 : 2;
  const terminal = (stream === 'stdout' ? process.stdout : process.stderr).isTTY === true;
  const options = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }), log: roundDurations },
  };
  if ((format ?? (terminal ? 'pretty' : 'json')) === 'json') return pino(options, pino.destination({ fd, sync: true }));
  // In-process (not a transport worker), so it works from the single-file bundle and stays synchronous.
  const pretty = PinoPretty({
    destination: fd,
    sync: true,
    colorize: terminal,
    singleLine: true,
    // No field is set apart on lines of its own: an `err` (a description here; an Error's stack only at
    // debug) stays on its event's line like every other field.
    errorLikeObjectKeys: [],
    messageFormat: (event, key) => oneLine(event[key]),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  // A progress line drawn on the terminal (progress.ts) is cleared first, so that the event does not
  // start in the middle of it; the progress line is drawn again below the event.
  return pino(options, {
    write: (line: string) => {
      clearProgressLine();
      pretty.write(line);
    },
  });
}

/** Control characters a message must not carry to a terminal (pino-pretty's own rule, plus line breaks). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

/** A message as one terminal line: line breaks written as `\n` (as in JSON), other control characters dropped. */
export function oneLine(message: unknown): string {
  if (message === undefined || message === null) return '';
  return String(message).replace(/\r?\n/g, '\\n').replace(CONTROL, '');
}

/** Decimal places kept in a duration in seconds: milliseconds, what every duration here is measured in. */
const SECONDS_DECIMALS = 3;

/**
 * The fields of one log event with every duration rounded: a field named `ms` or ending in `Ms` to whole
 * milliseconds, one named `seconds` or ending in `Seconds` (or `lag`) to the millisecond. The loop's clock
 * is monotonic time with microsecond fractions (12.345678 ms) that no reader needs, in JSON or on a
 * terminal. Other fields, and non-numbers, are returned as they are.
 */
export function roundDurations(fields: Record<string, unknown>): Record<string, unknown> {
  let rounded: Record<string, unknown> | null = null;
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value !== 'number' || Number.isInteger(value) || !Number.isFinite(value)) continue;
    let to: number | null = null;
    if (key === 'ms' || key.endsWith('Ms')) to = Math.round(value);
    else if (key === 'seconds' || key.endsWith('Seconds') || key === 'lag') to = Number(value.toFixed(SECONDS_DECIMALS));
    if (to === null) continue;
    rounded ??= { ...fields };
    rounded[key] = to;
  }
  return rounded ?? fields;
}
