// The session API under hostile and unlucky input: parallel writers in one process and a writer in
// another, too many files, names PostgreSQL or JavaScript objects would mangle, a token no request can
// carry, and an API write that makes a watched session's head older than its directory.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { MAX_INCOMING_FILES } from '../../src/incoming.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const TOKEN = 'hostile-token-0123456789abcdef';

describe('session API under hostile input', async () => {
  const url = await freshDatabase('api_hostile');
  const env = cliEnv(url, { KEEPER_API_TOKEN: TOKEN });
  const watched = await tempDir('watched');
  await writeSession(watched, { preKeys: 3 });
  // A long --interval: only the API write itself may bring the head back to the directory.
  const service = await startService(
    ['sidecar', '--dir', watched, '--session', 'watched', '--interval', '600000', '--debounce', '100', '--max-delay', '200'],
    env,
  );
  await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);

  const call = async (method: string, route: string, body?: unknown, raw?: string) => {
    const response = await fetch(`http://127.0.0.1:${service.port}${route}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : null };
  };
  const sessionDataOf = async (dir: string) =>
    Object.fromEntries(await Promise.all((await readdir(dir)).map(async (name) => [name, await readFile(path.join(dir, name), 'utf8')])));

  it('queues parallel writes to one session: ten at once all succeed, one generation each', async () => {
    const bot = await tempDir('parallel-bot');
    await writeSession(bot, { preKeys: 2 });
    const base = await sessionDataOf(bot);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        call('POST', '/api/session/backup', { session_id: 'parallel', session_data: { ...base, [`note-${i}.json`]: `{"n":${i}}` } }),
      ),
    );
    for (const answer of answers) assert.equal(answer.status, 200, answer.text);
    const generations = answers.map((answer) => answer.json.generation as number).sort((a, b) => a - b);
    assert.deepEqual(generations, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'each write stored in turn');
    const head = await storedHead(url, 'parallel');
    const last = answers.find((answer) => answer.json.generation === 10)!;
    assert.equal(head.size, last.json.files);
  });

  it('answers 409 naming the holder when another keeper process holds the session', async () => {
    const otherDir = await tempDir('other-keeper');
    await writeSession(otherDir, { preKeys: 1 });
    const other = await startService(['sidecar', '--dir', otherDir, '--session', 'contested', '--interval', '600000'], env);
    try {
      await waitFor(async () => ((await other.get('/readyz')).status === 200 ? true : null), 20_000);
      const [holder] = await query<{ lease_owner: string }>(url, 'SELECT lease_owner FROM baileys_keeper.sessions WHERE session_id = $1', [
        'contested',
      ]);
      assert.ok(holder?.lease_owner, 'the other keeper holds the lease');
      const before = await storedHead(url, 'contested');
      const answers = await Promise.all(
        Array.from({ length: 3 }, () =>
          call('POST', '/api/session/backup', { session_id: 'contested', session_data: { 'note.json': '{"stale":true}' } }),
        ),
      );
      for (const answer of answers) {
        assert.equal(answer.status, 409, answer.text);
        assert.ok(answer.json.error.includes(holder.lease_owner), answer.json.error);
      }
      assert.deepEqual(await storedHead(url, 'contested'), before, 'nothing was written over the holder');
    } finally {
      await other.stop();
    }
  });

  it(`answers 413 to more than ${MAX_INCOMING_FILES} files, counted before or after parsing`, async () => {
    const files = (count: number) => `{${Array.from({ length: count }, (_, i) => `"f${i}":""`).join(',')}}`;
    for (const count of [MAX_INCOMING_FILES + 1, 1_200_000]) {
      const answer = await call('POST', '/api/session/backup', undefined, `{"session_id":"many","session_data":${files(count)}}`);
      assert.equal(answer.status, 413, `${count} files: ${answer.text.slice(0, 200)}`);
      assert.match(answer.json.error, new RegExp(`more than ${MAX_INCOMING_FILES} files`));
    }
    assert.deepEqual(await storedHead(url, 'many'), new Map(), 'nothing stored');
  });

  it('answers 400 to names that are not well-formed Unicode, whichever surrogate half', async () => {
    for (const names of [['\ud800.json', '\udc00.json'], ['a\udbff'], ['\udfff\ud800'], ['x\ud83d.json']]) {
      const data = Object.fromEntries(names.map((name) => [name, '{}']));
      const answer = await call('POST', '/api/session/backup', { session_id: 'surrogates', session_data: data });
      assert.equal(answer.status, 400, `${JSON.stringify(names)}: ${answer.text}`);
      assert.match(answer.json.error, /not well-formed Unicode/);
    }
    // The text too: UTF-8 cannot carry a lone half, and storing U+FFFD would answer other text than was sent.
    const text = await call('POST', '/api/session/backup', { session_id: 'surrogates', session_data: { 'note.json': '{"a":"\ud800"}' } });
    assert.equal(text.status, 400, text.text);
    assert.match(text.json.error, /not well-formed Unicode text/);
    // A well-formed pair is an ordinary name.
    const paired = await call('POST', '/api/session/backup', { session_id: 'surrogates', session_data: { '\ud83d\ude00.json': '{}' } });
    assert.equal(paired.status, 200, paired.text);
    assert.deepEqual([...(await storedHead(url, 'surrogates')).keys()], ['\ud83d\ude00.json']);
  });

  it('restores files named like Object.prototype members: __proto__, constructor, toString, hasOwnProperty', async () => {
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];
    // Written as JSON text: an object literal with a __proto__ key would set the prototype instead.
    const raw = `{"session_id":"prototype","session_data":{${names.map((name, i) => `"${name}":"content ${i}"`).join(',')}}}`;
    const posted = await call('POST', '/api/session/backup', undefined, raw);
    assert.equal(posted.status, 200, posted.text);
    assert.equal(posted.json.files, names.length);
    const restored = await call('GET', '/api/session/restore?session_id=prototype');
    assert.equal(restored.status, 200, restored.text);
    const data = restored.json.session_data as Record<string, unknown>;
    assert.deepEqual(Object.keys(data).sort(), [...names].sort());
    for (const [i, name] of names.entries()) assert.equal(Object.getOwnPropertyDescriptor(data, name)?.value, `content ${i}`, name);
  });

  it('brings a watched session back to its directory at once after an API write that differs from it', async () => {
    const stale = await sessionDataOf(watched);
    await writeSession(watched, { preKeys: 3, sessions: 2 }); // the bot moves on
    const dir = await readTree(watched);
    await waitFor(async () => (diffTrees(await storedHead(url, 'watched'), dir).length === 0 ? true : null), 10_000);

    // The older body of the same login is a rollback: refused, the head unchanged (docs/reliability.md).
    const older = await call('POST', '/api/session/backup', { session_id: 'watched', session_data: stale });
    assert.equal(older.status, 409, older.text);
    assert.match(older.json.error, /older than the stored head/);
    // A body the guards accept but that differs from the directory (a bot still calling as it called the Flask session API, beside the sidecar).
    const current = Object.fromEntries([...dir].map(([name, text]) => [name, text]));
    const differing = { ...current, 'app-state-sync-version-regular.json': JSON.stringify({ posted: true }) };
    const posted = await call('POST', '/api/session/backup', { session_id: 'watched', session_data: differing });
    assert.equal(posted.status, 200, posted.text);
    const started = Date.now();
    await waitFor(
      async () => (diffTrees(await storedHead(url, 'watched'), dir).length === 0 ? true : null),
      5_000,
      () => 'the head kept the posted (older) files: the loop did not compare the directory with the head',
    );
    assert.ok(Date.now() - started < 5_000);
    const [session] = await query<{ head_generation: string }>(
      url,
      'SELECT head_generation FROM baileys_keeper.sessions WHERE session_id = $1',
      ['watched'],
    );
    const head = Number(session!.head_generation);
    assert.ok(head > posted.json.generation, 'a newer generation restored the directory');
    await waitFor(async () => ((await service.metric('baileys_keeper_generation')) === head ? true : null), 5_000);
    assert.equal(await service.metric('baileys_keeper_backup_lag_seconds'), 0);

    // A body without one of the directory's Signal sessions (a bot's backup call that has not seen a new contact):
    // the head deletes it, and the directory that still holds it is the live bot's, not a stale disk.
    const signal = Object.keys(current).find((name) => name.startsWith('session-'))!;
    const withoutOne = Object.fromEntries(Object.entries(current).filter(([name]) => name !== signal));
    const dropped = await call('POST', '/api/session/backup', { session_id: 'watched', session_data: withoutOne });
    assert.equal(dropped.status, 200, dropped.text);
    await waitFor(
      async () => (diffTrees(await storedHead(url, 'watched'), dir).length === 0 ? true : null),
      5_000,
      () => `the directory's ${signal} was not stored back over the posted deletion:\n${service.output.slice(-5).join('\n')}`,
    );
    assert.equal(await service.metric('baileys_keeper_backups_total{result="refused"}'), 0, 'no refusal of the live directory');
  });

  it('stops cleanly after all of the above', async () => {
    assert.equal((await service.stop()).code, 0);
  });
});

describe('an API token a bearer header cannot carry', () => {
  it('is refused at start with exit 64, never printing the token', async () => {
    const url = await freshDatabase('api_token_chars');
    const dir = await tempDir('token-chars');
    for (const token of ['abc def', 'tab\there-secret', 'quote"secret', 'ümlaut-secret', 'semi;colon-secret', '=leading-secret']) {
      const result = await runCli(['sidecar', '--dir', dir, '--listen', '127.0.0.1:0'], {
        env: cliEnv(url, { KEEPER_API_TOKEN: token }),
        timeoutMs: 20_000,
      });
      assert.equal(result.code, 64, `${JSON.stringify(token)}: ${result.stdout}${result.stderr}`);
      const output = result.stdout + result.stderr;
      assert.match(output, /API token .* bearer token cannot carry/);
      assert.ok(!output.includes(token) && !output.includes('secret'), 'the token is never printed');
    }
  });
});
