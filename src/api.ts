// The session HTTP API, compatible with the system bots already call (docs/http-api.md):
// POST /api/session/backup, GET /api/session/restore, GET /api/session/status, DELETE /api/session/delete,
// and POST /api/session/logout (SPEC "Session lifecycle"); for the status page, GET /api/session/history and
// GET /api/session/events (read-only).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Mutex, Semaphore } from 'async-mutex';
import { DatabaseUnreachableError, describeError, IntegrityError, LeaseLostError, NothingToRestoreError, RefusedError } from './errors.js';
import { CREDS_FILE, parseCreds } from './creds.js';
import { sendJson, type Route } from './http.js';
import type { SessionEvent } from './lifecycle-events.js';
import { MAX_INCOMING_FILES, SnapshotBuilder } from './incoming.js';
import type { Logger } from './log.js';
import type { RetentionPolicy } from './store/retention.js';
import { isValidSessionId, quoteName, SESSION_ID_RULE } from './names.js';
import type { BackupLoop } from './loop/backup-loop.js';
import type { SchemaGate } from './schema-gate.js';
import type { RecentEventJson } from './recent-events.js';
import { sessionHistoryJson } from './session-history.js';
import { sessionStatusJson } from './session-status.js';
import { isDatabaseUnavailable, type Lease, type SessionStore } from './store/index.js';

/** Most bytes of an oversize body read (and discarded) so the client can see the 413. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
/** Lease time for a write made through the API to a session this sidecar does not watch, ms. */
const API_LEASE_TTL_MS = 30_000;
/** Seconds a client is told to wait (Retry-After) when the database is unreachable or not ready yet. */
const RETRY_AFTER_SECONDS = '5';
/**
 * Request bodies with files held in memory at once (read, parsed, being stored); more wait unread. One
 * may be up to KEEPER_MAX_BODY_BYTES and MAX_INCOMING_FILES files, and the worst such body takes a few
 * hundred MiB while it is parsed and written: one at a time keeps the keeper within its memory limit.
 */
const BODY_SLOTS = 1;
/**
 * SQLSTATEs of a transient conflict inside a healthy database (serialization failure, deadlock, lock or
 * statement timeout): like an unreachable database, a retry later succeeds.
 */
const TRANSIENT_SQLSTATE = new Set(['40001', '40P01', '55P03', '57014']);

export interface ApiOptions {
  store: SessionStore;
  /** The loop of the session(s) this process watches; its default session is what a request naming none means. */
  loop: BackupLoop;
  /** This process's lease owner id; API writes to other sessions use `${owner}/api`. */
  owner: string;
  token: string | null;
  maxBodyBytes: number;
  /** The retention schedule applied after each write. */
  retention: RetentionPolicy;
  allowReplace: boolean;
  /** The schema preparation: every request answers 503 + Retry-After until it is ready. */
  schema: SchemaGate;
  log: Logger;
  /** Told each lifecycle event a request causes (a logout, a pairing stored from session_data); default: none. */
  onEvent?: (event: SessionEvent) => void;
  /** The last lifecycle events of this process, newest first (GET /api/session/events); default: none kept. */
  recentEvents?: () => readonly RecentEventJson[];
}

/** An answer other than 200, with the message the client sees as {error}. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * Writes to one session made through this process run one at a time, in arrival order: each takes the
 * session's lease as this process's API owner, and two at once would fence each other (the second
 * acquisition replaces the first's token). Across processes the lease decides.
 */
class SessionQueues {
  private readonly queues = new Map<string, { mutex: Mutex; users: number }>();

  /** Runs `work` after every earlier call for `sessionId` has settled; resolves or rejects with it. */
  async run<T>(sessionId: string, work: () => Promise<T>): Promise<T> {
    let queue = this.queues.get(sessionId);
    if (!queue) {
      queue = { mutex: new Mutex(), users: 0 };
      this.queues.set(sessionId, queue);
    }
    queue.users++;
    try {
      return await queue.mutex.runExclusive(work);
    } finally {
      // Forgotten when idle, so that the map holds only sessions with requests in flight.
      if (--queue.users === 0) this.queues.delete(sessionId);
    }
  }
}

