// The outside URLs the keeper notifies (webhook, heartbeat): validated once, and shown in logs and errors
// without anything that may be a secret. Webhook and ping URLs carry their token in the path as often as in
// the query or the userinfo (hooks.slack.com/services/…, discord.com/api/webhooks/<id>/<token>,
// hc-ping.com/<uuid>, Uptime Kuma's /api/push/<token>), so only the scheme, host and port are ever shown.
import { UsageError } from '../errors.js';

/** A validated http(s) URL to notify. */
export interface Endpoint {
  /** What is requested: the URL without its userinfo (fetch refuses URLs with credentials). */
  readonly url: string;
  /** `Basic …` made from the URL's userinfo, or null without one. */
  readonly authorization: string | null;
  /** How the URL appears in logs and errors: scheme, host and port, `/***` when more was hidden. */
  readonly display: string;
}

/**
 * Parses `raw`, the value of setting `setting` (named in errors, e.g. `--webhook-url`), into an Endpoint.
 * Userinfo becomes a Basic authorization header. Throws UsageError (exit 64) when `raw` is not an
 * absolute http:// or https:// URL with a host; the message never repeats `raw`.
 */
export function parseEndpoint(raw: string, setting: string): Endpoint {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${setting} is not a valid URL: give a full http:// or https:// URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${setting} must be an http:// or https:// URL, not ${url.protocol}`);
  }
  if (url.hostname === '') throw new UsageError(`${setting} has no host: give a full http:// or https:// URL`);
  let authorization: string | null = null;
  if (url.username !== '' || url.password !== '') {
    let user: string;
    let password: string;
    try {
      user = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
    } catch {
      throw new UsageError(`${setting} has a malformed %-escape in its user name or password: write each as %XX`);
    }
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  url.hash = '';
  return { url: url.href, authorization, display: displayUrl(url) };
}

/**
 * How `location` (a URL, possibly relative to `base`) is shown in logs: scheme, host and port only, `/***`
 * when a path or query was hidden; `(unparseable)` when it is not a URL.
 */
export function maskUrl(location: string, base?: string): string {
  try {
    return displayUrl(new URL(location, base));
  } catch {
    return '(unparseable)';
  }
}

function displayUrl(url: URL): string {
  const hidden = url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '';
  return `${url.protocol}//${url.host}${hidden ? '/***' : '/'}`;
}
