// A variable meant for the keeper that names no setting is found, once, with the name it most likely meant:
// typos, another case, a misspelled prefix, a missing unit suffix, a one-shot flag guessed as a variable.
// Only names are judged and said, never values; the bot's own variables are none of the keeper's business.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { environmentVariables, NOT_SETTINGS, SETTINGS, type Setting } from '../../src/options.js';
import { startWarnings } from '../../src/start-warnings.js';
import { describeUnknownVariable, unknownVariables } from '../../src/unknown-variables.js';

const verdict = (name: string) => unknownVariables({ [name]: 'x' })[0] ?? null;
const environment = (names: string[]) => Object.fromEntries(names.map((name) => [name, 'x']));

describe('unknown KEEPER_* variables', () => {
  for (const [name, meant] of [
    ['KEEPER_SESION_ID', 'KEEPER_SESSION_ID'],
    ['KEEPER_SESSIONID', 'KEEPER_SESSION_ID'],
    ['KEEPER_SESSION_IDS', 'KEEPER_SESSION_ID'],
    ['KEEPER_SESSION', 'KEEPER_SESSION_ID'],
    ['keeper_session_id', 'KEEPER_SESSION_ID'],
    ['Keeper_Session_Id', 'KEEPER_SESSION_ID'],
    ['KEPER_SESSION_ID', 'KEEPER_SESSION_ID'],
    ['KEEPR_DIR', 'KEEPER_DIR'],
    ['KEEPERS_SESSIONS_DIR', 'KEEPER_SESSIONS_DIR'],
    ['KEEPER_DEBOUNCE', 'KEEPER_DEBOUNCE_MS'],
    ['KEEPER_WAIT', 'KEEPER_WAIT_SECONDS'],
    ['KEEPER_LEASE_WAIT_MS', 'KEEPER_LEASE_WAIT_SECONDS'],
    ['KEEPER_DEBOUNCE_SECONDS', 'KEEPER_DEBOUNCE_MS'],
    ['KEEPER_HEARTBEAT_INTERVAL_MS', 'KEEPER_HEARTBEAT_INTERVAL'],
    ['KEEPER_VERSON', null],
    ['KEEPER_ENCRYPTON_KEY', 'KEEPER_ENCRYPTION_KEY'],
    ['KEEPER_API_TOKN', 'KEEPER_API_TOKEN'],
    ['KEEPER_DATABASE_URL', 'DATABASE_URL'],
    ['keeper_database_url', 'DATABASE_URL'],
    ['KEEPER_PGHOST', 'PGHOST'],
    ['KEEPER_PGSSLMODE', 'PGSSLMODE'],
    ['KEEPER_PORT', 'KEEPER_LISTEN'],
    ['KEEPER_HTTP_PORT', 'KEEPER_LISTEN'],
    ['KEEPER_METRICS_PORT', 'KEEPER_LISTEN'],
    ['KEEPER_HOST', 'KEEPER_LISTEN'],
  ] as const) {
    it(`${name}: unknown, did you mean ${meant ?? 'nothing (not a setting either)'}`, () => {
      const found = verdict(name);
      assert.deepEqual(found && { name: found.name, suggestion: found.suggestion, oneShotFlag: found.oneShotFlag }, {
        name,
        suggestion: meant,
        oneShotFlag: null,
      });
    });
  }

  it('says when the variable it suggests reads a bare number in another unit than the name as set', () => {
    for (const [name, meant, unit] of [
      ['KEEPER_DEBOUNCE_SECONDS', 'KEEPER_DEBOUNCE_MS', 'milliseconds'],
      ['KEEPER_INTERVAL_S', 'KEEPER_INTERVAL_MS', 'milliseconds'],
      ['KEEPER_LEASE_WAIT_MS', 'KEEPER_LEASE_WAIT_SECONDS', 'seconds'],
      ['KEEPER_WAIT_MILLIS', 'KEEPER_WAIT_SECONDS', 'seconds'],
    ] as const) {
      const found = verdict(name)!;
      assert.deepEqual([found.suggestion, found.bareUnit], [meant, unit], name);
      assert.match(describeUnknownVariable(found, 'sidecar'), new RegExp(`did you mean ${meant}\\? A bare number there is in ${unit}`));
    }
    // Same unit, or none said: no note.
    for (const name of ['KEEPER_DEBOUNCE', 'KEEPER_SESION_ID', 'KEEPER_DEBOUNCE_MILLIS']) assert.equal(verdict(name)!.bareUnit, null, name);
  });

  it('says that a one-shot flag has no variable, for each of them', () => {
    const oneShot = (Object.entries(SETTINGS) as Array<[string, Setting]>).filter(([, setting]) => setting.oneShot);
    assert.ok(oneShot.some(([name]) => name === 'force'));
    for (const [flag] of oneShot) {
      const name = `KEEPER_${flag.toUpperCase().replaceAll('-', '_')}`;
      assert.deepEqual(verdict(name), { name, suggestion: null, oneShotFlag: `--${flag}`, bareUnit: null }, name);
      assert.match(describeUnknownVariable(verdict(name)!, 'restore'), new RegExp(`--${flag} is a one-shot flag`));
    }
  });

  it('finds a misspelling of every variable the keeper reads, and suggests that variable', () => {
    const known = new Set(environmentVariables());
    for (const name of known) {
      if (!name.startsWith('KEEPER_')) continue;
      // One letter of the part after the prefix dropped, another doubled.
      const middle = 'KEEPER_'.length + Math.floor((name.length - 'KEEPER_'.length) / 2);
      for (const typo of [name.slice(0, middle) + name.slice(middle + 1), name.slice(0, middle) + name[middle] + name.slice(middle)]) {
        if (known.has(typo)) continue;
        assert.equal(verdict(typo)?.suggestion, name, typo);
      }
    }
  });

  it('leaves alone every variable the keeper reads, the few it knows that are not settings, and everything outside KEEPER_*', () => {
    const names = [
      ...environmentVariables(),
      ...NOT_SETTINGS.map(([name]) => name),
      'DATABASE_URL',
      'PGHOST',
      'HOME',
      'NODE_ENV',
      'BOT_TOKEN',
      'KEEPER',
      'SLEEPER_MODE',
      'BEEKEEPER_HIVES',
      // One letter replaced is another word, not a typo of the prefix: a bot's own chat bridge.
      'BEEPER_TOKEN',
      'PEEPER_X',
      'KEEPEN_Y',
    ];
    assert.deepEqual(unknownVariables(environment(names)), []);
  });

  it('leaves alone the variables Kubernetes gives every pod for a Service named like the prefix, and only those', () => {
    const links = {
      KEEPER_SERVICE_HOST: '10.96.0.12',
      KEEPER_SERVICE_PORT: '9464',
      KEEPER_SERVICE_PORT_METRICS: '9464',
      KEEPER_PORT: 'tcp://10.96.0.12:9464',
      KEEPER_PORT_9464_TCP: 'tcp://10.96.0.12:9464',
      KEEPER_PORT_9464_TCP_PROTO: 'tcp',
      KEEPER_PORT_9464_TCP_PORT: '9464',
      KEEPER_PORT_9464_TCP_ADDR: '10.96.0.12',
    };
    assert.deepEqual(unknownVariables(links), []);
    // The same name set by a person to a port is a guess at --listen: said.
    assert.deepEqual(
      unknownVariables({ KEEPER_PORT: '9464' }).map((variable) => variable.name),
      ['KEEPER_PORT'],
    );
  });

  it('reports each name in the order of the environment, with nothing found after the fact', () => {
    assert.deepEqual(
      unknownVariables(environment(['KEEPER_B', 'HOME', 'KEEPER_A'])).map((variable) => variable.name),
      ['KEEPER_B', 'KEEPER_A'],
    );
    assert.equal(verdict('KEEPER_ZZZZ_QQQQ_XXXX')?.suggestion, null);
    assert.match(describeUnknownVariable(verdict('KEEPER_ZZZZ_QQQQ_XXXX')!, 'sidecar'), /see 'baileys-keeper sidecar --help'/);
  });

  it("is in every command's configuration, and its warning names the variable, never the value", () => {
    const secret = 'hunter2-do-not-print';
    for (const command of ['status', 'sidecar', 'doctor'] as const) {
      const config = loadConfig(command, [], { KEEPER_SESION_ID: secret, KEEPER_SESSION_ID: 'bot-a', HOME: '/root' }, '/srv');
      assert.deepEqual(config.unknownVariables, [
        { name: 'KEEPER_SESION_ID', suggestion: 'KEEPER_SESSION_ID', oneShotFlag: null, bareUnit: null },
      ]);
      const warnings = startWarnings(config);
      assert.deepEqual(
        warnings.map((warning) => warning.message),
        ['KEEPER_SESION_ID is not a setting and is ignored: did you mean KEEPER_SESSION_ID?'],
      );
      assert.doesNotMatch(JSON.stringify(warnings), new RegExp(secret));
    }
  });
});
