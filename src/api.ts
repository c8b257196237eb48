// The session HTTP API, compatible with the system bots already call (docs/http-api.md):
// POST /api/session/backup, GET /api/session/restore, GET /api/session/status, DELETE /api/session/delete.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError } from './db/errors.js';
import { IntegrityError, NothingToRestoreError, RefusedError } from './errors.js';
import { sendJson, type Route } from './http.js';
import { SnapshotBuilder } from './incoming.js';
import type { Logger } from './log.js';
import type { RetentionPolicy } from './retention.js';
import { isValidSessionId, quoteName, SESSION_ID_RULE } from './names.js';
import type { BackupLoop } from './backup-loop.js';
import { sessionStatusJson, type Lease, type SessionStore } from './store.js';

/** Most bytes of an oversize body read (and discarded) so the client can see the 413. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
/** Lease time for a write made through the API to a session this sidecar does not watch, ms. */
const API_LEASE_TTL_MS = 30_000;

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
  log: Logger;
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

export function apiRoutes(options: ApiOptions): Route[] {
  const guarded =
    (handler: (req: IncomingMessage, url: URL) => Promise<unknown>) =>
    async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
      try {
        authorize(req, options.token);
        sendJson(res, 200, await handler(req, url));
      } catch (error) {
        if (error instanceof HttpError) return sendJson(res, error.status, { error: error.message }, error.headers);
        if (error instanceof NothingToRestoreError) return sendJson(res, 404, { error: error.message });
        if (error instanceof RefusedError) return sendJson(res, 409, { error: error.message });
        if (error instanceof IntegrityError) return sendJson(res, 500, { error: error.message });
        options.log.warn({ path: url.pathname, err: describeError(error) }, 'session API request failed');
        return sendJson(
          res,
          503,
          { error: `the request could not be completed (${describeError(error)}); retry later` },
          { 'retry-after': '5' },
        );
      }
    };
  return [
    { method: 'GET', path: '/api/session/status', handler: guarded(() => status(options)) },
    { method: 'GET', path: '/api/session/restore', handler: guarded((_req, url) => restore(options, url)) },
    { method: 'POST', path: '/api/session/backup', handler: guarded((req) => backup(options, req)) },
    { method: 'DELETE', path: '/api/session/delete', handler: guarded((_req, url) => remove(options, url)) },
  ];
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

async function status(options: ApiOptions): Promise<unknown> {
  // A session this process writes is measured now; any other shows what its writer recorded.
  const live = (id: string) => {
    const sidecar = options.loop.sidecarFor(id);
    return sidecar?.writerLease ? sidecar.protection() : null;
  };
  return { sessions: (await options.store.status(null)).map((s) => sessionStatusJson(s, live(s.sessionId))) };
}

async function restore(options: ApiOptions, url: URL): Promise<unknown> {
  const sessionId = sessionParam(url, options.loop.defaultSession);
  const loaded = await options.store.loadPoint(sessionId, {});
  if (!loaded) throw new HttpError(404, `session ${sessionId} has no backup`);
  const sessionData: Record<string, string> = {};
  for (const file of loaded.files) sessionData[file.name] = file.content.toString('utf8');
  return { session_id: sessionId, generation: loaded.generation.generation, session_data: sessionData };
}

async function backup(options: ApiOptions, req: IncomingMessage): Promise<unknown> {
  const body = await readJsonBody(req, options.maxBodyBytes);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'the body must be a JSON object: {"session_id": "default", "session_data": {"creds.json": "..."}}');
  const { session_id: rawSession, session_data: data } = body as Record<string, unknown>;
  if (rawSession !== undefined && rawSession !== null && typeof rawSession !== 'string')
    throw new HttpError(400, 'session_id must be a string');
  const sessionId = validSessionId((rawSession as string | null | undefined) ?? options.loop.defaultSession);
  const watched = options.loop.sidecarFor(sessionId);

  if (data === undefined || data === null) {
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
    if (outcome === 'standby') throw new HttpError(409, `another instance is the writer of session ${sessionId}; this one stands by`);
    if (outcome === 'failure')
      throw new HttpError(503, 'the backup failed (database unreachable?); the keeper keeps retrying', { 'retry-after': '5' });
    if (outcome === 'refused') throw new HttpError(409, 'the backup was refused by the registered-session guard; see the keeper log');
    return answer(options, sessionId);
  }

  if (typeof data !== 'object' || Array.isArray(data))
    throw new HttpError(400, 'session_data must be an object mapping file names to file text');
  const entries = Object.entries(data as Record<string, unknown>);
  if (entries.length === 0) throw new HttpError(400, 'session_data is empty: nothing to back up');
  const builder = new SnapshotBuilder();
  for (const [name, text] of entries) {
    if (typeof text !== 'string') throw new HttpError(400, `session_data[${quoteName(name)}] must be the file's text (a string)`);
    const problem = builder.add(name, Buffer.from(text, 'utf8'));
    if (problem) throw new HttpError(400, `session_data[${quoteName(name)}] is rejected: ${problem}; nothing was stored`);
  }
  const write = async (lease: Lease) => {
    const result = await options.store.backup(sessionId, builder.snapshot, {
      lease,
      allowReplace: options.allowReplace,
      reason: 'api',
      scope: null,
    });
    if (result.kind === 'refused') throw new HttpError(409, `backup refused: ${result.reason}`);
    // Housekeeping after a committed write: a failure is logged, never the answer to the request.
    await options.store
      .thin(sessionId, options.retention)
      .catch((error) => options.log.warn({ session: sessionId, err: describeError(error) }, 'the history could not be thinned now'));
  };
  if (watched) {
    const lease = watched.writerLease;
    if (!lease) throw new HttpError(409, `another instance is the writer of session ${sessionId}; send the request to it`);
    await write(lease);
  } else {
    const owner = `${options.owner}/api`;
    const lease = await options.store.acquireLease(sessionId, owner, API_LEASE_TTL_MS);
    if (!lease)
      throw new HttpError(
        409,
        `session ${sessionId} is being written by ${(await options.store.leaseHolder(sessionId))?.owner ?? 'another process'}`,
      );
    try {
      await write(lease);
    } finally {
      await options.store.releaseLease(sessionId, lease);
    }
  }
  return answer(options, sessionId);
}

async function answer(options: ApiOptions, sessionId: string): Promise<unknown> {
  const summary = await options.store.summary(sessionId);
  return { session_id: sessionId, generation: summary?.headGeneration ?? 0, files: summary?.files ?? 0 };
}

async function remove(options: ApiOptions, url: URL): Promise<unknown> {
  const sessionId = sessionParam(url, null);
  if (options.loop.sidecarFor(sessionId)) {
    // This keeper would store the directory again at once; deleting it needs the keeper stopped.
    throw new HttpError(
      409,
      `session ${sessionId} is the one this keeper watches and backs up: stop the keeper, then delete it (baileys-keeper delete --yes)`,
    );
  }
  await options.store.delete(sessionId);
  return { deleted: true };
}

/**
 * Reads and parses a JSON body, refusing one over `maxBytes` (by header, then as it streams). An
 * oversize body is read and discarded up to DRAIN_LIMIT_BYTES so that the client, still sending,
 * can read the 413; beyond that the connection is closed.
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
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'the body is empty: send a JSON object');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `the body is not valid JSON (${(error as Error).message})`);
  }
}
