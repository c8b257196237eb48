// One HTTP attempt at an Endpoint, with Node's fetch: bounded in time, redirects not followed, and every
// way it can fail turned into a reason that is safe to log.
import { VERSION } from '../version.js';
import { type Endpoint, maskUrl } from './url.js';

/** What one attempt came to; `reason` and `location` never hold more of a URL than its scheme, host and port. */
export type Outcome =
  | { ok: true; status: number }
  | {
      ok: false;
      /** The answer's status, or null when none came (refused, timed out, abandoned). */
      status: number | null;
      /** Why it failed, for the log: `HTTP 500`, `no answer within 10000 ms`, `ECONNREFUSED …`. */
      reason: string;
      /** A redirect's target, masked; null for anything else. */
      location: string | null;
    };

export interface Attempt {
  method: 'GET' | 'POST';
  /** Extra request headers (Content-Type, a signature). */
  headers?: Record<string, string>;
  body?: Buffer;
  /** Real time the answer's status line may take, ms; the attempt is abandoned after it. */
  timeoutMs: number;
  /** Abandons the attempt early when aborted (shutdown). */
  signal?: AbortSignal;
}

/**
 * Sends one request to `endpoint`; resolves with its Outcome and never rejects. A 2xx answer is a success;
 * anything else fails: another status (a 3xx is not followed — a notification URL that redirects is
 * misconfigured, and following it would resend the body elsewhere), a network error, the timeout.
 */
export async function attempt(endpoint: Endpoint, request: Attempt): Promise<Outcome> {
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const headers: Record<string, string> = { 'User-Agent': `baileys-keeper/${VERSION}`, ...request.headers };
  if (endpoint.authorization) headers['Authorization'] = endpoint.authorization;
  try {
    const response = await fetch(endpoint.url, {
      method: request.method,
      headers,
      ...(request.body ? { body: request.body } : {}),
      redirect: 'manual',
      signal: request.signal ? AbortSignal.any([timeout, request.signal]) : timeout,
    });
    // The answer's body is of no use; cancelling it frees the connection at once.
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
    const redirect = response.status >= 300 && response.status < 400;
    const target = response.headers.get('location');
    return {
      ok: false,
      status: response.status,
      reason: redirect ? `HTTP ${response.status} (redirects are not followed)` : `HTTP ${response.status}`,
      location: redirect && target !== null ? maskUrl(target, endpoint.url) : null,
    };
  } catch (error) {
    return { ok: false, status: null, reason: failureReason(error, timeout, request.timeoutMs, endpoint), location: null };
  }
}

/** Why fetch threw, without the URL: undici's own messages name only addresses, but a cause may say more. */
function failureReason(error: unknown, timeout: AbortSignal, timeoutMs: number, endpoint: Endpoint): string {
  if (timeout.aborted) return `no answer within ${timeoutMs} ms`;
  if (error instanceof Error && error.name === 'AbortError') return 'abandoned (shutting down)';
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : null;
  const message = cause instanceof Error ? cause.message : String(cause);
  const text = code && !message.includes(code) ? `${code}: ${message}` : message;
  return text.split(endpoint.url).join(endpoint.display);
}
