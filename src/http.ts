// The HTTP server of sidecar and run: a tiny router over node:http with safe defaults.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError } from './errors.js';
import type { Logger } from './log.js';

/** Limits that keep slow or never-finished requests from holding the server. */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

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
}

/** Starts listening; a port already in use is a usage error naming the address. */
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
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const status =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new UsageError(
          `cannot listen on ${listen.host}:${listen.port} (${error.code ?? error.message}): choose another --listen / KEEPER_LISTEN`,
          { cause: error },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host: listen.host, port }, `listening on ${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
