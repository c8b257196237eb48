// Secrets hygiene: a full backup → sidecar + HTTP API → restore → rekey run at log level debug, as
// real processes, with known secrets. None of them may appear in anything the processes print.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Curve } from '@whiskeysockets/baileys';
import { REGISTERED_JID, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli, type CliResult } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { startService, waitFor } from '../../harness/sidecar.js';

interface BufferJson {
  type: 'Buffer';
  data: string;
}

describe('secrets never reach the output', async () => {
  const url = await freshDatabase('secrets');
  const password = decodeURIComponent(new URL(url).password);
  assert.ok(password.length >= 16, 'the test database has a real password');
  const key = randomBytes(32);
  const nextKey = randomBytes(32);
  const token = randomBytes(24).toString('hex');
  const dir = await tempDir('secrets-bot');
  const auth = await writeSession(dir, { preKeys: 5 });
  const creds = JSON.parse(await readFile(path.join(dir, 'creds.json'), 'utf8')) as Record<string, { private: BufferJson } | string>;
  const preKey = JSON.parse(await readFile(path.join(dir, 'pre-key-1.json'), 'utf8')) as { private: BufferJson };

  const secrets: Record<string, string> = {
    'database password': password,
    'database password (URL-encoded)': encodeURIComponent(password),
    'API token': token,
    'phone number': REGISTERED_JID.split(':')[0]!,
    'creds.json noiseKey.private': (creds['noiseKey'] as { private: BufferJson }).private.data,
    'creds.json signedIdentityKey.private': (creds['signedIdentityKey'] as { private: BufferJson }).private.data,
    'creds.json advSecretKey': creds['advSecretKey'] as string,
    'pre-key-1.json private key': preKey.private.data,
  };
  for (const [label, bytes] of [
    ['encryption key', key],
    ['second encryption key', nextKey],
  ] as const) {
    secrets[`${label} (base64)`] = bytes.toString('base64');
    secrets[`${label} (base64url)`] = bytes.toString('base64url');
    secrets[`${label} (hex)`] = bytes.toString('hex');
    secrets[`${label} (first 16 base64 chars)`] = bytes.toString('base64').slice(0, 16);
  }

  const debugEnv = (extra: Record<string, string | undefined> = {}) =>
    cliEnv(url, { KEEPER_LOG_LEVEL: 'debug', KEEPER_ENCRYPTION_KEY: key.toString('base64'), ...extra });
  const output: string[] = [];
  const record = (result: CliResult, expected = 0) => {
    output.push(result.stdout, result.stderr);
    assert.equal(result.code, expected, `${result.stdout}\n${result.stderr}`);
    return result;
  };

  it('runs the whole round trip at debug and prints none of the secrets', async () => {
    record(await runCli(['backup', '--dir', dir], { env: debugEnv() }));
    record(await runCli(['status'], { env: debugEnv() }));
    record(await runCli(['history'], { env: debugEnv() }));
    record(await runCli(['verify'], { env: debugEnv() }));

    const service = await startService(
      ['sidecar', '--dir', dir],
      debugEnv({ KEEPER_API_TOKEN: token, KEEPER_DEBOUNCE_MS: '100', KEEPER_MAX_DELAY_MS: '500' }),
    );
    try {
      const api = async (method: string, route: string, body?: unknown, bearer = token) => {
        const response = await fetch(`http://127.0.0.1:${service.port}${route}`, {
          method,
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      };
      await waitFor(
        async () => ((await service.get('/readyz')).status === 200 ? true : null),
        30_000,
        () => service.output.join('\n'),
        service.exited,
      );
      await auth.state.keys.set({ 'pre-key': { '9': Curve.generateKeyPair() } });
      await waitFor(
        async () => {
          const status = await api('GET', '/api/session/status');
          const sessions = status.json['sessions'] as { generation: number; phone: string }[];
          return sessions[0]!.generation >= 2 ? sessions[0]! : null;
        },
        30_000,
        () => service.output.join('\n'),
        service.exited,
      );
      const status = await api('GET', '/api/session/status');
      assert.equal((status.json['sessions'] as { phone: string }[])[0]!.phone, '5511*****4321', 'the API masks the phone number');
      assert.ok(!JSON.stringify(status.json).includes(secrets['phone number']!));
      const restored = await api('GET', '/api/session/restore?session_id=default');
      assert.equal(
        (restored.json['session_data'] as Record<string, string>)['creds.json'],
        (await readTree(dir)).get('creds.json'),
        'the API decrypts for an authorised client',
      );
      const copy = await api('POST', '/api/session/backup', { session_id: 'copy', session_data: restored.json['session_data'] });
      assert.equal(copy.status, 200, JSON.stringify(copy.json));
      assert.equal((await api('GET', '/api/session/status', undefined, `${token}x`)).status, 401);
      const bad = await api('POST', '/api/session/backup', {
        session_id: 'copy',
        session_data: { 'creds.json': (restored.json['session_data'] as Record<string, string>)['creds.json']!.slice(0, 300) },
      });
      assert.equal(bad.status, 400, 'a torn creds.json is refused');
    } finally {
      const stopped = await service.stop();
      output.push(service.output.join('\n'));
      assert.equal(stopped.code, 0, service.output.join('\n'));
    }

    const target = await tempDir('secrets-restored');
    record(await runCli(['restore', '--dir', target], { env: debugEnv() }));
    assert.deepEqual(await readTree(target), await readTree(dir));
    const keys = {
      KEEPER_ENCRYPTION_KEY: undefined,
      KEEPER_ENCRYPTION_KEYS: `next:${nextKey.toString('base64')},first:${key.toString('base64')}`,
    };
    record(await runCli(['rekey'], { env: debugEnv(keys) }));
    record(await runCli(['export', '--output', path.join(target, '.export.tar')], { env: debugEnv(keys) }));
    // Failures log their error objects at debug: they must not carry secrets either.
    record(await runCli(['restore', '--dir', await tempDir('secrets-nokey')], { env: debugEnv() }), 4);
    const wrongPassword = new URL(url);
    wrongPassword.password = `${password}-wrong`;
    record(await runCli(['status'], { env: { ...debugEnv(), DATABASE_URL: wrongPassword.toString() } }), 2);
    record(
      await runCli(['backup', '--dir', dir], { env: debugEnv({ KEEPER_ENCRYPTION_KEY: `${key.toString('base64').slice(0, 40)}` }) }),
      64,
    );

    const everything = output.join('\n');
    assert.match(everything, /"level":"debug"/, 'debug logging was on');
    assert.match(everything, /5511\*\*\*\*\*4321/, 'status shows the masked number');
    const leaked = Object.entries(secrets).filter(([, value]) => everything.includes(value));
    assert.deepEqual(
      leaked.map(([label]) => label),
      [],
      'secrets found in the output',
    );
  });
});
