// The HTTP server of sidecar and run: a tiny router over node:http with safe defaults.
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type Clock, systemClock, within } from './clock.js';
import { UsageError } from './errors.js';
import type { Logger } from './log.js';
import { Backoff, RETRY_BACKOFF } from './retry.js';

/** Limits that keep slow or never-finished requests from holding the server. */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/**
 * Most connections open at once. Probes, a scraper and a bot's API calls need a handful; anything past
 * the cap is closed as it arrives, so a flood of idle connections cannot take the descriptors the keeper
 * needs for the files it backs up and its database pool (docs/http-api.md, "Limits").
 */
export const MAX_CONNECTIONS = 64;
/** Descriptors kept for the keeper's own work (files, the pool, the watcher) under a low `ulimit -n`. */
export const RESERVED_DESCRIPTORS = 64;
/** The cap is never lower than this, whatever the descriptor limit (the probes must get through). */
const MIN_CONNECTIONS = 8;

/** The soft limit on open files of this process (`ulimit -n`) from /proc, or null where that cannot be read. */
export function openFilesLimit(limits = '/proc/self/limits'): number | null {
  try {
    const line = readFileSync(limits, 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith('Max open files'));
    const soft = line ? Number(line.slice('Max open files'.length).trim().split(/\s+/)[0]) : Number.NaN;
    return Number.isFinite(soft) ? soft : null;
  } catch {
    return null;
  }
}

/**
 * The connection cap for a process allowed `openFiles` descriptors (null: unknown): MAX_CONNECTIONS, lowered
 * so that RESERVED_DESCRIPTORS stay free for the keeper's own work, never below MIN_CONNECTIONS.
 */
export function connectionCap(openFiles: number | null): number {
  if (openFiles === null) return MAX_CONNECTIONS;
  return Math.max(MIN_CONNECTIONS, Math.min(MAX_CONNECTIONS, openFiles - RESERVED_DESCRIPTORS));
}

export interface Listen {
  host: string;
  port: number;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  handler: Handler;
}

export interface HttpServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function parseTarget(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://keeper.invalid');
  } catch {
    return null;
  }
}

export interface Timeouts {
  headersMs: number;
  requestMs: number;
  /** Most connections open at once; default connectionCap(openFilesLimit()). */
  maxConnections?: number;
}

/** The answers for requests Node's parser rejects before any route sees them: status line and {error}. */
function clientErrorAnswer(code: string | undefined): { status: string; error: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return { status: '408 Request Timeout', error: 'the request headers or body did not arrive in time; send the whole request at once' };
  if (code === 'HPE_HEADER_OVERFLOW')
    return { status: '431 Request Header Fields Too Large', error: 'the request headers are too large; send fewer or shorter headers' };
  return { status: '400 Bad Request', error: 'the request is not valid HTTP/1.1' };
}

/**
 * Keeps at most `max` connections open. At the cap, a new connection evicts the oldest one that has no
 * request in progress (just opened, sending its headers slowly, or idle between keep-alive requests), so
 * that an idle flood cannot lock out the probes; when every one is busy the new one is closed at once.
 */
