// The status page at GET / in a real headless Chromium, against a real keeper of many sessions and a real
// PostgreSQL: no console error; without the token counts and no session id; with it the fleet, an
// unprotected session (a file the keeper may not read) and a logged-out one first and marked in words; a
// folder and a phone made of HTML shown as text; the page on a phone's width; the keeper restarting under it.
// The keeper runs as a throwaway user where the test runs as root (root reads every file), from the bundle.
import assert from 'node:assert/strict';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, HTTPRequest, Page } from 'puppeteer-core';
import { openAuth, register, writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { REPO } from '../../harness/paths.js';
import { sessionIdFor } from '../../src/names.js';
import { type Service, startService, waitFor } from '../../harness/sidecar.js';
import { chromiumSkip, launchBrowser, type PageProblems, recordProblems } from '../support/browser.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { freePort } from '../support/net.js';
import { throwawayUser } from '../support/throwaway-user.js';

const TOKEN = 'status-page-token-0123456789abcdef';
const FAST = ['--debounce', '100', '--max-delay', '300', '--interval', '1000', '--shutdown-quiet', '0'];
/** A folder name that is HTML (no `/`: a folder name cannot hold one), and the id the naming rule maps it to. */
const HOSTILE_FOLDER = '<img src=x onerror=window.__xss=1>';
/** A login whose number is HTML: the masked phone keeps some of it. */
const HOSTILE_JID = '<img src=x onerror=window.__xss=2>@s.whatsapp.net';
/** Where the screenshot goes: docs/status-page.png with UPDATE_SCREENSHOT=1 (the file in the repository), else a temp dir. */
const UPDATE_SCREENSHOT = process.env['UPDATE_SCREENSHOT'] === '1';

interface Row {
  id: string;
  mark: string;
  reasons: string;
  folder: string;
  login: string;
  phone: string;
}

/** The session table as the page shows it, top to bottom. */
function rows(page: Page): Promise<Row[]> {
  return page.$$eval('#sessions tbody tr', (trs) =>
    trs.map((tr) => ({
      id: tr.querySelector('td:nth-child(2) button')?.textContent ?? '',
      mark: tr.querySelector('.mark')?.textContent ?? '',
      reasons: tr.querySelector('td:nth-child(1) .detail')?.textContent ?? '',
      folder: tr.querySelector('td:nth-child(2) .detail')?.textContent ?? '',
      login: tr.querySelector('td:nth-child(3) span')?.textContent ?? '',
      phone: tr.querySelector('td:nth-child(3) .detail')?.textContent ?? '',
    })),
  );
}

const text = (page: Page, selector: string) => page.$eval(selector, (element) => element.textContent ?? '');

/** Polls `probe` in the test (the page refreshes itself every 5 s): fails with `explain()` after `timeoutMs`. */
function until<T>(probe: () => Promise<T | null>, explain: () => Promise<string> | string, timeoutMs = 25_000): Promise<T> {
  return waitFor(probe, timeoutMs).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${await explain()}`);
  });
}

describe('the status page in a real browser', { skip: chromiumSkip }, async () => {
  const url = await freshDatabase('status-page');
  const env = cliEnv(url, { KEEPER_API_TOKEN: TOKEN });
  const home = await tempDir('status-page');
  const sessionsDir = path.join(home, 'sessions');
  // As root the keeper runs as a uid that owns nothing (from the bundle), so a 0000 file is unreadable to it.
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? await throwawayUser(home) : null;
  const asKeeper = user ? { uid: user.uid, script: user.script, node: user.node } : {};
  const port = await freePort();
  const mapped = sessionIdFor('', HOSTILE_FOLDER);
  assert.ok('mapped' in mapped && mapped.mapped, 'the folder name is no session id: it is mapped');
  const hostileId = mapped.sessionId;

  let browser: Browser;
  let keeper: Service;
  const start = () => startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST, '--listen', `127.0.0.1:${port}`], env, asKeeper);
  const overview = async () => (await (await fetch(`http://127.0.0.1:${port}/api/overview`)).json()) as Record<string, unknown>;

  before(async () => {
    await mkdir(sessionsDir, { mode: 0o755 });
    await chmod(sessionsDir, 0o755);
    for (const name of ['alice', 'bob', 'carol', 'dave']) await writeSession(path.join(sessionsDir, name), { preKeys: 3 });
    const hostile = path.join(sessionsDir, HOSTILE_FOLDER);
    await writeSession(hostile, { preKeys: 3 });
    await register(await openAuth(hostile), HOSTILE_JID);
    keeper = await start();
    await waitFor(async () => {
      const o = await overview().catch(() => null);
      return o && o['sessions'] === 5 && o['protected'] === 5 ? true : null;
    }, 30_000);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    keeper?.child.kill('SIGKILL');
  });

  let page: Page;
  let problems: PageProblems;
  /** Every URL and Authorization header the page sent. */
  const requests: { url: string; authorization: string | undefined; cookie: string | undefined }[] = [];

  it('without a token: counts, health and version, and not one session id', async () => {
    page = await browser.newPage();
    problems = recordProblems(page);
    page.on('request', (request: HTTPRequest) =>
      requests.push({ url: request.url(), authorization: request.headers()['authorization'], cookie: request.headers()['cookie'] }),
    );
    await page.setViewport({ width: 1000, height: 800 });
    const response = await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    const headers = response!.headers();
    assert.match(headers['content-security-policy'] ?? '', /^default-src 'none'; script-src 'sha256-[^']+'; style-src 'sha256-[^']+';/);
    assert.match(headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['referrer-policy'], 'no-referrer');
    assert.ok(Number(headers['content-length']) < 30 * 1024, `the page is ${headers['content-length']} bytes`);

    await until(
      async () => ((await text(page, '[data-key="sessions"]')) === '5' ? true : null),
      () => text(page, 'body'),
    );
    assert.equal(await text(page, '[data-key="protected"]'), '✓ 5 of 5');
    assert.equal(await text(page, '#verdict'), "✓ Every login of this keeper's 5 sessions is stored (5 of 5 protected)");
    assert.match(await text(page, '[data-key="version"]'), /^\d+\.\d+\.\d+/);
    assert.equal(await page.$eval('#sessions-box', (element) => element.hasAttribute('hidden')), true);
    const seen = (await page.$eval('main', (main) => main.innerHTML)) + (await text(page, 'header'));
    for (const id of ['alice', 'bob', 'carol', 'dave', hostileId, 'img src', '5511']) assert.ok(!seen.includes(id), `the page shows ${id}`);
    assert.deepEqual(problems.since(0), []);
  });

  it('with the token: the fleet, the unprotected and the logged-out session first and marked in words', async () => {
    // bob's bot writes a key file the keeper may not read; carol's bot logs out (Baileys deletes creds.json).
    const secret = path.join(sessionsDir, 'bob', 'session-4477.0.json');
    await writeFile(secret, JSON.stringify({ secret: 'session' }), { mode: 0o600 });
    await chmod(secret, 0o000);
    await rm(path.join(sessionsDir, 'carol', 'creds.json'));

    await page.type('#token', TOKEN);
    await page.click('#login button[type="submit"]');
    const table = await until(
      async () => {
        const now = await rows(page);
        return now.length === 5 && now[0]?.id === 'bob' && now[1]?.id === 'carol' && now[1].mark.includes('LOGGED OUT') ? now : null;
      },
      async () => JSON.stringify(await rows(page)),
    );
    assert.match(table[0]!.mark, /^⚠ UNPROTECTED/);
    assert.match(table[0]!.reasons, /unreadable/);
    assert.equal(table[1]!.mark, '⊘ LOGGED OUT');
    assert.equal(table[1]!.login, 'logged out');
    for (const row of table.slice(2)) assert.equal(row.mark, '✓ protected', JSON.stringify(row));
    assert.deepEqual(
      table
        .slice(2)
        .map((row) => row.id)
        .sort(),
      [hostileId, 'alice', 'dave'].sort(),
    );
    assert.match(await text(page, '#session-count'), /5 sessions, 2 need attention/);
    await until(
      async () => ((await text(page, '[data-key="protected"]')) === '⚠ 4 of 5' ? true : null),
      () => text(page, '#overview'),
    );
    assert.equal(await text(page, '#verdict'), '⚠ 1 of 5 sessions NOT protected');

    // The token stays in this tab: sessionStorage, the bearer header; never a URL, a cookie or the field.
    assert.equal(await page.evaluate(`sessionStorage.getItem('baileys-keeper-token')`), TOKEN);
    assert.equal(await page.evaluate('document.cookie'), '');
    assert.equal(await page.$eval('#token', (input) => (input as unknown as { value: string }).value), '');
    assert.ok(requests.some((request) => request.url.includes('/api/session/status') && request.authorization === `Bearer ${TOKEN}`));
    for (const request of requests) {
      assert.ok(!request.url.includes(TOKEN), `the token is in ${request.url}`);
      assert.ok(!request.cookie, `a cookie was sent to ${request.url}`);
      if (!request.url.includes('/api/session/')) assert.equal(request.authorization, undefined, `the token went to ${request.url}`);
    }
  });

  it('shows a folder and a phone made of HTML as text', async () => {
    const hostile = (await rows(page)).find((row) => row.id === hostileId);
    assert.ok(hostile, `no row ${hostileId}`);
    assert.equal(hostile.folder, `folder: ${HOSTILE_FOLDER}`);
    assert.match(hostile.phone, /^<img\*+s=2>$/, 'the masked phone keeps its first and last characters, as text');
    assert.equal(await page.evaluate('window.__xss'), undefined);
    assert.equal(await page.$$eval('main img', (images) => images.length), 0);
  });

  it('lists the last events with times, and one session’s generations', async () => {
    const events = await until(
      async () => {
        const items = await page.$$eval('#events li', (lis) => lis.map((li) => li.textContent ?? ''));
        const wanted = items.some((item) => /logged out: carol/.test(item)) && items.some((item) => /unprotected: bob/.test(item));
        return wanted ? items : null;
      },
      () => text(page, '#events-box'),
    );
    for (const item of events) assert.match(item, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} /);
    await page.$$eval('#sessions tbody tr td:nth-child(2) button', (buttons) =>
      (buttons.find((button) => button.textContent === 'carol') as unknown as { click(): void }).click(),
    );
    const history = await until(
      async () => {
        const lines = await page.$$eval('#history tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent ?? '')));
        return lines.length >= 2 ? lines : null;
      },
      () => text(page, 'main'),
    );
    assert.equal(await text(page, '#history-session'), 'carol');
    assert.equal(history[0]![2], 'logout', JSON.stringify(history));
    assert.ok(Number(history[0]![0]) > Number(history[1]![0]), 'newest first');
  });

  it('sorts by a column, keeping the sessions that need attention first', async () => {
    const ids = async () => (await rows(page)).map((row) => row.id);
    await page.click('th button[data-sort="id"]');
    assert.deepEqual(await ids(), ['bob', 'carol', hostileId, 'alice', 'dave']);
    await page.click('th button[data-sort="id"]');
    assert.deepEqual(await ids(), ['bob', 'carol', 'dave', 'alice', hostileId]);
    assert.equal(await page.$eval('th[aria-sort]', (th) => th.getAttribute('aria-sort')), 'descending');
    await page.click('th button[data-sort="attention"]');
    assert.deepEqual((await ids()).slice(0, 2), ['bob', 'carol']);
    // A second click reverses the order within each kind; the kinds that need attention stay first.
    await page.click('th button[data-sort="attention"]');
    assert.deepEqual(await ids(), ['bob', 'carol', 'dave', 'alice', hostileId]);
    assert.equal(await page.$eval('th[aria-sort]', (th) => th.getAttribute('aria-sort')), 'descending');
    for (const key of ['since', 'generation', 'files', 'bytes', 'updated', 'holder', 'state']) {
      await page.click(`th button[data-sort="${key}"]`);
      assert.deepEqual((await ids()).slice(0, 2), ['bob', 'carol'], `sorted by ${key}`);
      await page.click(`th button[data-sort="${key}"]`);
      assert.deepEqual((await ids()).slice(0, 2), ['bob', 'carol'], `sorted by ${key}, descending`);
    }
    await page.click('th button[data-sort="attention"]');
    assert.deepEqual(problems.since(0), [], 'no console error, exception or CSP violation so far');
    const screenshot = UPDATE_SCREENSHOT ? path.join(REPO, 'docs', 'status-page.png') : path.join(home, 'status-page.png');
    await page.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
  });

  it('fits a phone: nothing wider than 375 px, each session a card with its mark', async () => {
    await page.setViewport({ width: 375, height: 740, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await page.reload({ waitUntil: 'load' });
    await until(
      async () => ((await rows(page)).length === 5 ? true : null),
      () => text(page, 'body'),
    );
    const width = Number(await page.evaluate('document.documentElement.scrollWidth'));
    assert.ok(width <= 375, `the page is ${width} px wide at 375`);
    const box = await page.$eval('#sessions tbody tr', (tr) => {
      const { left, right } = tr.getBoundingClientRect();
      return { left, right };
    });
    assert.ok(box.left >= 0 && box.right <= 375, JSON.stringify(box));
    assert.match((await rows(page))[0]!.mark, /UNPROTECTED/);
    assert.equal(await page.evaluate(`getComputedStyle(document.querySelector('#sessions thead')).display`), 'none');
    if (process.env['PHONE_SCREENSHOT'])
      await page.screenshot({ path: process.env['PHONE_SCREENSHOT'] as `${string}.png`, fullPage: true });
    await page.setViewport({ width: 1000, height: 800 });
  });

  it('lists a removed session last, as removed, not as one that needs attention', async () => {
    // dave's customer leaves: the directory stays removed past --interval and gets a tombstone generation.
    await rm(path.join(sessionsDir, 'dave'), { recursive: true });
    const table = await until(
      async () => {
        const now = await rows(page);
        return now.at(-1)?.id === 'dave' && now.at(-1)?.mark === '– removed' ? now : null;
      },
      async () => JSON.stringify(await rows(page)),
    );
    assert.equal(table.at(-1)!.reasons, '', 'a removed session shows no reasons to act on');
    assert.deepEqual(
      table.slice(0, 2).map((row) => row.id),
      ['bob', 'carol'],
    );
    assert.match(await text(page, '#session-count'), /^5 sessions, 2 need attention/);
    // The headline judges the sessions the table lists but the removed one.
    await until(
      async () => ((await text(page, '#verdict')) === '⚠ 1 of 4 sessions NOT protected' ? true : null),
      () => text(page, '#verdict'),
    );
  });

  it('says when the keeper cannot be reached, and recovers when it is back', async () => {
    const before = await page.$('#sessions tbody tr');
    // Exit 1: bob's unreadable file is not stored (the keeper says so at its final backup).
    assert.equal((await keeper.stop()).code, 1, keeper.output.slice(-5).join('\n'));
    await until(
      async () => ((await text(page, '#connection')).includes('cannot reach the keeper') ? true : null),
      () => text(page, '#connection'),
    );
    assert.equal((await rows(page)).length, 5, 'the last table stays, dimmed');
    const downAt = Date.now();
    keeper = await start();
    await until(
      async () => ((await text(page, '#connection')).startsWith('updated') ? true : null),
      () => text(page, '#connection'),
      30_000,
    );
    await until(
      async () => {
        const now = await rows(page);
        return now.length === 5 && now[1]?.id === 'carol' ? true : null;
      },
      async () => JSON.stringify(await rows(page)),
    );
    assert.equal(await page.evaluate(`sessionStorage.getItem('baileys-keeper-token')`), TOKEN, 'no second login');
    assert.ok(await page.evaluate((row) => row?.isConnected, before), 'the rows were updated in place, not rebuilt');
    // While it was down the browser says the requests failed; nothing else went wrong.
    const other = problems
      .since(downAt - 30_000)
      .filter((line) => !/ERR_CONNECTION_REFUSED|Failed to fetch|Failed to load resource/.test(line));
    assert.deepEqual(other, []);
    assert.equal((await keeper.stop()).code, 1);
  });
});