/** Whether `error` means the database cannot serve us now (a retry later may succeed): 503, never 500. */
function isTransient(error: unknown): boolean {
  if (error instanceof DatabaseUnreachableError || isDatabaseUnavailable(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_SQLSTATE.has(code);
}

/**
 * The session API's routes. Every answer is JSON; 200 with the result, else {error}: 400 bad input, 401/403
 * token, 404 unknown session, 409 another writer or the guard, 413 over a limit, 503 + Retry-After while
 * the database is unreachable or its schema not ready, 500 only for a fault of the keeper itself.
 */
export function apiRoutes(options: ApiOptions): Route[] {
  const context: Context = { ...options, queues: new SessionQueues(), bodies: new Semaphore(BODY_SLOTS) };
  const guarded =
    (handler: (req: IncomingMessage, url: URL) => Promise<unknown>) =>
    async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
      try {
        authorize(req, options.token);
        await schemaReady(options.schema);
        sendJson(res, 200, await handler(req, url));
      } catch (error) {
        if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message }, error.headers);
        if (error instanceof NothingToRestoreError) return sendJson(res, 404, { error: error.message });
        if (error instanceof RefusedError) return sendJson(res, 409, { error: error.message });
        if (isTransient(error)) {
          options.log.warn({ path: url.pathname, err: describeError(error) }, 'session API request failed: database unavailable');
          return sendJson(
            res,
            503,
            { error: `the database cannot be reached now (${describeError(error)}); retry later` },
            { 'retry-after': RETRY_AFTER_SECONDS },
          );
        }
        if (error instanceof IntegrityError) return sendJson(res, 500, { error: error.message });
        options.log.error({ path: url.pathname, err: describeError(error) }, 'session API request failed');
        return sendJson(res, 500, { error: `the request failed (${describeError(error)}); see the keeper log` });
      }
    };
  return [
    { method: 'GET', path: '/api/session/status', handler: guarded(() => status(context)) },
    { method: 'GET', path: '/api/session/restore', handler: guarded((_req, url) => restore(context, url)) },
    { method: 'POST', path: '/api/session/backup', handler: guarded((req) => backup(context, req)) },
    { method: 'DELETE', path: '/api/session/delete', handler: guarded((_req, url) => remove(context, url)) },
    { method: 'POST', path: '/api/session/logout', handler: guarded((_req, url) => logout(context, url)) },
    { method: 'GET', path: '/api/session/history', handler: guarded((_req, url) => history(context, url)) },
    { method: 'GET', path: '/api/session/events', handler: guarded(async () => ({ events: options.recentEvents?.() ?? [] })) },
  ];
}

interface Context extends ApiOptions {
  queues: SessionQueues;
  bodies: Semaphore;
}

/**
 * Throws 503 + Retry-After until the schema is prepared (migrations done): no request may run a query
 * against a schema that is being created or upgraded. Asking starts a preparation if none is in flight.
 */
async function schemaReady(schema: SchemaGate): Promise<void> {
  if (schema.ready) return;
  void schema.ensure().catch(() => undefined);
  throw new HttpError(503, `the keeper is starting: ${schema.reason}; retry later`, { 'retry-after': RETRY_AFTER_SECONDS });
}

/** Bearer token, compared in constant time (hashes of equal length, so the length does not leak either). */
function authorize(req: IncomingMessage, token: string | null): void {
  if (token === null) {
    throw new HttpError(403, 'the session API is disabled: set KEEPER_API_TOKEN (or KEEPER_API_TOKEN_FILE) on the keeper to enable it');
  }
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const challenge = { 'www-authenticate': 'Bearer realm="baileys-keeper"' };
  if (!match) throw new HttpError(401, 'missing bearer token: send Authorization: Bearer <KEEPER_API_TOKEN>', challenge);
  const digest = (value: string) => createHash('sha256').update(value).digest();
  if (!timingSafeEqual(digest(match[1]!), digest(token))) throw new HttpError(401, 'wrong bearer token', challenge);
}

function sessionParam(url: URL, fallback: string | null): string {
  return validSessionId(url.searchParams.get('session_id') ?? fallback);
}