function capConnections(server: http.Server, max: number, log: Logger): void {
  // Insertion order is age; the value says whether a request is in progress on it.
  const open = new Map<Socket, { busy: boolean }>();
  let warnedAt = Number.NEGATIVE_INFINITY;
  const warn = (message: string) => {
    // At most once a minute: a flood must not become a flood of log lines.
    if (Date.now() - warnedAt < 60_000) return;
    warnedAt = Date.now();
    log.warn({ maxConnections: max }, message);
  };
  server.on('connection', (socket: Socket) => {
    if (open.size >= max) {
      const idle = [...open].find(([, state]) => !state.busy)?.[0];
      if (idle) {
        warn(`${max} connections open at once (the cap): closing the oldest idle ones to make room`);
        open.delete(idle);
        idle.destroy();
      } else {
        warn(`${max} connections open at once (the cap), all busy: new ones are closed until some end`);
        socket.destroy();
        return;
      }
    }
    const state = { busy: false };
    open.set(socket, state);
    socket.once('close', () => open.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const state = open.get(req.socket);
    if (!state) return;
    state.busy = true;
    res.once('close', () => {
      state.busy = false;
    });
  });
}

/** What to do about an address that cannot be listened on, by the listen error's code. */
const LISTEN_ADVICE: Record<string, string> = {
  EADDRINUSE: 'another process listens there — an older keeper still stopping, the bot or another service',
  EACCES: 'this user may not listen there — ports below 1024 need privileges',
  EADDRNOTAVAIL: 'the host is not an address of this machine',
};

/**
 * Serves `routes` on `listen` beside the work that does not need HTTP: the backups go on whether or not
 * the keeper can listen, so a busy port never stops a keeper nor (in `run`) keeps the bot from starting.
 * The first attempt is awaited. An address that cannot be listened on is said once, at error level: which
 * address, why, what is off meanwhile (probes, metrics, the session API), and the setting to change; then
 * listening is retried in the background by RETRY_BACKOFF (pauses up to 30 s), silently, until it works
 * (said once more) or `close` is called. docs/monitoring.md, "No port".
 */
export async function keepListening(
  listen: Listen,
  routes: readonly Route[],
  log: Logger,
  clock: Clock = systemClock,
): Promise<{ close(): Promise<void> }> {
  let server: HttpServer | null = null;
  let closed = false;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  /** Listens once; the listen error when the address cannot be listened on (anything else is thrown). */
  const attempt = async (): Promise<NodeJS.ErrnoException | null> => {
    try {
      server = await startHttpServer(listen, routes, log);
      return null;
    } catch (error) {
      if (error instanceof ListenError) return error.cause;
      throw error;
    }
  };
  const refused = await attempt();
  let retrying: Promise<void> = Promise.resolve();
  if (refused !== null) {
    const address = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
    log.error(
      { host: listen.host, port: listen.port, code: refused.code },
      `cannot listen on ${address}: ${LISTEN_ADVICE[refused.code ?? ''] ?? 'the system refused it'} (${refused.code ?? refused.message}). ` +
        'Running without HTTP — no /healthz, /readyz, /metrics or session API until it can — while backups go on. ' +
        'Free the address, or choose another with --listen / KEEPER_LISTEN and restart; listening is retried ' +
        'in the background (said again once it works)',
    );
    retrying = (async () => {
      const backoff = new Backoff(RETRY_BACKOFF);
      for (let attempts = 2; ; attempts++) {
        await within(clock, stopped, backoff.fail());
        if (closed) return;
        if ((await attempt()) !== null) continue;
        // Closed meanwhile: close() closes the server once this settles.
        if (!closed) log.info({ attempts }, `${address} is free now: /healthz, /readyz, /metrics and the session API answer`);
        return;
      }
    })().catch((error: unknown) => log.error({ err: String(error) }, 'listening is no longer retried'));
  }
  return {
    async close() {
      closed = true;
      stop();
      await retrying;
      await (server as HttpServer | null)?.close();
    },
  };
}

/** An address that cannot be listened on: in use, not permitted, not this machine's (exit 64 where it ends a command). */
export class ListenError extends UsageError {
  declare readonly cause: NodeJS.ErrnoException;
}

/** Starts listening; an address that cannot be listened on is a ListenError naming it. */
export async function startHttpServer(
  listen: Listen,
  routes: readonly Route[],
  log: Logger,
  timeouts: Timeouts = { headersMs: HEADERS_TIMEOUT_MS, requestMs: REQUEST_TIMEOUT_MS },
): Promise<HttpServer> {
  const byPath = new Map<string, Route[]>();
  for (const route of routes) byPath.set(route.path, [...(byPath.get(route.path) ?? []), route]);

  const server = http.createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // How often those timeouts are enforced (Node's default is every 30 s).
      connectionsCheckingInterval: Math.min(timeouts.headersMs, 1000),
    },
    async (req, res) => {
      const url = parseTarget(req.url);
      // A target URL cannot parse (e.g. "//[", "http://a:99999/"): bad input, never a crash.
      if (!url) return sendJson(res, 400, { error: 'the request target is not a valid URL path' });
      const candidates = byPath.get(url.pathname);
      if (!candidates) return sendJson(res, 404, { error: `no such endpoint: ${url.pathname}` });
      const route = candidates.find(
        (candidate) => candidate.method === req.method || (req.method === 'HEAD' && candidate.method === 'GET'),
      );
      if (!route) {
        const allow = candidates.map((candidate) => candidate.method).join(', ');
        return sendJson(res, 405, { error: `${req.method} is not allowed on ${url.pathname}; use ${allow}` }, { allow });
      }
      try {
        await route.handler(req, res, url);
      } catch (error) {
        log.error({ path: url.pathname, err: error instanceof Error ? error.message : String(error) }, 'request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the keeper log' });
        else res.destroy();
      }
    },
  );
  const maxConnections = timeouts.maxConnections ?? connectionCap(openFilesLimit());
  capConnections(server, maxConnections, log);
  // Every answer is JSON (docs/http-api.md), also those for requests the parser refused.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const { status, error: message } = clientErrorAnswer(error.code);
    const body = `${JSON.stringify({ error: message })}\n`;
    if (socket.writable)
      socket.end(
        `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
          `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new ListenError(
          `cannot listen on ${listen.host}:${listen.port} (${error.code ?? error.message}): choose another --listen / KEEPER_LISTEN`,
          { cause: error },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info(
    { host: listen.host, port, maxConnections },
    `listening on ${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`,
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
