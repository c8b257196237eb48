// The session API, compatible with the Flask session API's: every endpoint, every class of bad input.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadEverything, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { startService, waitFor } from '../../harness/sidecar.js';

const TOKEN = 'test-token-0123456789abcdef';

describe('session API', async () => {
  const url = await freshDatabase('api');
  const env = cliEnv(url, { KEEPER_API_TOKEN: TOKEN, KEEPER_MAX_BODY_BYTES: String(256 * 1024) });
  const watched = await tempDir('watched');
  await writeSession(watched, { preKeys: 3 });
  const service = await startService(['sidecar', '--dir', watched, '--session', 'watched', '--shutdown-quiet', '100'], env);
  await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);

  const call = async (method: string, route: string, body?: unknown, token: string | null = TOKEN, raw?: string) => {
    const response = await fetch(`http://127.0.0.1:${service.port}${route}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : null };
  };

  /** A directory written by the real Baileys writer, in the Flask session API's {name: text} shape. */
  const sessionDataOf = async (dir: string) =>
    Object.fromEntries(await Promise.all((await readdir(dir)).map(async (name) => [name, await readFile(path.join(dir, name), 'utf8')])));

  it('round-trips the old shape: POST files, GET them back byte for byte, and the CLI restores a directory Baileys loads', async () => {
    const bot = await tempDir('legacy-bot');
    await writeSession(bot, { preKeys: 12, sessions: 4, senderKeys: 2, appStateKeys: 2 });
    const sessionData = await sessionDataOf(bot);
    const posted = await call('POST', '/api/session/backup', { session_id: 'legacy-bot', session_data: sessionData });
    assert.equal(posted.status, 200, JSON.stringify(posted.json));
    assert.deepEqual(posted.json, { session_id: 'legacy-bot', generation: 1, files: Object.keys(sessionData).length });

    const fetched = await call('GET', '/api/session/restore?session_id=legacy-bot');
    assert.equal(fetched.status, 200);
    assert.equal(fetched.json.generation, 1);
    assert.deepEqual(fetched.json.session_data, sessionData);

    const dir = path.join(await tempDir('restored'), 'auth_info');
    assert.equal((await runCli(['restore', '--dir', dir, '--session', 'legacy-bot'], { env })).code, 0);
    const expected = await loadEverything(bot);
    const actual = await loadEverything(dir);
    assert.deepEqual(actual.creds, expected.creds);
    assert.deepEqual(actual.keys, expected.keys);

    const again = await call('POST', '/api/session/backup', { session_id: 'legacy-bot', session_data: sessionData });
    assert.equal(again.json.generation, 1, 'the same files again write nothing');
  });

  it('backs up the watched directory now when session_data is absent', async () => {
    const auth = await writeSession(watched, { preKeys: 1 }); // adds keys to the watched dir
    void auth;
    const result = await call('POST', '/api/session/backup', {});
    assert.equal(result.status, 200, JSON.stringify(result.json));
    assert.equal(result.json.session_id, 'watched');
    assert.equal(result.json.files, (await readTree(watched)).size);
    const other = await call('POST', '/api/session/backup', { session_id: 'someone-else' });
    assert.equal(other.status, 400);
    assert.match(other.json.error, /belongs to session watched/);
  });

  it('lists a session’s generations newest first, the last events, and an open overview that names no session', async () => {
    const history = await call('GET', '/api/session/history?session_id=watched');
    assert.equal(history.status, 200, JSON.stringify(history.json));
    const numbers = history.json.generations.map((g: { generation: number }) => g.generation);
    assert.ok(numbers.length >= 2, JSON.stringify(history.json));
    assert.deepEqual(
      numbers,
      [...numbers].sort((a: number, b: number) => b - a),
      'newest first',
    );
    const cli = await runCli(['history', '--session', 'watched', '--json'], { env });
    assert.deepEqual(history.json, JSON.parse(cli.stdout), 'the same as history --json, retention schedule included');
    const newest = await call('GET', '/api/session/history?limit=1'); // the watched session by default
    assert.deepEqual(newest.json.generations, history.json.generations.slice(0, 1));
    assert.equal((await call('GET', '/api/session/history?session_id=legacy-bot')).json.generations[0].reason, 'api');
    for (const limit of ['0', '-1', '1.5', 'x', '100001', '99999999999999999999']) {
      const bad = await call('GET', `/api/session/history?limit=${limit}`);
      assert.equal(bad.status, 400, `limit=${limit}: ${JSON.stringify(bad.json)}`);
    }
    assert.equal((await call('GET', '/api/session/history?session_id=nobody')).status, 404);
    assert.equal((await call('GET', '/api/session/history', undefined, null)).status, 401);
    assert.equal((await call('POST', '/api/session/history')).status, 405);

    const events = await call('GET', '/api/session/events');
    assert.equal(events.status, 200);
    const paired = events.json.events.find(
      (e: { event: string; session_id: string }) => e.event === 'paired' && e.session_id === 'watched',
    );
    assert.ok(paired, JSON.stringify(events.json));
    assert.equal(paired.generation, 1);
    assert.equal(paired.phone, '5511*****4321');
    assert.ok(Math.abs(Date.parse(paired.at) - Date.now()) < 120_000, paired.at);
    assert.equal((await call('GET', '/api/session/events', undefined, 'wrong')).status, 401);

    const overview = await fetch(`http://127.0.0.1:${service.port}/api/overview`);
    const text = await overview.text();
    const body = JSON.parse(text);
    assert.equal(overview.status, 200);
    assert.equal(body.sessions, 1);
    assert.equal(body.paired, 1);
    assert.equal(body.session_api, true);
    assert.ok(Date.parse(body.last_backup_at) > Date.now() - 120_000, text);
    for (const secret of ['watched', 'legacy-bot', '4321']) assert.ok(!text.includes(secret), `the open overview shows ${secret}: ${text}`);
  });

  it('lists sessions with masked phone numbers, and deletes one', async () => {
    const listed = await call('GET', '/api/session/status');
    assert.equal(listed.status, 200);
    const legacy = listed.json.sessions.find((s: { session_id: string }) => s.session_id === 'legacy-bot');
    assert.deepEqual(Object.keys(legacy).sort(), [
      'bytes',
      'files',
      'generation',
      'lease_holder',
      'logged_out_at',
      'phone',
      'protected',
      'reasons',
      'registered',
      'removed',
      'session_id',
      'since',
      'state',
      'updated_at',
    ]);
    assert.equal(legacy.phone, '5511*****4321');
    // Stored through the API, watched by no keeper: nobody measures it, and the answer says so.
    assert.deepEqual([legacy.protected, legacy.reasons], [false, ['not_watched']]);
    const watched = listed.json.sessions.find((s: { session_id: string }) => s.session_id === 'watched');
    assert.deepEqual([watched.protected, watched.reasons, watched.since], [true, [], null], 'the watched session is measured live');
    assert.doesNotMatch(JSON.stringify(listed.json), /987654321/);
    const watchedDelete = await call('DELETE', '/api/session/delete?session_id=watched');
    assert.equal(watchedDelete.status, 409, 'the watched session would be stored again at once');
    assert.match(watchedDelete.json.error, /stop the keeper, then delete it/);
    const deleted = await call('DELETE', '/api/session/delete?session_id=legacy-bot');
    assert.deepEqual([deleted.status, deleted.json], [200, { deleted: true }]);
    assert.equal((await call('GET', '/api/session/restore?session_id=legacy-bot')).status, 404);
    assert.equal((await call('DELETE', '/api/session/delete?session_id=legacy-bot')).status, 404);
  });

  it('answers 401 without or with a wrong token, in constant time, with a challenge', async () => {
    const none = await call('GET', '/api/session/status', undefined, null);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await call('GET', '/api/session/status', undefined, 'wrong')).status, 401);
    assert.equal((await call('GET', '/api/session/status', undefined, `${TOKEN}x`)).status, 401);
  });

  const badBodies: [string, unknown, string | undefined, RegExp][] = [
    ['malformed JSON', undefined, '{"session_data": {', /not valid JSON/],
    ['an empty body', undefined, '', /empty/],
    ['a JSON array', [], undefined, /JSON object/],
    ['a non-string session_id', { session_id: 42, session_data: { 'pre-key-1.json': '{}' } }, undefined, /session_id must be a string/],
    ['an invalid session_id', { session_id: '../etc', session_data: { 'pre-key-1.json': '{}' } }, undefined, /invalid session_id/],
    ['session_data that is not an object', { session_id: 'x', session_data: 'creds' }, undefined, /must be an object/],
    ['empty session_data', { session_id: 'x', session_data: {} }, undefined, /empty/],
    ['a non-string file', { session_id: 'x', session_data: { 'pre-key-1.json': { a: 1 } } }, undefined, /must be the file's text/],
    [
      'a path traversal name',
      { session_id: 'x', session_data: { '../../evil.json': '{}' } },
      undefined,
      /"\.\.\/\.\.\/evil\.json".*path separator/,
    ],
    ['a dotfile name', { session_id: 'x', session_data: { '.env': 'x' } }, undefined, /dotfile/],
    ['torn JSON', { session_id: 'x', session_data: { 'pre-key-1.json': '{"private":' } }, undefined, /"pre-key-1\.json".*not valid JSON/],
    ['a creds.json that is not a creds object', { session_id: 'x', session_data: { 'creds.json': '{}' } }, undefined, /creds/],
  ];
  for (const [label, body, raw, pattern] of badBodies) {
    it(`answers 400 to ${label}, storing nothing`, async () => {
      const result = await call('POST', '/api/session/backup', body, TOKEN, raw);
      assert.equal(result.status, 400, JSON.stringify(result.json));
      assert.match(result.json.error, pattern);
      assert.equal((await call('GET', '/api/session/restore?session_id=x')).status, 404);
    });
  }

  it('answers 413 to a body over KEEPER_MAX_BODY_BYTES, declared or streamed', async () => {
    const big = { session_id: 'x', session_data: { 'notes.txt': 'x'.repeat(300 * 1024) } };
    assert.equal((await call('POST', '/api/session/backup', big)).status, 413);
    const chunked = await fetch(`http://127.0.0.1:${service.port}/api/session/backup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 40; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(10_000)));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
  });

  it('answers 400 or 404 to bad or unknown sessions on restore and delete, and 405 to wrong methods', async () => {
    assert.equal((await call('GET', '/api/session/restore?session_id=nobody')).status, 404);
    assert.equal((await call('GET', '/api/session/restore?session_id=bad%20id')).status, 400);
    assert.equal((await call('DELETE', '/api/session/delete')).status, 400);
    const wrong = await call('GET', '/api/session/backup');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
    assert.equal((await call('PUT', '/api/session/status')).status, 405);
  });

  it('answers 409 when the guard refuses, and is still healthy after all of the above', async () => {
    const unpaired = await tempDir('unpaired');
    await writeSession(unpaired, { preKeys: 1, registered: false });
    const refused = await call('POST', '/api/session/backup', { session_id: 'watched', session_data: await sessionDataOf(unpaired) });
    assert.equal(refused.status, 409);
    assert.match(refused.json.error, /refused: the stored session is registered/);
    assert.equal((await service.get('/healthz')).status, 200);
  });

  it('stops cleanly after all of the above', async () => {
    assert.equal((await service.stop()).code, 0, service.output.slice(-10).join('\n'));
  });
});

describe('session API token from a mounted secret file', async () => {
  const url = await freshDatabase('api-file');
  const dir = await tempDir('file');
  await writeSession(dir, { preKeys: 1 });

  it('reads KEEPER_API_TOKEN_FILE (first line), and exits 64 when it cannot', async () => {
    const secret = path.join(await tempDir('secret'), 'token');
    await writeFile(secret, 'from-a-mounted-secret-123456\n');
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'file', '--shutdown-quiet', '100'],
      cliEnv(url, { KEEPER_API_TOKEN_FILE: secret }),
    );
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
      const ok = await fetch(`http://127.0.0.1:${service.port}/api/session/status`, {
        headers: { authorization: 'Bearer from-a-mounted-secret-123456' },
      });
      assert.equal(ok.status, 200);
    } finally {
      await service.stop();
    }
    const missing = await runCli(['sidecar', '--dir', dir], { env: cliEnv(url, { KEEPER_API_TOKEN_FILE: '/nonexistent/token' }) });
    assert.equal(missing.code, 64);
    assert.match(missing.stderr, /cannot read KEEPER_API_TOKEN_FILE \/nonexistent\/token \(ENOENT\)/);
    const both = await runCli(['sidecar', '--dir', dir], { env: cliEnv(url, { KEEPER_API_TOKEN_FILE: secret, KEEPER_API_TOKEN: 'x' }) });
    assert.equal(both.code, 64);
  });
});

describe('session API without a token', async () => {
  const url = await freshDatabase('api-off');
  const dir = await tempDir('off');
  await writeSession(dir, { preKeys: 1 });

  it('answers 403 explaining how to enable it, while health, metrics and the status page stay open', async () => {
    const service = await startService(['sidecar', '--dir', dir, '--session', 'off', '--shutdown-quiet', '100'], cliEnv(url));
    try {
      const status = await service.get('/api/session/status');
      assert.equal(status.status, 403);
      assert.match(JSON.parse(status.text).error, /KEEPER_API_TOKEN/);
      assert.equal((await service.get('/healthz')).status, 200);
      assert.equal((await service.get('/metrics')).status, 200);
      for (const route of ['/api/session/history?session_id=off', '/api/session/events'])
        assert.equal((await service.get(route)).status, 403);
      assert.equal((await service.get('/')).status, 200);
      assert.equal(JSON.parse((await service.get('/api/overview')).text).session_api, false, 'the page says the table needs a token');
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
  });
});