function validSessionId(value: string | null): string {
  if (value === null || value === '') throw new HttpError(400, 'session_id is required, e.g. ?session_id=default');
  if (!isValidSessionId(value))
    throw new HttpError(400, `invalid session_id ${JSON.stringify(value.slice(0, 120))}: use ${SESSION_ID_RULE}`);
  return value;
}

async function status(options: Context): Promise<unknown> {
  // A session this process writes is measured now; any other shows what its writer recorded.
  const live = (id: string) => {
    const kept = options.loop.loopFor(id);
    return kept?.writerLease ? kept.protection() : null;
  };
  return { sessions: (await options.store.status(null)).map((s) => sessionStatusJson(s, live(s.sessionId))) };
}

/** Most generations one history answer lists (`limit`); a session keeps far fewer under any sane retention. */
const MAX_HISTORY_LIMIT = 100_000;

/** GET /api/session/history: retained generations, newest first, at most `limit` (default all); 404 unknown. */
async function history(options: Context, url: URL): Promise<unknown> {
  const sessionId = sessionParam(url, options.loop.defaultSession);
  const rawLimit = url.searchParams.get('limit');
  let limit: number | null = null;
  if (rawLimit !== null) {
    limit = /^[1-9][0-9]{0,5}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!(limit <= MAX_HISTORY_LIMIT))
      throw new HttpError(400, `invalid limit ${JSON.stringify(rawLimit.slice(0, 40))}: use a whole number from 1 to ${MAX_HISTORY_LIMIT}`);
  }
  return sessionHistoryJson(sessionId, options.retention, await options.store.history(sessionId, limit));
}

async function restore(options: Context, url: URL): Promise<unknown> {
  const sessionId = sessionParam(url, options.loop.defaultSession);
  const loaded = await options.store.loadPoint(sessionId, {});
  if (!loaded) throw new HttpError(404, `session ${sessionId} has no backup`);
  // Keyed by untrusted file names: no prototype, so "__proto__" or "constructor" are plain keys.
  const sessionData: Record<string, string> = Object.create(null);
  for (const file of loaded.files) sessionData[file.name] = file.content.toString('utf8');
  return { session_id: sessionId, generation: loaded.generation.generation, session_data: sessionData };
}

async function backup(options: Context, req: IncomingMessage): Promise<unknown> {
  const watched: { sessionId: string | null } = { sessionId: null };
  // The slot is held from reading the body until the write is done: bodies waiting for one stay unread.
  const stored = await options.bodies.runExclusive(async () => {
    // The parsed body is dropped here: only the checked files are held while the write runs.
    const { sessionId, files } = backupRequest(options, await readJsonBody(req, options.maxBodyBytes));
    if (files === null) {
      watched.sessionId = sessionId;
      return null;
    }
    return options.queues.run(sessionId, () => store(options, sessionId, files));
  });
  // A backup of the watched directory holds no body in memory: it does not keep the body slot.
  const sessionId = watched.sessionId;
  if (sessionId !== null) return options.queues.run(sessionId, () => backupWatched(options, sessionId));
  return stored;
}

/** The session and the checked files of a backup body (files null: back up the watched directory). */
function backupRequest(options: Context, body: unknown): { sessionId: string; files: SnapshotBuilder | null } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'the body must be a JSON object: {"session_id": "default", "session_data": {"creds.json": "..."}}');
  const { session_id: rawSession, session_data: data } = body as Record<string, unknown>;
  if (rawSession !== undefined && rawSession !== null && typeof rawSession !== 'string')
    throw new HttpError(400, 'session_id must be a string');
  const sessionId = validSessionId((rawSession as string | null | undefined) ?? options.loop.defaultSession);
  return { sessionId, files: data === undefined || data === null ? null : checkedFiles(data) };
}

