// pino logs: JSON lines, or pino-pretty's human-readable lines on a terminal. One root logger per
// process; components take a child ({ component }).
import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

/** Which stream a command's logs go to: stdout for the roles, stderr when stdout carries a result. */
export type LogStream = 'stdout' | 'stderr';

/**
 * A synchronous pino logger at `level` on `stream`, so lines are not lost when the process exits right
 * after an error. `format` json writes one object a line; pretty writes pino-pretty's lines (colours
 * only on a terminal); null picks pretty when the stream is a terminal, json otherwise.
 */
export function createLogger(level: string, stream: LogStream, format: 'json' | 'pretty' | null = null): Logger {
  const fd = stream === 'stdout' ? 1 : 2;
  const terminal = (stream === 'stdout' ? process.stdout : process.stderr).isTTY === true;
  const options = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if ((format ?? (terminal ? 'pretty' : 'json')) === 'json') return pino(options, pino.destination({ fd, sync: true }));
  // In-process (not a transport worker), so it works from the single-file bundle and stays synchronous.
  return pino(
    options,
    PinoPretty({ destination: fd, sync: true, colorize: terminal, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
  );
}
