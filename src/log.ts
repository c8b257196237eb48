// pino JSON logs. One root logger per process; components take a child ({ component }).
import { pino, type Logger } from 'pino';

export type { Logger };

/** Which stream a command's logs go to: stdout for the roles, stderr when stdout carries a result. */
export type LogStream = 'stdout' | 'stderr';

/** A synchronous pino logger, so lines are not lost when the process exits right after an error. */
export function createLogger(level: string, stream: LogStream): Logger {
  const fd = stream === 'stdout' ? 1 : 2;
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd, sync: true }),
  );
}
