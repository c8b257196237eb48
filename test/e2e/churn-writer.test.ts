// The churning bot (harness/churn.ts) is a real Baileys writer: its steps create sessions and
// sender keys, delete used pre-keys and rewrite creds.json, everything it leaves loads back with
// useMultiFileAuthState, and a bot reopened from that directory still talks to its contacts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import type { AuthenticationCreds } from '@whiskeysockets/baileys';
import { openAuth, REGISTERED_JID } from '../../harness/baileys.js';
import { ChurnBot } from '../../harness/churn.js';
import { tempDir } from '../support/fs.js';
import { CHURN_BOT } from '../../harness/paths.js';

/** `<type>-<id>.json`, longest type first (sender-key-memory before sender-key). */
const KEY_FILE =
  /^(sender-key-memory|sender-key|pre-key|session|identity-key|lid-mapping|device-list|app-state-sync-key|app-state-sync-version|tctoken)-(.+)\.json$/;

function ofKind(names: string[], kind: string): string[] {
  return names.filter((name) => KEY_FILE.exec(name)?.[1] === kind);
}

/** Reads every file of `dir` back with Baileys' own reader (which answers null for unparsable JSON). */
async function loadsWithBaileys(dir: string): Promise<AuthenticationCreds> {
  const auth = await openAuth(dir);
  for (const name of await readdir(dir)) {
    if (name === 'creds.json') continue;
    const match = KEY_FILE.exec(name);
    assert.ok(match, `a file Baileys does not write: ${name}`);
    const [, type, id] = match as unknown as [string, string, string];
    const loaded = await auth.state.keys.get(type as never, [id]);
    assert.ok((loaded as Record<string, unknown>)[id], `${name} does not load with useMultiFileAuthState`);
  }
  return auth.state.creds;
}

/** Starts churn-bot; `lines` fills with what it prints on stdout. */
function startChurnBot(args: string[]) {
  const child = spawn(process.execPath, [CHURN_BOT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let ended = false;
  void exited.then(() => (ended = true));
  /** Polls `probe` until it returns a value; fails once the process has exited without one. */
  const until = async <T>(probe: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> => {
    for (;;) {
      const wasEnded = ended;
      const value = await probe();
      if (value !== undefined) return value;
      if (wasEnded) throw new Error(`churn-bot exited before ${what}:\n${lines.join('\n')}\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const waitForLine = (pattern: RegExp): Promise<string> => until(() => lines.find((line) => pattern.test(line)), `printing ${pattern}`);
  return { child, lines, exited, until, waitForLine, stderr: () => stderr };
}

describe('churning bot', () => {
  it('changes sessions, pre-keys, sender keys and creds as a live Baileys bot does, coherently', { timeout: 120_000 }, async () => {
    const dir = await tempDir('churn');
    const bot = await ChurnBot.open(dir, { seed: 7 });
    const before = await readdir(dir);
    const initialPreKeys = ofKind(before, 'pre-key');
    assert.equal(initialPreKeys.length, 50, 'the initial batch of pre-keys');
    const credsBefore = await readFile(path.join(dir, 'creds.json'), 'utf8');

    const labels: string[] = [];
    for (let i = 0; i < 20; i++) labels.push(await bot.step());
    labels.push(...(await bot.burst(40)));
    assert.equal(labels.length, 60);

    const after = await readdir(dir);
    assert.ok(ofKind(after, 'session').length > 0, 'sessions were written');
    assert.ok(ofKind(after, 'identity-key').length > 0, 'identity keys were written');
    assert.ok(ofKind(after, 'lid-mapping').length > 0, 'LID mappings were written');
    assert.ok(ofKind(after, 'sender-key').length > 0, `sender keys were written (${labels.join(', ')})`);
    assert.ok(ofKind(after, 'sender-key-memory').length > 0, 'sender-key memory was written');
    assert.ok(
      initialPreKeys.some((name) => !after.includes(name)),
      'a pre-key handed out to a new contact was deleted',
    );
    assert.notEqual(await readFile(path.join(dir, 'creds.json'), 'utf8'), credsBefore, 'creds.json changed');

    const creds = await loadsWithBaileys(dir);
    assert.equal(creds.me?.id, REGISTERED_JID);
    assert.equal(creds.registered, true);
    for (const name of ofKind(after, 'pre-key')) {
      assert.ok(Number(KEY_FILE.exec(name)![2]) < creds.nextPreKeyId, `${name} is below nextPreKeyId ${creds.nextPreKeyId}`);
    }

    // A bot reopened from what is on disk still talks to every contact and group it knew.
    const { contacts, groups } = bot;
    assert.ok(contacts.length > 0);
    await bot.close();
    const reopened = await ChurnBot.open(dir);
    for (const contact of contacts) await reopened.chat(contact);
    for (const group of groups) await reopened.sendToGroup(group);
    await reopened.burst(20);
    await reopened.close();
    await loadsWithBaileys(dir);
  });

  it('runs as a process: prints ready, churns, and on SIGTERM prints stopped and exits 0', { timeout: 60_000 }, async () => {
    const dir = await tempDir('churn-bot');
    const bot = startChurnBot([dir, '--rate', '50', '--seed', '3']);
    await bot.waitForLine(/^ready$/);
    await bot.until(async () => (ofKind(await readdir(dir), 'session').length >= 3 ? true : undefined), 'writing sessions');
    bot.child.kill('SIGTERM');
    assert.equal(await bot.exited, 0, bot.stderr());
    const stopped = await bot.waitForLine(/^stopped \d+$/);
    assert.ok(Number(stopped.split(' ')[1]) > 0, stopped);
    assert.deepEqual(
      bot.lines.filter((line) => line !== 'ready' && line !== stopped),
      [],
      'nothing else on stdout',
    );
    await loadsWithBaileys(dir);
  });

  it('stops by itself after --seconds', { timeout: 60_000 }, async () => {
    const dir = await tempDir('churn-timed');
    const bot = startChurnBot([dir, '--rate', '100', '--seconds', '1']);
    assert.equal(await bot.exited, 0, bot.stderr());
    await bot.waitForLine(/^stopped \d+$/);
    await loadsWithBaileys(dir);
  });
});
