// Keeps the session's single-writer lease: acquires it, renews it every third of its TTL, stands by
// while another process holds it, and says at once when it is lost so writes stop.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Clock } from './clock.js';
import { describeError } from './errors.js';
import type { LeaseAttempts, WaitingLease } from './lease-attempts.js';
import type { LeaseRenewals, HeldLease } from './lease-renewals.js';
import type { Logger } from './log.js';
import type { Lease, SessionStore } from './store/index.js';

// host:pid alone is not unique: two containers with the same hostname (host networking, a fixed
// hostname) both running as PID 1 would share it and take the lease from each other.
const OWNER_NONCE = randomBytes(3).toString('hex');

/** This process's identity as a lease owner: `host:pid:nonce`. */
export function leaseOwner(): string {
  return `${os.hostname()}:${process.pid}:${OWNER_NONCE}`;
}

export interface LeaseEvents {
  /** We became the writer (at start or by taking over an expired or released lease). */
  acquired(lease: Lease): void;
  /** We stopped being the writer: renewal failed, expired, or the lease was taken over. */
  lost(reason: string): void;
  /** Another live process holds the lease; we stand by. */
  standby(holder: string): void;
  /** A database operation failed. */
  databaseError(error: unknown): void;
}

export class LeaseKeeper {
  private lease: Lease | null = null;
  /** Our own conservative view of when the lease runs out, by the local clock, ms. */
  private localExpiry = 0;
  private cancelTimer: (() => void) | null = null;
  private stopped = false;
  private holderLogged: string | null = null;
  private running: Promise<void> = Promise.resolve();
  /** The lease as registered with `renewals` while held (many sessions), else null. */
  private batched: HeldLease | null = null;

  /** This session as registered with `attempts` while it waits for the lease (many sessions), else null. */
  private waiting: WaitingLease | null = null;

  /**
   * `renewals`: renew together with the process's other leases (many sessions) instead of one by one;
   * `attempts`: likewise, try to acquire it together with the other sessions waiting for theirs.
   */
  constructor(
    private readonly store: SessionStore,
    private readonly sessionId: string,
    private readonly owner: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly events: LeaseEvents,
    private readonly renewals: LeaseRenewals | null = null,
    private readonly attempts: LeaseAttempts | null = null,
  ) {}

  /** The lease while we hold it, else null. Never returns a lease our local clock says has expired. */
  get current(): Lease | null {
    if (this.lease && this.clock.now() >= this.localExpiry)
      this.drop('the lease expired before it could be renewed (database unreachable?)');
    return this.lease;
  }

  /** Starts acquiring/renewing in the background. */
  start(): void {
    this.tick(true);
  }

  /** Tries once, now, to get the lease if we do not hold it (used by the final flush). */
  async tryAcquire(): Promise<Lease | null> {
    await this.running;
    if (!this.current) await this.attemptAcquire(true);
    return this.lease;
  }

  /** Settles once the acquisition or renewal in flight (if any) has ended; never rejects. */
  idle(): Promise<void> {
    return this.running;
  }

  /** Marks lease `token` lost (a fenced-off commit proved it); a newer lease we hold since is kept. */
  markLost(token: number, reason: string): void {
    if (this.lease?.token !== token) return;
    this.drop(reason);
    this.schedule(this.ttlMs / 3);
  }

  /** Stops renewing and releases the lease so a successor can take over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    this.unwait();
    // A batch in flight may still take the lease: its outcome releases it (see `taken`), chained on `running`.
    await this.attempts?.idle();
    await this.running;
    const lease = this.lease;
    this.lease = null;
    this.unbatch();
    if (!lease) return;
    try {
      await this.store.releaseLease(this.sessionId, lease);
      this.log.info({ token: lease.token }, 'lease released');
    } catch (error) {
      this.events.databaseError(error);
      this.log.warn({ err: describeError(error) }, 'could not release the lease; it expires by itself after its TTL');
    }
  }

  /** `now`: an attempt to acquire is wanted at once (start), not at the next periodic batch. */
  private tick(now = false): void {
    if (this.stopped) return;
    if (!this.lease && this.attempts) {
      // Tried by `attempts` until acquired (its own cadence); this keeper's timer starts again then.
      this.running = this.wait(now);
      return;
    }
    // A batched lease is renewed by `renewals`, whose every outcome checks the expiry: no timer of this
    // keeper's own runs while it is held (a thousand sessions would be a hundred idle wake-ups a second);
    // losing it (drop) starts the ticks again.
    if (this.lease && this.batched) return;
    const work = this.lease ? this.renew() : this.attemptAcquire();
    this.running = work.finally(() => this.schedule(this.ttlMs / 3));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = this.clock.setTimer(() => this.tick(), ms);
  }

