// Where a session's lifecycle events go (SPEC "Session lifecycle", "Events"): the log (info; warn for a
// refused identity and a lost protection), baileys_keeper_session_events_total, and the webhook if one is set.
import { maskJid } from './creds.js';
import type { Logger } from './log.js';
import type { SessionEvent } from './lifecycle-events.js';
import type { Metrics } from './metrics.js';

/** Something that delivers events elsewhere (the webhook); it must return at once and never throw. */
export interface EventForwarder {
  send(event: SessionEvent): void;
}

const WARN: ReadonlySet<SessionEvent['event']> = new Set(['identity_refused', 'unprotected']);

const SAYS: Record<SessionEvent['event'], string> = {
  paired: 'session paired: a new login is stored',
  logged_out: 'session logged out: restore writes no login until the bot pairs again (the history keeps the old one)',
  repaired: 'session paired again after a logout: the new login is stored',
  identity_refused: 'another login was refused over the stored one (see the refusal above)',
  unprotected: 'session unprotected',
  protected: 'session protected again',
};

/** The onEvent of every loop of the process: logs, counts and forwards each event. */
export function eventSink(metrics: Metrics, log: Logger, forwarders: readonly EventForwarder[] = []): (event: SessionEvent) => void {
  return (event) => {
    metrics.countEvent(event.sessionId, event.event);
    const fields = {
      session: event.sessionId,
      event: event.event,
      generation: event.generation,
      ...(event.jid === null ? {} : { phone: maskJid(event.jid) }),
    };
    if (WARN.has(event.event)) log.warn(fields, SAYS[event.event]);
    else log.info(fields, SAYS[event.event]);
    for (const forwarder of forwarders) forwarder.send(event);
  };
}