/** Without session_data: a backup of the watched directory now. */
async function backupWatched(options: Context, sessionId: string): Promise<unknown> {
  const watched = options.loop.loopFor(sessionId);
  if (!watched) {
    const own = options.loop.defaultSession;
    throw new HttpError(
      400,
      own === null
        ? `without session_data this backs up a watched directory, and session ${sessionId} has none in the sessions directory`
        : `without session_data this backs up the watched directory, which belongs to session ${own}, not ${sessionId}`,
    );
  }
  const outcome = await watched.backupNow();
  if (outcome === 'standby') throw await otherWriter(options, sessionId);
  if (outcome === 'failure')
    throw new HttpError(503, 'the backup failed (database unreachable?); the keeper keeps retrying', {
      'retry-after': RETRY_AFTER_SECONDS,
    });
  if (outcome === 'refused')
    throw new HttpError(409, 'the backup was refused by a guard (another login, or a directory older than the head); see the keeper log');
  return answer(options, sessionId);
}

/** session_data checked as files from disk are (names, sizes, torn JSON) and its file count bounded. */
function checkedFiles(data: unknown): SnapshotBuilder {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new HttpError(400, 'session_data must be an object mapping file names to file text');
  const entries = Object.entries(data as Record<string, unknown>);
  if (entries.length === 0) throw new HttpError(400, 'session_data is empty: nothing to back up');
  if (entries.length > MAX_INCOMING_FILES) throw tooManyFiles();
  const builder = new SnapshotBuilder();
  for (const [name, text] of entries) {
    if (typeof text !== 'string') throw new HttpError(400, `session_data[${quoteName(name)}] must be the file's text (a string)`);
    // UTF-8 has no form for a lone surrogate half: it would be stored as U+FFFD, not as the text sent.
    if (!text.isWellFormed())
      throw new HttpError(
        400,
        `session_data[${quoteName(name)}] is not well-formed Unicode text (an unpaired surrogate); nothing was stored`,
      );
    const problem = builder.add(name, Buffer.from(text, 'utf8'));
    if (problem) throw new HttpError(400, `session_data[${quoteName(name)}] is rejected: ${problem}; nothing was stored`);
  }
  return builder;
}

function tooManyFiles(): HttpError {
  return new HttpError(413, `session_data has more than ${MAX_INCOMING_FILES} files, the most one generation may have; nothing was stored`);
}

/** Stores the posted files as a new generation under the session's lease (see underLease). */
async function store(options: Context, sessionId: string, builder: SnapshotBuilder): Promise<unknown> {
  await underLease(options, sessionId, async (lease) => {
    const result = await options.store.backup(sessionId, builder.snapshot, {
      lease,
      allowReplace: options.allowReplace,
      reason: 'api',
      scope: null,
    });
    if (result.kind === 'refused') throw new HttpError(409, `backup refused: ${result.reason}`);
    if (result.kind === 'success' && result.event) {
      const creds = builder.snapshot.files.get(CREDS_FILE);
      const jid = creds ? (parseCreds(creds.content.toString('utf8'))?.registeredJid ?? null) : null;
      options.onEvent?.({ event: result.event, sessionId, generation: result.generation, jid });
    }
    // Housekeeping after a committed write: a failure is logged, never the answer to the request.
    await options.store
      .thin(sessionId, options.retention)
      .catch((error) => options.log.warn({ session: sessionId, err: describeError(error) }, 'the history could not be thinned now'));
  });
  return answer(options, sessionId);
}

/**
 * Runs `write` under the session's lease: the watching loop's when this process watches the session (which
 * then compares its directory with the new head at once), else the API's own, taken for this write. A lease
 * another process holds, or one lost to it meanwhile, is a 409.
 */
async function underLease(options: Context, sessionId: string, write: (lease: Lease) => Promise<void>): Promise<void> {
  const fenced = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      if (error instanceof LeaseLostError) throw await otherWriter(options, sessionId);
      throw error;
    }
  };
  const watched = options.loop.loopFor(sessionId);
  if (watched) {
    const lease = watched.writerLease;
    if (!lease) throw await otherWriter(options, sessionId);
    await fenced(() => write(lease));
    // The directory is the truth for a watched session: the loop stores it again if the body was older,
    // and its metrics follow the head (no waiting for the next --interval rescan).
    void watched
      .reclaimHead()
      .catch((error) => options.log.warn({ session: sessionId, err: describeError(error) }, 'backup after API write failed'));
  } else {
    const lease = await options.store.acquireLease(sessionId, `${options.owner}/api`, API_LEASE_TTL_MS);
    if (!lease) throw await otherWriter(options, sessionId);
    try {
      await fenced(() => write(lease));
    } finally {
      await options.store.releaseLease(sessionId, lease).catch(() => false);
    }
  }
}

