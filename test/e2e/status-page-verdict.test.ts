// The status page's headline and connection line tell the truth: with the token, a session the table lists
// as not protected (its keeper died: nobody watches it) must not sit under "✓ Every login is stored"; and a
// token the browser cannot send (a character outside Latin-1, pasted from a document) is a token problem,
// not "cannot reach the keeper".
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
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
    await page.type('#token', TOKEN);
    await page.click('#login button[type="submit"]');
    await waitFor(async () => ((await text(page, '#sessions tbody')).includes('not_watched') ? true : null), 30_000);
    const first = await text(page, '#sessions tbody tr:first-child');
    assert.match(first, /UNPROTECTED/);
    assert.match(first, /lone/);
    // The row above says a login is not protected; the headline must not say the opposite.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    assert.doesNotMatch(await text(page, '#verdict'), /^✓/);
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
    await page.close();
  });
});
