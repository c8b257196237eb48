// The status page at `GET /` (docs/http-api.md, "Status page"): one HTML document with its style and script
// inline, allowed by their SHA-256 in a Content-Security-Policy that allows nothing else — no other script,
// style, frame, form target or third-party request; the script only talks to this keeper. Its data comes from
// GET /api/overview (open, counts only) and, with the token pasted into the page, the session API.
import { createHash } from 'node:crypto';
import { STATUS_PAGE_CSS, STATUS_PAGE_HTML, STATUS_PAGE_JS } from './generated/status-page.js';
import type { Route } from './http.js';

/** The page as served: its bytes and the headers that go with them (computed once, at start). */
export interface StatusPage {
  body: Buffer;
  headers: Record<string, string>;
}

/** `'sha256-…'`: how a CSP allows one inline element by the hash of its exact text. */
function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The page from its parts (src/status-page/): `style` and `script` put inline into `html` at their markers,
 * and the security headers, with the CSP allowing exactly those two elements by hash. Throws when a part
 * could end its element early or a marker is missing (a build mistake, never user input).
 */
export function assembleStatusPage(html: string, style: string, script: string): StatusPage {
  if (/<\/style/i.test(style) || /<\/script/i.test(script)) throw new Error('the status page style or script closes its own element');
  const parts = html.split(/<style>\/\*STYLE\*\/<\/style>|<script>\/\*SCRIPT\*\/<\/script>/);
  if (parts.length !== 3) throw new Error('the status page HTML needs one style and one script marker');
  const text = `${parts[0]}<style>${style}</style>${parts[1]}<script>${script}</script>${parts[2]}`;
  const csp = [
    "default-src 'none'",
    `script-src ${cspHash(script)}`,
    `style-src ${cspHash(style)}`,
    "connect-src 'self'",
    // The empty favicon (<link rel="icon" href="data:,">), so the browser asks for no /favicon.ico.
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const body = Buffer.from(text, 'utf8');
  return {
    body,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(body.length),
      'cache-control': 'no-store',
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // For browsers that predate frame-ancestors.
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
    },
  };
}

let built: StatusPage | null = null;

/** The page of this build (assembled once, then kept). */
export function statusPage(): StatusPage {
  built ??= assembleStatusPage(STATUS_PAGE_HTML, STATUS_PAGE_CSS, STATUS_PAGE_JS);
  return built;
}

/** `GET /`: the status page (open: without the token it shows only what GET /api/overview says). Built now. */
export function statusPageRoute(): Route {
  const page = statusPage();
  return {
    method: 'GET',
    path: '/',
    handler: (_req, res) => {
      res.writeHead(200, page.headers);
      res.end(page.body);
    },
  };
}
