// What a keeper says while a bot writes its keys, on a manual clock over real files and a real PostgreSQL:
// routine backups at debug, one info line every five minutes summing them up (one for all the sessions of
// a sessions directory), and what is not routine — the first backup, a bulk change, the backup after a
// refusal — still at info or warn.
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { BAILEYS_7, initAuthCreds, sessionRecord, writeSession } from '../../harness/baileys.js';
import { waitFor } from '../../harness/sidecar.js';
import { SUMMARY_INTERVAL_MS } from '../../src/backup-summary.js';
import { DEFAULT_DEBOUNCE_MS } from '../../src/config.js';
import { MANY_FILES } from '../../src/loop/loop-options.js';
import { freshDatabase } from '../support/db.js';
import { startFleet } from '../support/fleet.js';
import { tempDir } from '../support/fs.js';
import { startLoop } from '../support/loop.js';

const SUMMARY = /^backups in the last (\S+): (\d+) generations? stored \((\d+) files changed, (\d+) deleted, (.+)\) for (\d+) sessions?$/;

/** The summary lines among `messages`, parsed. */
function summaries(messages: readonly string[]) {
  return messages
    .map((message) => SUMMARY.exec(message))
    .filter((match) => match !== null)
    .map((match) => ({
      period: match[1],
      generations: Number(match[2]),
      files: Number(match[3]),
      deleted: Number(match[4]),
      sessions: Number(match[6]),
    }));
}

/** A key file as Baileys writes one. */
function writeKey(dir: string, name: string): Promise<void> {
  return writeFile(path.join(dir, name), JSON.stringify(sessionRecord(), BAILEYS_7.BufferJSON.replacer));
}

describe('what the keeper logs while backups are routine', async () => {
  const url = await freshDatabase('backup-logging');

  it('says routine backups at debug and sums them up at info every five minutes', async () => {
    const dir = await tempDir('routine');
    await writeSession(dir, { preKeys: 2, sessions: 1, senderKeys: 1, appStateKeys: 1 });
    const loop = await startLoop(url, { dir, sessionId: 'routine' });
    const stored = () => loop.logs.filter((message) => message === 'backup stored').length;
    assert.equal(stored(), 1, 'the first backup of the session is said at info');
    const initial = (await readdir(dir)).length;

    for (let i = 0; i < 5; i++) {
      const name = `session-55110000000${i}.0.json`;
      await writeKey(dir, name);
      await loop.seen(name);
      await loop.advance(DEFAULT_DEBOUNCE_MS);
    }
    assert.equal(await loop.backups('success'), 6, 'each change was stored');
    assert.equal(stored(), 1, 'no routine backup is said at info');
    assert.deepEqual(summaries(loop.logs), [], 'no summary before the interval');

    await loop.advance(SUMMARY_INTERVAL_MS);
    const bytes = (await Promise.all((await readdir(dir)).map((name) => stat(path.join(dir, name))))).reduce(
      (sum, info) => sum + info.size,
      0,
    );
    assert.deepEqual(summaries(loop.logs), [{ period: '5m', generations: 6, files: initial + 5, deleted: 0, sessions: 1 }]);
    assert.ok(
      loop.logs.some((message) => message.includes(`files changed, 0 deleted, ${(bytes / 1024).toFixed(1)} KiB)`)),
      `the summary gives the bytes stored (${bytes}):\n${loop.logs.join('\n')}`,
    );

    await loop.advance(SUMMARY_INTERVAL_MS);
    assert.equal(summaries(loop.logs).length, 1, 'an interval in which nothing was stored says nothing');
  });

  it('says at info what is not routine: a bulk change, and the backup after a refusal (itself a warning)', async () => {
    const dir = await tempDir('unusual');
    await writeSession(dir, { preKeys: 2, sessions: 1, senderKeys: 1, appStateKeys: 1 });
    const loop = await startLoop(url, { dir, sessionId: 'unusual' });
    const stored = () => loop.logs.filter((message) => message === 'backup stored').length;
    assert.equal(stored(), 1);

    const many = Array.from({ length: MANY_FILES }, (_, i) => `pre-key-${1000 + i}.json`);
    await Promise.all(many.map((name) => writeKey(dir, name)));
    await loop.seen(...many);
    await loop.advance(DEFAULT_DEBOUNCE_MS);
    assert.equal(stored(), 2, `a backup of ${MANY_FILES} files is said at info`);

    // Another account's login over the stored one: the guard refuses it (a warning) …
    const creds = path.join(dir, 'creds.json');
    const paired = await readFile(creds);
    const another = { ...initAuthCreds(), me: { id: '5511900000002:1@s.whatsapp.net', name: 'Another' }, registered: true };
    await writeFile(creds, JSON.stringify(another, BAILEYS_7.BufferJSON.replacer));
    await loop.seen('creds.json');
    await loop.advance(DEFAULT_DEBOUNCE_MS);
    assert.equal(await loop.backups('refused'), 1);
    assert.ok(loop.logs.some((message) => message.startsWith('backup refused')));
    // … and once the paired login is back, the next stored backup is said at info.
    await writeFile(creds, paired);
    await writeKey(dir, 'session-5511999999999.0.json');
    await loop.seen('creds.json', 'session-5511999999999.0.json');
    await loop.advance(DEFAULT_DEBOUNCE_MS);
    await waitFor(
      () => (stored() === 3 ? true : null),
      5_000,
      () => loop.logs.join('\n'),
    );
  });

  it('sums up every session of a sessions directory in one line', async () => {
    const sessions = Array.from({ length: 12 }, (_, i) => `s${i}`);
    const messages: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void messages.push(String(JSON.parse(line).msg)) });
    const { fleet, clock, sessionsDir } = await startFleet(url, sessions, { log });
    const ids = sessions.map((name) => `f-${name}`);
    const stored = () => messages.filter((message) => message === 'backup stored').length;
    const first = stored();
    assert.equal(first, sessions.length, 'the first backup of each session is said');

    for (const [i, name] of sessions.entries()) await writeKey(path.join(sessionsDir, name), `session-55119000000${i}.0.json`);
    await waitFor(
      () => (ids.every((id) => (fleet.loopFor(id)?.dirty.size ?? 0) > 0) ? true : null),
      10_000,
      () => 'the watchers did not report every write',
    );
    await clock.advance(DEFAULT_DEBOUNCE_MS);
    await waitFor(
      () => (ids.every((id) => fleet.loopFor(id)?.dirty.size === 0) ? true : null),
      10_000,
      () => 'not every write was stored',
    );
    assert.equal(stored(), first, 'routine backups of many sessions are not said one by one');

    await clock.advance(SUMMARY_INTERVAL_MS);
    const lines = summaries(messages);
    assert.equal(lines.length, 1, messages.join('\n'));
    assert.equal(lines[0]!.sessions, sessions.length);
    assert.equal(lines[0]!.generations, 2 * sessions.length, 'every first backup and every routine one');
  });
});
