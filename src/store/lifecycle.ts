// What a backup does to the session's login (SPEC "Session lifecycle" and the guard of "What is backed up"):
// a first pairing, a logout the keeper saw, a re-pairing after one — stored, each an event — and another
// login over a paired one, a login dropped unseen, or the logged-out login coming back — refused.
import { CREDS_FILE, maskJid, parseCreds, type CredsSummary } from '../creds.js';
import type { Queryable } from '../db/pool.js';
import { currentVersionsOf } from '../db/queries/files.js';
import type { LockedSession } from '../db/queries/sessions.js';
import type { MarkerState, PlainFile } from './codec/index.js';
import type { LoginEvent, LoginSeen, Refusal, StoreContext } from './types.js';

export type LoginJudgement = (
  | { kind: 'refused'; refusal: Exclude<Refusal, 'rollback'>; reason: string }
  | {
      kind: 'store';
      /** The head's registered jid after this backup. */
      registeredJid: string | null;
      event: LoginEvent | null;
      /** This generation is a logout: record the session as logged out (the login's fingerprint). */
      logout: { identity: string | null } | null;
      /** The session was logged out and is not any more (a new pairing). */
      endsLogout: boolean;
    }
) & {
  /** The session's pending pairing to record (an identity key, or null to forget it); undefined: leave it. */
  pendingPairing?: string | null;
};

export interface LoginOptions {
  allowReplace: boolean;
  login: LoginSeen;
  /** The head's creds.json when the caller read it already in this transaction (headCredsContent); undefined: read it here. */
  headCreds?: Buffer | null;
}

/**
 * Judges the login change of a backup that stores `changed` and deletes `deleted` over the locked `session`
 * (SPEC "Session lifecycle"; the guard of "What is backed up"). Reads the head's creds.json only when the
 * head holds a paired login and creds.json changed.
 */
export async function judgeLogin(
  ctx: StoreContext,
  tx: Queryable,
  session: LockedSession,
  change: { changed: readonly PlainFile[]; deleted: readonly string[] },
  marker: MarkerState,
  options: LoginOptions,
): Promise<LoginJudgement> {
  const credsFile = change.changed.find((file) => file.name === CREDS_FILE);
  const credsDeleted = change.deleted.includes(CREDS_FILE);
  if (!credsFile && !credsDeleted)
    return { kind: 'store', registeredJid: session.registeredJid, event: null, logout: null, endsLogout: false };
  const creds: CredsSummary | null = credsFile ? parseCreds(credsFile.content.toString('utf8')) : null;
  const jid = creds?.registeredJid ?? null;
  // Whatever this backup stores of creds.json ends a pending pairing.
  const forget = session.pendingIdentityKey === null ? {} : { pendingPairing: null };
  const store = (event: LoginEvent | null, more: { logout?: { identity: string | null }; endsLogout?: boolean } = {}): LoginJudgement => ({
    kind: 'store',
    registeredJid: jid,
    event,
    logout: more.logout ?? null,
    endsLogout: more.endsLogout ?? false,
    ...forget,
  });

  if (session.registeredJid !== null) {
    const headContent = options.headCreds !== undefined ? options.headCreds : await headCredsContent(ctx, tx, session.sessionId, marker);
    const head = headContent ? parseCreds(headContent.toString('utf8')) : null;
    if (jid === null) {
      // A logout the keeper saw happen: stored, so that restore hands out no dead login. A directory that came
      // back without creds.json after going away as a whole may be a remount half done: only unpaired creds
      // (the bot started again) count then.
      const saw = options.login === 'seen' || options.login === 'dropped' || (options.login === 'replaced' && creds !== null);
      if (saw) return store('logged_out', { logout: { identity: head?.identity ?? null } });
      if (options.allowReplace) return store(null);
      const what = credsDeleted ? 'has no creds.json' : 'holds a creds.json that is not registered (no QR scanned)';
      return {
        kind: 'refused',
        refusal: 'unregistered',
        reason:
          `the stored session is registered to ${maskJid(session.registeredJid)} but the directory ${what}; ` +
          'it was not backed up so the stored login survives. Restore it, or pass --allow-replace to overwrite it ' +
          "(if the bot was logged out, 'baileys-keeper logout' records that)",
        // Unpaired creds keep their identity key through the QR scan: the login they become is a re-pairing.
        pendingPairing: creds?.identityKey ?? null,
      };
    }
    if (!head?.identity || !creds?.identity || head.identity === creds.identity) return store(null);
    // Another login: a re-pairing when the keeper saw the old one go, or saw these creds before their QR scan,
    // or — in the directory it watches — the very same device id (me.id) came back with new keys: a bot that
    // lost its creds.json (a torn write at a crash) and paired that device again. Another account or another
    // device of it is what the guard refuses.
    const sameDevice = options.login !== null && head.registeredJid === jid;
    if (options.login === 'dropped' || options.login === 'replaced' || sameDevice || session.pendingIdentityKey === creds.identityKey)
      return store('repaired');
    if (options.allowReplace) return store('paired');
    return {
      kind: 'refused',
      refusal: 'identity',
      reason:
        `the stored session is paired with ${maskJid(head.registeredJid!)} but the directory holds another login ` +
        `(${maskJid(jid)}): it was not backed up so the stored login survives. Check --session (two bots must not ` +
        'share a session id); pass --allow-replace to store the new login over it',
    };
  }
  if (jid === null) return store(null);
  if (!session.loggedOut) return store('paired');
  const same = session.loggedOut.identity !== null && session.loggedOut.identity === creds?.identity;
  // A logout the keeper inferred is undone by the login itself coming back to the directory (a folder
  // moved away at shutdown and back, a writer that deletes then rewrites): a wrong guess must not lose a
  // working login. A logout by hand stays: that login was discarded on purpose.
  if (same && session.loggedOut.by === 'seen') return store('repaired', { endsLogout: true });
  if (same && !options.allowReplace) {
    return {
      kind: 'refused',
      refusal: 'logged_out_login',
      reason:
        `the directory holds the login that was logged out at ${session.loggedOut.at.toISOString()} ` +
        `(generation ${session.loggedOut.generation}); it was not backed up. Pair again by QR, or bring that login back ` +
        "with 'baileys-keeper restore --generation N --force' (N before the logout; 'baileys-keeper history' lists them)",
    };
  }
  return store('repaired', { endsLogout: true });
}

/** The head's creds.json content, opened under the session's rule; null when there is none or it cannot be read. */
export async function headCredsContent(ctx: StoreContext, tx: Queryable, sessionId: string, marker: MarkerState): Promise<Buffer | null> {
  const [row] = await currentVersionsOf(tx, sessionId, [CREDS_FILE]);
  if (!row) return null;
  const opened = ctx.codec.open(sessionId, row, ctx.codec.readRule(marker));
  return 'reason' in opened ? null : opened.content;
}

/** The head's creds.json as a creds summary (see headCredsContent); null when there is none or it cannot be read. */
export async function headCreds(ctx: StoreContext, tx: Queryable, sessionId: string, marker: MarkerState): Promise<CredsSummary | null> {
  const content = await headCredsContent(ctx, tx, sessionId, marker);
  return content ? parseCreds(content.toString('utf8')) : null;
}
