// `doctor`: one line per check, exit 0 when all hold, and each failure named with what to do — a
// directory that is a file, a key that does not open the stored rows, an unreachable database (exit 2,
// the local checks still said), a clock off the database's (libfaketime); a symlinked directory is
// tried where it points.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find(
  (file) => existsSync(file),
);

/** The doctor's lines by check name: "OK", "WARN" or "FAIL" and the detail. */
function lines(stdout: string): Map<string, { status: string; detail: string }> {
  const found = new Map<string, { status: string; detail: string }>();
  for (const line of stdout.trim().split('\n')) {
    const match = /^(OK|WARN|FAIL) +([a-z ]+): (.*)$/.exec(line);
    assert.ok(match, `a line of the doctor's: ${line}`);
    found.set(match[2]!, { status: match[1]!, detail: match[3]! });
  }
  return found;
}

describe('doctor', async () => {
  const url = await freshDatabase('doctor');
  const key = randomBytes(32).toString('base64');
  const env = cliEnv(url, { KEEPER_SESSION_ID: 'doc', KEEPER_ENCRYPTION_KEY: key });
  const dir = await tempDir('doctor');
  await writeSession(dir, { preKeys: 3 });
  assert.equal((await runCli(['backup', '--dir', dir], { env })).code, 0);

  it('says every check holds, and exits 0, on a sound setup', async () => {
    const result = await runCli(['doctor', '--dir', dir], { env });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const found = lines(result.stdout);
    assert.deepEqual(
      [...found.keys()],
      ['auth directory', 'login', 'file access', 'watching', 'database', 'schema', 'privileges', 'stored rows', 'lease', 'clock'],
    );
    for (const [check, { status }] of found) assert.equal(status, 'OK', check);
    assert.match(found.get('stored rows')!.detail, /stored file versions of session doc verified, readable with key id fp-/);
    assert.match(found.get('schema')!.detail, /^version \d+, current$/);
  });

  it("a new bot's first start on a database that holds other sessions: no backup yet, every check run, exit 0", async () => {
    const fresh = await tempDir('doctor-new-bot');
    await writeSession(fresh, { preKeys: 2 });
    const result = await runCli(['doctor', '--dir', fresh], { env: { ...env, KEEPER_SESSION_ID: 'new-bot' } });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const found = lines(result.stdout);
    assert.deepEqual(found.get('stored rows'), { status: 'OK', detail: 'session new-bot: no backup yet' });
    for (const check of ['schema', 'privileges', 'lease', 'clock'])
      assert.equal(found.get(check)?.status, 'OK', `${check}: ${result.stdout}`);
  });

  it('a symlinked --dir: native watching is tried where the link points, as the sidecar watches it', async () => {
    const link = path.join(await tempDir('doctor-link'), 'auth_info');
    await symlink(dir, link);
    const result = await runCli(['doctor', '--dir', link, '--watch', 'native'], { env });
    assert.deepEqual(lines(result.stdout).get('watching')?.status, 'OK', result.stdout);
  });

  it('names a directory that is a file and a key that does not open the stored rows, and exits 1', async () => {
    const file = path.join(await tempDir('doctor-file'), 'auth_info');
    await writeFile(file, 'not a directory');
    const other = randomBytes(32).toString('base64');
    const result = await runCli(['doctor', '--dir', file], { env: { ...env, KEEPER_ENCRYPTION_KEY: other } });
    assert.equal(result.code, 1, result.stdout);
    const found = lines(result.stdout);
    assert.deepEqual(found.get('auth directory'), { status: 'FAIL', detail: `${file} is not a directory` });
    assert.equal(found.get('stored rows')?.status, 'FAIL');
    assert.match(found.get('stored rows')!.detail, /need key id fp-\S+, which is not configured/);
    assert.equal(found.get('database')?.status, 'OK', 'the other checks still ran');
  });

  it('exits 2 for an unreachable database, after saying the local checks', async () => {
    const result = await runCli(['doctor', '--dir', dir, '--json'], { env: { ...env, DATABASE_URL: 'postgres://keeper@127.0.0.1:1/app' } });
    assert.equal(result.code, 2);
    const { checks } = JSON.parse(result.stdout) as { checks: Array<{ check: string; status: string; detail: string }> };
    assert.deepEqual(
      checks.map((check) => [check.check, check.status]),
      [
        ['auth directory', 'ok'],
        ['login', 'ok'],
        ['file access', 'ok'],
        ['watching', 'ok'],
        ['database', 'fail'],
      ],
    );
    assert.match(checks[4]!.detail, /cannot reach PostgreSQL at postgres:\/\/keeper@127\.0\.0\.1:1\/app/);
  });

  it('fails a clock a minute off the database', {
    skip: LIBFAKETIME ? false : 'needs libfaketime (apt-get install faketime)',
  }, async () => {
    const result = await runCli(['doctor', '--dir', dir], { env: { ...env, LD_PRELOAD: LIBFAKETIME, FAKETIME: '+60s' } });
    assert.equal(result.code, 1, result.stdout);
    const clock = lines(result.stdout).get('clock');
    assert.equal(clock?.status, 'FAIL');
    assert.match(clock!.detail, /this machine's clock is off the database's by -(59|60)\.\d{3} s/);
  });
});
