// The status page as served (src/status-page.ts): small, its inline script and style allowed by their exact
// hashes and nothing else, and a script that never turns data into HTML. The browser test
// (test/e2e/status-page.test.ts) drives it for real; these checks run where no browser is installed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { STATUS_PAGE_HTML, STATUS_PAGE_JS } from '../../src/generated/status-page.js';
import { assembleStatusPage, statusPage } from '../../src/status-page.js';

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

describe('status page', () => {
  const page = statusPage();
  const html = page.body.toString('utf8');
  const csp = page.headers['content-security-policy']!;

  it('is one document under 30 KB with its style and script inline', () => {
    assert.ok(page.body.length < 30 * 1024, `${page.body.length} bytes`);
    assert.equal(page.headers['content-length'], String(page.body.length));
    assert.equal((html.match(/<script>/g) ?? []).length, 1);
    assert.equal((html.match(/<style>/g) ?? []).length, 1);
    assert.ok(!/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\//.test(html), 'no asset from anywhere else');
  });

  it('allows exactly its inline script and style by hash, and nothing else', () => {
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*)<\/style>/.exec(html)![1]!;
    const directives = new Map(csp.split('; ').map((part) => [part.split(' ')[0]!, part.split(' ').slice(1).join(' ')]));
    assert.equal(directives.get('default-src'), "'none'");
    assert.equal(directives.get('script-src'), hash(script));
    assert.equal(directives.get('style-src'), hash(style));
    assert.equal(directives.get('connect-src'), "'self'");
    assert.equal(directives.get('frame-ancestors'), "'none'");
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.ok(!/\son[a-z]+=/i.test(STATUS_PAGE_HTML), 'no inline event handler attribute (the CSP would block it)');
  });

  it('writes what the keeper says as text only, and keeps the token out of URLs and cookies', () => {
    assert.doesNotMatch(STATUS_PAGE_JS, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    assert.doesNotMatch(STATUS_PAGE_JS, /document\.cookie|localStorage/);
    assert.match(STATUS_PAGE_JS, /sessionStorage/);
  });

  it('refuses parts that would end their element early (a build mistake)', () => {
    assert.throws(() => assembleStatusPage('<style>/*STYLE*/</style><script>/*SCRIPT*/</script>', '', 'a = "</script>"'), /closes its own/);
    assert.throws(() => assembleStatusPage('<p>no markers</p>', '', ''), /marker/);
  });
});
