// A real headless Chromium for the status page tests: the machine's own browser (Debian's `chromium`),
// driven by puppeteer-core, which never downloads one. CI installs it and sets KEEPER_TEST_REQUIRE_CHROMIUM=1,
// so the tests cannot silently skip there.
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** CI sets this: a missing browser then fails the test instead of skipping it. */
export const CHROMIUM_REQUIRED = process.env['KEEPER_TEST_REQUIRE_CHROMIUM'] === '1';

/** The browser executable: $CHROMIUM, else the first of Debian's and the usual names that exists, else null. */
export const CHROMIUM: string | null =
  [process.env['CHROMIUM'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find(
    (candidate): candidate is string => candidate !== undefined && candidate !== '' && existsSync(candidate),
  ) ?? null;

/** Why a browser test must skip here, or false when it can run (never skips when required). */
export const chromiumSkip: string | false =
  CHROMIUM || CHROMIUM_REQUIRED
    ? false
    : 'no Chromium installed (apt-get install chromium, or set CHROMIUM; CI installs it and runs this file)';

/** Starts the headless browser (fails when required and missing). */
export async function launchBrowser(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('KEEPER_TEST_REQUIRE_CHROMIUM=1 but no Chromium was found (install chromium, or set CHROMIUM)');
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root (the tests' usual user here) Chromium refuses to start with its sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
  });
}

/** Everything a page reported as wrong: console errors, uncaught exceptions, CSP violations; with when. */
export interface PageProblems {
  list: { at: number; text: string }[];
  /** Problems reported since `at` (Date.now() ms). */
  since(at: number): string[];
}

/** Starts recording `page`'s console errors and uncaught exceptions. */
export function recordProblems(page: Page): PageProblems {
  const list: { at: number; text: string }[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warn')
      list.push({ at: Date.now(), text: `console ${message.type()}: ${message.text()}` });
  });
  page.on('pageerror', (error) =>
    list.push({ at: Date.now(), text: `page error: ${error instanceof Error ? error.message : String(error)}` }),
  );
  return { list, since: (at) => list.filter((entry) => entry.at >= at).map((entry) => entry.text) };
}
