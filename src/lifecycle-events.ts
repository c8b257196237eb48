// The lifecycle events of a session (SPEC "Session lifecycle", "Events"): their names and their shape, as
// the loop tells them and the log, the metrics and the webhook take them.

/** Every event, in the SPEC's order. */
export const SESSION_EVENTS = ['paired', 'logged_out', 'repaired', 'identity_refused', 'unprotected', 'protected'] as const;
/** One of SESSION_EVENTS. */
export type SessionEventName = (typeof SESSION_EVENTS)[number];

/** One lifecycle event of one session, as the code that saw it tells it. */
export interface SessionEvent {
  event: SessionEventName;
  sessionId: string;
  /** When it happened, ms since the epoch; default: when it is sent on (the clock's wall()). */
  at?: number;
  /** The generation it concerns (the head for a refusal), or null when there is none (a protection change). */
  generation: number | null;
  /** The jid the login is paired with (creds.me.id), or null; only a masked form ever leaves the process. */
  jid: string | null;
}
