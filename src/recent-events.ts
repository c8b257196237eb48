// The last lifecycle events of this process's sessions, kept in memory for the status page
// (`GET /api/session/events`): a bounded ring, so a flapping session cannot grow it, and nothing is stored.
import { maskJid } from './creds.js';
import type { SessionEvent } from './lifecycle-events.js';
import type { EventForwarder } from './session-events.js';

/** Events kept at most; the oldest is dropped for a new one. A page shows a screenful of them. */
export const RECENT_EVENTS_KEPT = 100;

/** One event as the session API shows it: the webhook's shape, phone masked as everywhere else in the API. */
export interface RecentEventJson {
  event: SessionEvent['event'];
  session_id: string;
  /** ISO-8601. */
  at: string;
  generation: number | null;
  phone: string | null;
}

/** An event forwarder that remembers the newest RECENT_EVENTS_KEPT events (since this process started). */
export class RecentEvents implements EventForwarder {
  private readonly ring: RecentEventJson[] = [];

  /** `wall`: the clock that stamps an event told without its time, ms since the epoch. */
  constructor(
    private readonly wall: () => number = Date.now,
    private readonly capacity = RECENT_EVENTS_KEPT,
  ) {}

  /** Remembers `event` (never throws, returns at once), dropping the oldest when full. */
  send(event: SessionEvent): void {
    this.ring.push({
      event: event.event,
      session_id: event.sessionId,
      at: new Date(event.at ?? this.wall()).toISOString(),
      generation: event.generation,
      phone: event.jid === null ? null : maskJid(event.jid),
    });
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
  }

  /** The events kept, newest first (a copy). */
  list(): RecentEventJson[] {
    return this.ring.toReversed();
  }
}
