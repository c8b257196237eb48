// Whether this process's database schema is ready for queries: the session API answers 503 until the
// migrations have run, so that no request ever runs against a schema that is being created or upgraded.
import { describeError } from './errors.js';

/**
 * One schema preparation for the whole process (the loop's start-up and the session API share it): at most
 * one attempt in flight, a failed attempt forgotten so that the next caller tries again.
 */
export class SchemaGate {
  private done = false;
  private attempt: Promise<void> | null = null;
  private lastError: string | null = null;

  /** `prepare` creates or upgrades the schema (migrate); it may be called again after it rejects. */
  constructor(private readonly prepare: () => Promise<unknown>) {}

  /** True once a preparation succeeded; it never turns false again. */
  get ready(): boolean {
    return this.done;
  }

  /** Why the schema is not ready (for /readyz and the API's 503), or null when it is. */
  get reason(): string | null {
    if (this.ready) return null;
    return this.lastError === null
      ? 'the database schema is being prepared (migrations have not finished)'
      : `the database schema cannot be prepared yet (${this.lastError}); the keeper keeps trying`;
  }

  /** Resolves once the schema is ready, running the preparation if none is in flight; rejects with its error. */
  ensure(): Promise<void> {
    if (this.ready) return Promise.resolve();
    this.attempt ??= this.prepare().then(
      () => {
        this.done = true;
        this.lastError = null;
      },
      (error: unknown) => {
        this.attempt = null;
        this.lastError = describeError(error);
        throw error;
      },
    );
    return this.attempt;
  }
}
