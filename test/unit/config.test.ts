import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';

describe('config', () => {
  it('uses the SPEC defaults', () => {
    const config = loadConfig('restore', [], {}, '/srv');
    assert.equal(config.sessionId, 'default');
    assert.equal(config.dir, '/srv/auth_info');
    assert.equal(config.dataDir, '/srv/.baileys-keeper');
    assert.equal(config.schema, 'baileys_keeper');
    assert.equal(config.database, null, 'no DATABASE_URL and no PG* variable: the embedded default');
    assert.equal(config.waitMs, 60_000);
    assert.equal(config.leaseWaitMs, 30_000);
    assert.equal(config.sessionExplicit, false);
  });

  it('max-delay defaults to 1 s, or to a longer --debounce (an upgrade from the 5 s default stays valid)', () => {
    assert.equal(loadConfig('sidecar', [], {}, '/srv').maxDelayMs, 1000);
    assert.equal(loadConfig('sidecar', ['--debounce', '2000'], {}, '/srv').maxDelayMs, 2000);
    assert.throws(
      () => loadConfig('sidecar', ['--debounce', '2000', '--max-delay', '1500'], {}, '/srv'),
      /--max-delay \(1500ms\) is shorter than --debounce \(2s\)/,
    );
  });

  it('reads the retention schedule only where it is applied or shown', () => {
    assert.throws(() => loadConfig('sidecar', [], { KEEPER_RETENTION: 'weekly' }, '/srv'), UsageError);
    assert.equal(loadConfig('status', [], { KEEPER_RETENTION: 'weekly' }, '/srv').command, 'status');
  });

  it('lets a flag beat its env twin, and env beat the default', () => {
    const env = { KEEPER_SESSION_ID: 'from-env', KEEPER_DIR: '/env/auth', KEEPER_WAIT_SECONDS: '5' };
    const fromEnv = loadConfig('restore', [], env, '/srv');
    assert.equal(fromEnv.sessionId, 'from-env');
    assert.equal(fromEnv.dir, '/env/auth');
    assert.equal(fromEnv.waitMs, 5000);
    assert.equal(fromEnv.sessionExplicit, true);
    const fromFlag = loadConfig('restore', ['--session', 'from-flag', '--wait', '7'], env, '/srv');
    assert.equal(fromFlag.sessionId, 'from-flag');
    assert.equal(fromFlag.waitMs, 7000);
  });

  it('reads boolean env words', () => {
    assert.equal(loadConfig('backup', [], { KEEPER_ALLOW_REPLACE: 'yes' }).allowReplace, true);
    assert.equal(loadConfig('backup', [], { KEEPER_ALLOW_REPLACE: '0' }).allowReplace, false);
    assert.throws(() => loadConfig('backup', [], { KEEPER_ALLOW_REPLACE: 'maybe' }), /KEEPER_ALLOW_REPLACE.*1\/true\/yes/);
    for (const command of ['restore', 'run'] as const) {
      const argv = command === 'run' ? ['--', 'node', 'bot.js'] : [];
      assert.equal(loadConfig(command, argv, { KEEPER_REQUIRE_BACKUP: 'true' }).requireBackup, true, command);
      assert.equal(loadConfig(command, argv, {}).requireBackup, false, command);
    }
  });

  for (const [argv, env, pattern] of [
    [['--session', 'bad id!'], {}, /invalid session id/],
    [['--session', 'x'.repeat(101)], {}, /invalid session id/],
    [['--schema', 'Bad-Schema'], {}, /invalid schema/],
    [['--log-level', 'loud'], {}, /invalid log level/],
    [['--wait', '-1'], {}, /--wait/],
    [['--wait', '1.5'], {}, /whole number/],
    [[], { KEEPER_WAIT_SECONDS: 'soon' }, /KEEPER_WAIT_SECONDS/],
    [['--generation', '0'], {}, /--generation/],
    [['--at', 'yesterday'], {}, /ISO-8601/],
    [['--at', '2026-02-31T00:00:00Z'], {}, /./],
    [['--generation', '2', '--at', '2026-01-01'], {}, /only one/],
    [['--no-such-flag'], {}, /no-such-flag/],
    [['stray'], {}, /unexpected argument "stray"/],
  ] as const) {
    it(`rejects ${JSON.stringify(argv)} ${JSON.stringify(env)} with a usage error`, () => {
      assert.throws(
        () => loadConfig('restore', argv, env),
        (error: unknown) => error instanceof UsageError && pattern.test(error.message),
      );
    });
  }

  it('rejects a flag that belongs to another command', () => {
    assert.throws(() => loadConfig('status', ['--force'], {}), UsageError);
    assert.throws(() => loadConfig('backup', ['--yes'], {}), UsageError);
  });

  it('returns a frozen object', () => {
    assert.ok(Object.isFrozen(loadConfig('status', [], {})));
  });

  it("keeps the keeper's secrets out of the bot's environment: keys, the API token, the webhook secret and URLs", () => {
    const env = {
      KEEPER_API_TOKEN: 'a-long-enough-api-token-0123456789',
      KEEPER_WEBHOOK_SECRET: 'signing-secret',
      KEEPER_WEBHOOK_URL: 'https://hooks.example.com/services/T000/B000/XXXX',
      KEEPER_HEARTBEAT_URL: 'https://hc-ping.example.com/0000-uuid',
      BOT_OWN: 'kept',
    };
    const config = loadConfig('run', ['--', 'node', 'bot.js'], env);
    assert.deepEqual(
      Object.keys(config.childEnv).filter((name) => name in env),
      ['BOT_OWN'],
    );
    assert.equal(config.webhookUrl, env.KEEPER_WEBHOOK_URL);
  });
});