/** POST /api/session/logout: marks the session logged out by hand (SPEC "Session lifecycle"); 404 unknown, 409 nothing to log out. */
async function logout(options: Context, url: URL): Promise<unknown> {
  const sessionId = sessionParam(url, null);
  return options.queues.run(sessionId, async () => {
    if (!(await options.store.summary(sessionId)))
      throw new NothingToRestoreError(`no session named ${sessionId}; GET /api/session/status lists them`);
    const jid = (await options.store.summary(sessionId))?.registeredJid ?? null;
    let outcome = { generation: 0, written: false };
    await underLease(options, sessionId, async (lease) => {
      outcome = await options.store.logout(sessionId, lease);
    });
    if (outcome.written) options.onEvent?.({ event: 'logged_out', sessionId, generation: outcome.generation, jid });
    return { session_id: sessionId, generation: outcome.generation };
  });
}

/** The 409 for a session another process writes, naming that process (the lease holder) when known. */
async function otherWriter(options: Context, sessionId: string): Promise<HttpError> {
  const holder = await options.store.leaseHolder(sessionId).catch(() => null);
  return new HttpError(
    409,
    `session ${sessionId} is being written by another process (${holder?.owner ?? 'the lease holder'}): ` +
      'send the request to that keeper, or retry once it has stopped',
  );
}

async function answer(options: Context, sessionId: string): Promise<unknown> {
  const summary = await options.store.summary(sessionId);
  return { session_id: sessionId, generation: summary?.headGeneration ?? 0, files: summary?.files ?? 0 };
}

async function remove(options: Context, url: URL): Promise<unknown> {
  const sessionId = sessionParam(url, null);
  return options.queues.run(sessionId, () => removeNow(options, sessionId));
}

async function removeNow(options: Context, sessionId: string): Promise<unknown> {
  if (options.loop.loopFor(sessionId)) {
    // This keeper would store the directory again at once; deleting it needs the keeper stopped.
    throw new HttpError(
      409,
      `session ${sessionId} is the one this keeper watches and backs up: stop the keeper, then delete it (baileys-keeper delete --yes)`,
    );
  }
  await options.store.delete(sessionId);
  return { deleted: true };
}

/** Strings of a backup body besides session_data's names and texts: its keys and session_id, with room. */
const BODY_FIXED_STRINGS = 16;

/**
 * Whether the JSON text in `bytes` has more than `limit` strings (keys and values), counting string
 * delimiters without parsing: each file of session_data is two strings, its name and its text.
 */
export function jsonStringsOver(bytes: Uint8Array, limit: number): boolean {
  const QUOTE = 0x22;
  const BACKSLASH = 0x5c;
  let strings = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
      if (++strings > limit) return true;
    }
  }
  return false;
}

/**
 * Reads and parses a JSON body, refusing one over `maxBytes` (by header, then as it streams). An
 * oversize body is read and discarded up to DRAIN_LIMIT_BYTES so that the client, still sending,
 * can read the 413; beyond that the connection is closed. A body with more strings than MAX_INCOMING_FILES
 * files can have is a 413 before it is parsed.
 */
async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = Number.isFinite(declared) && declared > maxBytes;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) tooBig = true;
    if (tooBig) {
      if (size > DRAIN_LIMIT_BYTES) break;
      continue;
    }
    chunks.push(chunk as Buffer);
  }
  if (tooBig) {
    throw new HttpError(
      413,
      `the body is over ${maxBytes} bytes (KEEPER_MAX_BODY_BYTES)`,
      size > DRAIN_LIMIT_BYTES ? { connection: 'close' } : {},
    );
  }
  const bytes = Buffer.concat(chunks.splice(0));
  // Counted before parsing: the parsed object of a body with millions of tiny strings is many times its size.
  if (jsonStringsOver(bytes, 2 * MAX_INCOMING_FILES + BODY_FIXED_STRINGS)) throw tooManyFiles();
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'the body is empty: send a JSON object');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `the body is not valid JSON (${(error as Error).message})`);
  }
}
