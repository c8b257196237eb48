// The status page's headline and connection line tell the truth: with the token, a session the table lists
// as not protected (its keeper died: nobody watches it) must not sit under "✓ Every login is stored"; and a
// token the browser cannot send (a character outside Latin-1, pasted from a document) is a token problem,
// not "cannot reach the keeper"; a wrong token is said to be wrong. A session with no login (waiting for a QR
// scan, logged out) is stored but has no login to be safe, and the headline says so. A hung database is the
// session API failing, with its reason, not the keeper being unreachable.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { tcpProxy } from '../../harness/proxy.js';
import { type Service, startService, waitFor } from '../../harness/sidecar.js';
import { chromiumSkip, launchBrowser } from '../support/browser.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const TOKEN = 'status-verdict-token-0123456789abcdef';
const FAST = ['--debounce', '100ms', '--interval', '1s', '--lease-ttl', '1s', '--shutdown-quiet', '0s'];

const text = (page: Page, selector: string) => page.$eval(selector, (element) => element.textContent ?? '');

describe('the status page headline', { skip: chromiumSkip }, async () => {
  const url = await freshDatabase('status-verdict');
  const env = cliEnv(url, { KEEPER_API_TOKEN: TOKEN });
  const home = await tempDir('status-verdict');
  const sessionsDir = path.join(home, 'sessions');
  let browser: Browser;
  let keeper: Service;
  let other: Service;

  before(async () => {
    await mkdir(sessionsDir, { recursive: true });
    for (const name of ['alice', 'bob']) await writeSession(path.join(sessionsDir, name), { preKeys: 2 });
    const lone = path.join(home, 'lone');
    await writeSession(lone, { preKeys: 2 });
    keeper = await startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST], env);
    // Another bot's keeper on the same database, which then dies: its session is stored and nobody watches it.
    other = await startService(['sidecar', '--dir', lone, '--session', 'lone', ...FAST], env);
    await waitFor(async () => ((await other.metric('baileys_keeper_generation')) >= 1 ? true : null), 30_000);
    other.child.kill('SIGKILL');
    await other.exited;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    keeper?.child.kill('SIGKILL');
  });

  it('is not "every login is stored" while the table lists a session as not protected', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${keeper.port}/`, { waitUntil: 'load' });
    // Without the token the headline covers this keeper's sessions only, and says so.
    await waitFor(async () => ((await text(page, '#verdict')) !== '' ? true : null), 10_000);
    assert.equal(await text(page, '#verdict'), "✓ Every login of this keeper's 2 sessions is stored (2 of 2 protected)");
    await page.type('#token', TOKEN);
    await page.click('#login button[type="submit"]');
    await waitFor(async () => ((await text(page, '#sessions tbody')).includes('not_watched') ? true : null), 30_000);
    const first = await text(page, '#sessions tbody tr:first-child');
    assert.match(first, /UNPROTECTED/);
    assert.match(first, /lone/);
    // The row above says a login is not protected; the headline must not say the opposite.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    assert.doesNotMatch(await text(page, '#verdict'), /^✓/);
    // It judges every session the table lists, whichever keeper kept it.
    assert.equal(await text(page, '#verdict'), '⚠ 1 of 3 sessions NOT protected');
    assert.equal(await page.$eval('#verdict', (element) => element.className), 'verdict bad');
    await page.close();
  });

  it('says a token it cannot send is the token, not the keeper, being wrong', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${keeper.port}/`, { waitUntil: 'load' });
    await waitFor(async () => ((await text(page, '#connection')).startsWith('updated') ? true : null), 10_000);
    // An em dash where the token has a hyphen: fetch() refuses such a header value before sending it.
    await page.type('#token', TOKEN.replace('-', '—'));
    await page.click('#login button[type="submit"]');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const connection = await text(page, '#connection');
    assert.doesNotMatch(connection, /cannot reach the keeper/, `the keeper answers /api/overview, yet the page says: ${connection}`);
    assert.match(await text(page, '#session-note'), /token/i);
    assert.match(await text(page, '#session-note'), /A-Z a-z 0-9/, 'it says what a token may hold');
    assert.equal(await page.evaluate(`sessionStorage.getItem('baileys-keeper-token')`), null, 'nothing kept');
    assert.equal(await page.$eval('#sessions-box', (element) => element.hasAttribute('hidden')), true);
    await page.close();
  });

  for (const [what, bad] of [
    ['a space inside', TOKEN.replace('-', ' ')],
    ['a curly quote', `${TOKEN}’`],
    ['a character outside Latin-1 only', `${TOKEN}✓`],
    ['a Latin-1 letter (sendable, never a bearer token)', `${TOKEN}é`],
  ]) {
    it(`refuses a token with ${what} at once, keeping nothing`, async () => {
      const page = await browser.newPage();
      const asked: string[] = [];
      page.on('request', (request) => void asked.push(request.url()));
      await page.goto(`http://127.0.0.1:${keeper.port}/`, { waitUntil: 'load' });
      await waitFor(async () => ((await text(page, '#connection')).startsWith('updated') ? true : null), 10_000);
      await page.type('#token', bad!);
      await page.click('#login button[type="submit"]');
      await waitFor(async () => ((await text(page, '#session-note')).includes('Nothing was kept') ? true : null), 5_000);
      assert.equal(await page.evaluate(`sessionStorage.getItem('baileys-keeper-token')`), null);
      assert.ok(!asked.some((url) => url.includes('/api/session/')), 'no session call was made with it');
      assert.match(await text(page, '#connection'), /^updated/);
      await page.close();
    });
  }

  it('says a token the keeper refuses (401) is wrong, and forgets it', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${keeper.port}/`, { waitUntil: 'load' });
    await page.type('#token', `${TOKEN}x`);
    await page.click('#login button[type="submit"]');
    await waitFor(async () => ((await text(page, '#session-note')).includes('401') ? true : null), 10_000);
    assert.match(await text(page, '#session-note'), /wrong token/);
    assert.equal(await page.evaluate(`sessionStorage.getItem('baileys-keeper-token')`), null);
    assert.match(await text(page, '#connection'), /^updated/);
    await page.close();
  });
});

describe('the status page, sessions without a login and a hung database', { skip: chromiumSkip }, async () => {
  const url = await freshDatabase('status-hung');
  const home = await tempDir('status-hung');
  const sessionsDir = path.join(home, 'sessions');
  const proxy = await tcpProxy(url);
  let browser: Browser;
  let keeper: Service;
  let page: Page;

  before(async () => {
    await mkdir(sessionsDir, { recursive: true });
    await writeSession(path.join(sessionsDir, 'paired'), { preKeys: 2 });
    // A bot that has not been paired yet: a creds.json without a login, waiting for a QR scan.
    await writeSession(path.join(sessionsDir, 'waiting'), { preKeys: 2, registered: false });
    keeper = await startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST], cliEnv(proxy.url, { KEEPER_API_TOKEN: TOKEN }));
    await waitFor(async () => {
      const o = (await (await fetch(`http://127.0.0.1:${keeper.port}/api/overview`)).json()) as Record<string, unknown>;
      return o['sessions'] === 2 && o['protected'] === 2 ? true : null;
    }, 30_000);
    browser = await launchBrowser();
  });

  after(async () => {
    proxy.stall(false);
    await browser?.close();
    keeper?.child.kill('SIGKILL');
    await proxy.close();
  });

  it("without the token: all stored, and one of this keeper's sessions has no login", async () => {
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${keeper.port}/`, { waitUntil: 'load' });
    await waitFor(async () => ((await text(page, '#verdict')) !== '' ? true : null), 10_000);
    assert.equal(
      await text(page, '#verdict'),
      "⚠ All of this keeper's 2 sessions stored; 1 of 2 has no login (logged out or waiting for a QR scan)",
    );
    assert.equal(await page.$eval('#verdict', (element) => element.className), 'verdict warn');
  });

  it('with the token: the same, judged from the table, which names the session', async () => {
    await page.type('#token', TOKEN);
    await page.click('#login button[type="submit"]');
    await waitFor(async () => ((await text(page, '#sessions tbody')).includes('waiting') ? true : null), 10_000);
    await waitFor(async () => ((await text(page, '#verdict')).startsWith('⚠ All 2') ? true : null), 10_000);
    assert.equal(await text(page, '#verdict'), '⚠ All 2 sessions stored; 1 of 2 has no login (logged out or waiting for a QR scan)');
    assert.match(await text(page, '#sessions tbody'), /unpaired/);
  });

  it('a hung database: the keeper answers, its session API does not, and the page says which', async () => {
    proxy.stall(true);
    const note = await waitFor(async () => {
      const now = await text(page, '#session-note');
      return now.includes('session API does not') ? now : null;
    }, 45_000);
    // The keeper gives up on the database and answers 503 with its reason before the page stops waiting.
    assert.match(note, /^The keeper answers, but its session API does not: (503, .*database|no answer within)/, note);
    assert.match(await text(page, '#connection'), /^updated/, 'the keeper itself answers');
    assert.doesNotMatch((await text(page, 'header')) + (await text(page, 'main')), /cannot reach the keeper/);
    assert.equal(await page.$eval('#sessions-box', (element) => element.classList.contains('stale')), true, 'the last table, dimmed');
    // Without the table the headline covers this keeper's sessions again, and says so.
    assert.match(await text(page, '#verdict'), /this keeper's 2 sessions/);
    proxy.stall(false);
    await waitFor(async () => ((await text(page, '#session-note')) === '' ? true : null), 45_000);
    assert.equal(await page.$eval('#sessions-box', (element) => element.classList.contains('stale')), false);
  });

  it('an unreachable database: the 503 and its reason', async () => {
    proxy.block(true);
    const note = await waitFor(async () => {
      const now = await text(page, '#session-note');
      return now.includes('503') ? now : null;
    }, 45_000);
    assert.match(note, /^The keeper answers, but its session API does not: 503, the database cannot be reached now/, note);
    assert.match(note, /retry after \d+ s/);
    assert.match(await text(page, '#connection'), /^updated/);
    proxy.block(false);
    await page.close();
  });
});

describe('the status page, a session this keeper watches but has not stored', { skip: chromiumSkip }, async () => {
  const url = await freshDatabase('status-unstored');
  const home = await tempDir('status-unstored');
  const sessionsDir = path.join(home, 'sessions');
  let browser: Browser;
  let keeper: Service;
  const overview = async () => (await (await fetch(`http://127.0.0.1:${keeper.port}/api/overview`)).json()) as Record<string, unknown>;

  before(async () => {
    await mkdir(path.join(sessionsDir, 'torn'), { recursive: true });
    await writeSession(path.join(sessionsDir, 'good'), { preKeys: 2 });
    // A login cut off mid-write that stays so: the keeper stores no torn file, so nothing of it is stored.
    await writeFile(path.join(sessionsDir, 'torn', 'creds.json'), '{"noiseKey": {"private": ');
    keeper = await startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST], cliEnv(url, { KEEPER_API_TOKEN: TOKEN }));
    await waitFor(async () => {
      const o = await overview();
      return o['sessions'] === 2 && o['protected'] === 1 ? true : null;
    }, 30_000);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    keeper?.child.kill('SIGKILL');
  });

  it('lists it as not protected and counts it in the headline', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${keeper.port}/`, { waitUntil: 'load' });
    await page.type('#token', TOKEN);
    await page.click('#login button[type="submit"]');
    await waitFor(async () => ((await text(page, '#sessions tbody')).includes('good') ? true : null), 10_000);
    await waitFor(async () => ((await text(page, '#verdict')) !== '' ? true : null), 10_000);
    // The table lists it although nothing of it is stored (generation 0), so the headline judged from the
    // table counts it too.
    const first = await text(page, '#sessions tbody tr:first-child');
    assert.match(first, /^⚠ UNPROTECTED.*torn/, first);
    assert.equal(await text(page, '#verdict'), '⚠ 1 of 2 sessions NOT protected');
    await page.close();
  });
});
