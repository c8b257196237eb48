// What the environment means to the keeper, as an operator who configures an image by it meets it: a
// misspelled KEEPER_* variable is named once with the one it meant (never its value); a command that acts on
// one session's login without a session id says which id it uses and why to set one (doctor shows both as
// warn lines); --require-backup has its variable, and a one-shot flag guessed as one is said and not obeyed.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const IMPLICIT = /no session id given \(--session \/ KEEPER_SESSION_ID\): using "default"\. .*set KEEPER_SESSION_ID to a name for this bot/;
const count = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).length;

describe('what the environment means to the keeper', async () => {
  const url = await freshDatabase('environment');
  const env = cliEnv(url);
  const bot = await tempDir('environment');
  await writeSession(bot, { preKeys: 2 });

  it('refuses to act on the default session when a misspelled variable was meant to choose it (two bots swap logins)', async () => {
    const secret = 'hunter2-not-to-be-printed';
    const target = path.join(await tempDir('environment-typo'), 'auth_info');
    const typos = [
      ['KEEPER_SESION_ID', 'KEEPER_SESSION_ID'],
      ['keeper_session_id', 'KEEPER_SESSION_ID'],
      ['KEEPER_SESSIONS_DIRS', 'KEEPER_SESSIONS_DIR'],
    ];
    for (const [typo, meant] of typos) {
      for (const args of [
        ['backup', '--dir', bot],
        ['restore', '--dir', target],
        ['sidecar', '--dir', bot],
      ]) {
        const result = await runCli(args, { env: { ...env, [typo!]: secret, KEEPER_DEBOUNCE: '1s' } });
        assert.equal(result.code, 64, `${typo} ${args[0]}: ${result.stdout}${result.stderr}`);
        assert.match(
          result.stderr,
          new RegExp(
            `${typo} is not a setting \\(did you mean ${meant}\\?\\) and no session id is given: ${args[0]} would act on the session "default"`,
          ),
        );
        assert.doesNotMatch(result.stdout + result.stderr, new RegExp(secret));
      }
    }
    assert.equal((await runCli(['status', '--session', 'default'], { env })).code, 3, 'nothing was stored for the default session');
    // With the session given, the same typo is a warning, said once, as is every other unknown variable.
    const given = await runCli(['backup', '--dir', bot, '--session', 'given'], {
      env: { ...env, KEEPER_SESION_ID: secret, KEEPER_DEBOUNCE: '1s' },
    });
    assert.equal(given.code, 0, given.stderr);
    const said = messages(given.stderr);
    assert.equal(count(said, /KEEPER_SESION_ID is not a setting and is ignored: did you mean KEEPER_SESSION_ID\?/), 1, said);
    assert.equal(count(said, /KEEPER_DEBOUNCE is not a setting and is ignored: did you mean KEEPER_DEBOUNCE_MS\?/), 1, said);
    assert.doesNotMatch(given.stdout + given.stderr, new RegExp(secret));
  });

  it('says, once, which session id a login goes to when none was given: restore, backup, import, run', async () => {
    assert.equal((await runCli(['backup', '--dir', bot], { env })).code, 0);
    const archive = await runCli(['export'], { env });
    assert.equal(archive.code, 0, archive.stderr);
    const target = path.join(await tempDir('environment-restore'), 'auth_info');
    const runDir = path.join(await tempDir('environment-run'), 'auth_info');
    for (const [args, input] of [
      [['restore', '--dir', target]],
      [['backup', '--dir', bot]],
      [['import'], archive.stdoutBytes],
      [['run', '--dir', runDir, '--listen', '127.0.0.1:0', '--shutdown-quiet', '0s', '--', process.execPath, '-e', '']],
    ] as Array<[string[], Buffer?]>) {
      const result = await runCli(args, { env, ...(input ? { input } : {}) });
      assert.equal(result.code, 0, `${args[0]}: ${result.stdout}${result.stderr}`);
      assert.equal(count(messages(result.stdout + result.stderr), IMPLICIT), 1, `${args[0]}: ${result.stdout}${result.stderr}`);
    }
  });

  it('says nothing of it when an id was given, with --sessions-dir, or for a command that writes no login', async () => {
    const sessions = await tempDir('environment-many');
    for (const [args, extra] of [
      [['backup', '--dir', bot, '--session', 'given']],
      [['backup', '--dir', bot], { KEEPER_SESSION_ID: 'from-env' }],
      [['backup', '--sessions-dir', sessions]],
      [['status']],
      [['history']],
    ] as Array<[string[], Record<string, string>?]>) {
      const result = await runCli(args, { env: { ...env, ...extra } });
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.doesNotMatch(result.stdout + result.stderr, /no session id given/, args.join(' '));
    }
  });

  it('doctor: a warn line for each, a failure for a misspelled session variable, none once the name is right', async () => {
    const warned = await runCli(['doctor', '--dir', bot], { env: { ...env, KEEPER_SESION_ID: 'bot-a' } });
    assert.equal(warned.code, 1, warned.stdout + warned.stderr);
    const lines = warned.stdout.split('\n');
    assert.ok(
      lines.some((line) => line.startsWith('FAIL  session id: KEEPER_SESION_ID is not a setting (did you mean KEEPER_SESSION_ID?)')),
      warned.stdout,
    );
    assert.ok(
      lines.includes('WARN  environment: KEEPER_SESION_ID is not a setting and is ignored: did you mean KEEPER_SESSION_ID?'),
      warned.stdout,
    );
    assert.ok(
      lines.some((line) => line.startsWith('WARN  session id: ') && IMPLICIT.test(line)),
      warned.stdout,
    );
    assert.equal(warned.stderr, '', 'doctor reports them itself, not in its log as well');
    const other = await runCli(['doctor', '--dir', bot], { env: { ...env, KEEPER_DEBOUNCE: '1s' } });
    assert.equal(other.code, 0, 'another unknown variable is a warning only');
    const json = await runCli(['doctor', '--dir', bot, '--json'], { env });
    const { checks } = JSON.parse(json.stdout) as { checks: Array<{ check: string; status: string }> };
    assert.deepEqual(checks[0], { ...checks[0], check: 'session id', status: 'warn' });
    const clean = await runCli(['doctor', '--dir', bot], { env: { ...env, KEEPER_SESSION_ID: 'default' } });
    assert.equal(clean.code, 0, clean.stdout);
    assert.doesNotMatch(clean.stdout, /^WARN {2}(session id|environment)/m);
  });

  it('KEEPER_REQUIRE_BACKUP: restore exits 3 when there is nothing to restore, as with --require-backup', async () => {
    const dir = path.join(await tempDir('environment-require-backup'), 'auth_info');
    const result = await runCli(['restore', '--dir', dir, '--session', 'never-stored'], { env: { ...env, KEEPER_REQUIRE_BACKUP: 'true' } });
    assert.equal(result.code, 3, result.stdout + result.stderr);
    const without = await runCli(['restore', '--dir', dir, '--session', 'never-stored'], { env });
    assert.equal(without.code, 0, without.stdout + without.stderr);
  });

  it('a one-shot flag guessed as a variable (KEEPER_FORCE) is said to be one, and does not overwrite the login', async () => {
    const result = await runCli(['restore', '--dir', bot, '--session', 'given'], { env: { ...env, KEEPER_FORCE: '1' } });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const said = messages(result.stdout);
    assert.equal(count(said, /KEEPER_FORCE is not a setting and is ignored: --force is a one-shot flag/), 1, said);
    assert.match(said, /already holds a valid creds\.json: nothing to restore/);
  });

  it("never hands the test suite's own KEEPER_TEST_* switches to a keeper it starts", async () => {
    const result = await runCli(['status'], { env: { ...env, KEEPER_TEST_KEEP_DB: '1' } });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /KEEPER_TEST_KEEP_DB/);
  });
});
