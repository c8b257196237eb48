// Named errors, one per documented exit code (README "Exit codes"). Messages say what failed and what to do.

export const ExitCode = {
  ok: 0,
  unexpected: 1,
  databaseUnreachable: 2,
  nothingToRestore: 3,
  integrity: 4,
  usage: 64,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: every error the CLI expects carries the exit code it maps to. */
export class KeeperError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad flags, env values or arguments (exit 64). */
export class UsageError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.usage, options);
  }
}

/** The database could not be reached within the allowed time (exit 2). */
export class DatabaseUnreachableError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.databaseUnreachable, options);
  }
}

/** A requested backup or generation does not exist (exit 3). */
export class NothingToRestoreError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.nothingToRestore, options);
  }
}

/** A command that only reads found no keeper schema at all: nothing was ever stored in this database (exit 3). */
export class NothingStoredError extends NothingToRestoreError {}

/** Stored data failed a check: checksum, file name, content shape or archive entry (exit 4). */
export class IntegrityError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.integrity, options);
  }
}

/** An operation was refused on purpose: guard, lease held by another writer, missing confirmation (exit 1). */
export class RefusedError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.unexpected, options);
  }
}

/** The writer's lease was lost or taken over, so its commit was fenced off. */
export class LeaseLostError extends KeeperError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.unexpected, options);
  }
}

/**
 * A one-line description of any error, without stack or secrets: its message, prefixed with its `code`
 * (errno, SQLSTATE) when the message lacks it; the first inner error of an AggregateError.
 */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