  private async attemptAcquire(now = false): Promise<void> {
    if (this.attempts) return this.wait(now);
    const startedAt = this.clock.now();
    try {
      const lease = await this.store.acquireLease(this.sessionId, this.owner, this.ttlMs);
      if (this.stopped && lease) {
        await this.store.releaseLease(this.sessionId, lease);
        return;
      }
      if (!lease) {
        const holder = await this.store.leaseHolder(this.sessionId);
        this.standingBy(holder?.owner ?? 'another process');
        return;
      }
      this.held({ owner: lease.owner, token: lease.token }, startedAt);
    } catch (error) {
      this.events.databaseError(error);
    }
  }

  /** `lease` was taken by a statement that started at `startedAt`: this process is the writer. */
  private held(lease: Lease, startedAt: number): void {
    this.holderLogged = null;
    this.lease = lease;
    this.localExpiry = startedAt + this.ttlMs;
    this.log.info({ token: lease.token, ttlMs: this.ttlMs }, 'lease acquired: this process is the writer');
    this.batch(lease);
    this.events.acquired(lease);
  }

  private standingBy(name: string): void {
    if (this.holderLogged !== name) this.log.info({ holder: name }, 'standing by: another process holds the session lease');
    this.holderLogged = name;
    this.events.standby(name);
  }

  /**
   * Waits for the lease with the other sessions (`attempts`): `now` joins the next prompt batch (settles
   * when it has ended), else the periodic one. Registered once; the outcome arrives by `waiting`.
   */
  private wait(now: boolean): Promise<void> {
    if (!this.attempts || this.stopped || this.lease) return Promise.resolve();
    this.waiting ??= {
      acquired: (lease, startedAt) => this.taken(lease, startedAt),
      standby: (holder) => this.standingBy(holder ?? 'another process'),
      failed: (error) => this.events.databaseError(error),
    };
    return this.attempts.add(this.sessionId, this.waiting, now);
  }

  /** A batch took the lease for this session (see wait); a keeper stopped meanwhile gives it back. */
  private taken(lease: Lease, startedAt: number): void {
    this.waiting = null;
    if (this.stopped) {
      this.running = this.running.then(() =>
        this.store.releaseLease(this.sessionId, lease).then(
          () => undefined,
          (error: unknown) => this.events.databaseError(error),
        ),
      );
      return;
    }
    this.held(lease, startedAt);
    this.schedule(this.ttlMs / 3);
  }

  private unwait(): void {
    if (this.waiting) this.attempts?.remove(this.sessionId, this.waiting);
    this.waiting = null;
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const startedAt = this.clock.now();
    try {
      const expiresAt = await this.store.renewLease(this.sessionId, lease, this.ttlMs);
      if (this.lease !== lease) return;
      if (expiresAt) this.localExpiry = startedAt + this.ttlMs;
      else this.drop('the lease was taken over or expired');
    } catch (error) {
      this.events.databaseError(error);
      // Keep it until it runs out by our own clock; the fencing token protects the data either way.
      void this.current;
    }
  }

  /** Hands the renewal of `lease` to `renewals`, when there is one. */
  private batch(lease: Lease): void {
    if (!this.renewals) return;
    this.unbatch();
    const held: HeldLease = {
      lease,
      renewed: (startedAt) => {
        if (this.lease === lease) this.localExpiry = startedAt + this.ttlMs;
      },
      lost: () => {
        if (this.lease === lease) this.drop('the lease was taken over or expired');
      },
      // Kept until it runs out by our own clock; the fencing token protects the data either way.
      failed: () => void this.current,
    };
    this.batched = held;
    this.renewals.add(this.sessionId, held);
  }

  private unbatch(): void {
    if (this.batched) this.renewals?.remove(this.sessionId, this.batched);
    this.batched = null;
  }

  private drop(reason: string): void {
    if (!this.lease) return;
    this.log.warn({ token: this.lease.token, reason }, 'lease lost: writes stop until it is held again');
    this.lease = null;
    this.unbatch();
    this.events.lost(reason);
    // Try again a third of the TTL from now (a batched lease had no timer of its own running).
    this.schedule(this.ttlMs / 3);
  }
}
