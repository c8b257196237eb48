// Webhooks and the heartbeat through a real sidecar process (SPEC "Session lifecycle"): a bot that wipes its
// login while watched reaches a real receiver on loopback as a signed logged_out event, phone masked; the
// heartbeat arrives each interval while the session is protected; the settings are checked at start.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openAuth, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { startService, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { Receiver } from '../support/receiver.js';

const SECRET = 'webhook-secret-for-the-test';

describe('webhooks and heartbeat', async () => {
  const url = await freshDatabase('notifications');

  it('a logout while watched is POSTed, signed, phone masked; heartbeats arrive while protected', async () => {
    const hooks = await Receiver.start();
    const pings = await Receiver.start();
    const dir = path.join(await tempDir('notify'), 'auth');
    await writeSession(dir, { preKeys: 2 });
    const env = cliEnv(url, { KEEPER_WEBHOOK_SECRET: SECRET });
    const service = await startService(
      [
        'sidecar',
        '--dir',
        dir,
        '--session',
        'notify',
        '--debounce',
        '100',
        '--max-delay',
        '200',
        '--webhook-url',
        hooks.url('/hook?token=abc'),
        '--heartbeat-url',
        pings.url('/ping/uuid-0000'),
        '--heartbeat-interval',
        '1s',
      ],
      env,
    );
    try {
      // The first pairing of the session is an event too.
      await waitFor(
        () => (hooks.requests.some((request) => JSON.parse(request.body.toString()).event === 'paired') ? true : null),
        15_000,
        () => hooks.requests.map((request) => request.body.toString()).join('\n'),
      );
      // Heartbeats: a GET each interval once the session is compared and protected.
      const beats = await pings.received(2);
      assert.ok(beats.every((beat) => beat.method === 'GET' && beat.url === '/ping/uuid-0000'));

      await rm(dir, { recursive: true });
      await (await openAuth(dir)).saveCreds();
      // Other events may come first (unprotected while the folder was gone, protected again): wait for this one.
      const logout = await waitFor(
        () => hooks.requests.find((request) => JSON.parse(request.body.toString()).event === 'logged_out') ?? null,
        15_000,
        () => hooks.requests.map((request) => request.body.toString()).join('\n'),
      );
      const body = JSON.parse(logout.body.toString());
      assert.deepEqual(Object.keys(body), ['event', 'session_id', 'at', 'generation', 'phone']);
      assert.equal(body.session_id, 'notify');
      assert.equal(body.generation, 2);
      assert.equal(body.phone, '*********4321', 'only the last 4 digits leave the process');
      assert.ok(!Number.isNaN(Date.parse(body.at)));
      const expected = `sha256=${createHmac('sha256', SECRET).update(logout.body).digest('hex')}`;
      const signature = String(logout.headers['x-keeper-signature']);
      assert.ok(signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected)), signature);
      assert.equal(logout.headers['content-type'], 'application/json');
      const metrics = await service.metrics();
      assert.ok((metrics.get('baileys_keeper_webhook_deliveries_total{result="success"}') ?? 0) >= 2);
      assert.ok((metrics.get('baileys_keeper_heartbeats_total{result="success"}') ?? 0) >= 2);
      assert.ok(!service.output.join('\n').includes('token=abc'), 'the webhook URL query is never logged');
      assert.ok(!service.output.join('\n').includes('uuid-0000'), 'the heartbeat URL path is never logged');
    } finally {
      await service.stop();
    }
  });

  it('refuses a bad URL, an interval without a unit or under 1s, and an empty secret (exit 64), naming no secret', async () => {
    const dir = await tempDir('notify-bad');
    const env = cliEnv(url);
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--webhook-url', 'ftp://user:hunter2@example.com/x'], {}, /--webhook-url.*http:\/\/ or https:\/\/ URL, not ftp:/],
      [['--heartbeat-url', 'not a url'], {}, /--heartbeat-url.*is not a valid URL/],
      [['--webhook-url', 'http://user:p%ZZhunter2@example.com/'], {}, /--webhook-url.*malformed %-escape/],
      [['--heartbeat-url', 'http://127.0.0.1:1/p', '--heartbeat-interval', '300'], {}, /--heartbeat-interval.*with its unit/],
      [['--heartbeat-url', 'http://127.0.0.1:1/p', '--heartbeat-interval', '500ms'], {}, /at least 1s/],
      [['--webhook-url', 'http://127.0.0.1:1/h'], { KEEPER_WEBHOOK_SECRET: '   ' }, /webhook secret is empty/],
    ];
    for (const [args, extra, says] of cases) {
      const result = await runCli(['sidecar', '--dir', dir, '--session', 'bad', ...args], { env: { ...env, ...extra } });
      assert.equal(result.code, 64, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, says);
      assert.doesNotMatch(result.stderr, /hunter2/);
    }
  });
});
