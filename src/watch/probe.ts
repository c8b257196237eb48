// Whether native watching works in a directory, tried the way the keeper watches (watch/chokidar.ts):
// `doctor` says so before a deploy finds out by falling back to polling.
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { systemClock, valueWithin, type Clock } from '../clock.js';
import { watchDirectory, type DirectoryWatch } from './chokidar.js';

/**
 * Watches `dir` natively, creates the empty file `probeName` in it and waits up to `timeoutMs` (on
 * `clock`) for the watch to report it; the file is removed again. Resolves true when it was reported,
 * false when nothing came in time, or the error that stopped watching or writing (never rejects).
 */
export async function probeNativeWatching(
  dir: string,
  probeName: string,
  timeoutMs: number,
  clock: Clock = systemClock,
): Promise<boolean | Error> {
  let seen!: (outcome: true | Error) => void;
  const outcome = new Promise<true | Error>((resolve) => (seen = resolve));
  let watch: DirectoryWatch;
  try {
    watch = await watchDirectory(
      dir,
      { backend: 'native' },
      {
        entry: (name, event) => {
          if (name === probeName && event === 'add') seen(true);
        },
        removed: () => seen(new Error(`${dir} was removed while native watching was tried`)),
        error: (error) => seen(asError(error)),
      },
    );
  } catch (error) {
    return asError(error);
  }
  const probe = path.join(watch.dir, probeName);
  try {
    const wrote = await writeFile(probe, '').then(
      () => null,
      (error: unknown) => asError(error),
    );
    return wrote ?? (await valueWithin(clock, outcome, timeoutMs, false));
  } finally {
    await watch.close();
    await rm(probe, { force: true });
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
