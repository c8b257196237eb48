// Mistakes `backup` and `doctor` can see instead of reporting green (SPEC "Protection"): a login below
// --dir, files the keeper may not read (run as a throwaway uid against root's 0600 files), a file over the
// size limit. Each exits non-zero and says what to do; a torn file keeps its old behaviour (exit 0).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { storedHead } from '../../harness/sidecar.js';
import { MAX_FILE_BYTES } from '../../src/snapshot.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { openToAll, otherUser } from '../support/other-user.js';
import { throwawayUser } from '../support/throwaway-user.js';

const SMALL = { preKeys: 2, sessions: 1, senderKeys: 0, appStateKeys: 0 };

/** The doctor's line for `check`: status and detail. */
function doctorLine(stdout: string, check: string): { status: string; detail: string } | undefined {
  for (const line of stdout.trim().split('\n')) {
    const match = /^(OK|WARN|FAIL) +([a-z ]+): (.*)$/.exec(line);
    if (match?.[2] === check) return { status: match[1]!, detail: match[3]! };
  }
  return undefined;
}

/** How many times `text` occurs in `haystack`. */
const count = (haystack: string, text: string) => haystack.split(text).length - 1;

describe('a login below --dir', async () => {
  const url = await freshDatabase('login_below');
  const env = cliEnv(url);
  const sessionRows = async (session: string) =>
    (await query(url, 'SELECT 1 FROM baileys_keeper.sessions WHERE session_id = $1', [session]).catch(() => [])).length;

  for (const relative of ['mybot', 'bots/mybot', 'a/b/mybot']) {
    it(`backup exits 1 and names --dir …/${relative}; doctor fails the same way`, async () => {
      const dir = path.join(await tempDir('below'), 'auth_info');
      await writeSession(path.join(dir, relative), SMALL);
      const session = `below-${relative.replaceAll('/', '-')}`;
      const backup = await runCli(['backup', '--dir', dir, '--session', session], { env });
      assert.equal(backup.code, 1, backup.stdout + backup.stderr);
      assert.match(messages(backup.stderr), new RegExp(`holds a Baileys login.*--dir ${path.join(dir, relative)} \\(KEEPER_DIR\\)`));
      assert.doesNotMatch(backup.stdout, /no changes/);
      assert.equal(await sessionRows(session), 0, 'nothing was stored for the empty directory');

      const doctor = await runCli(['doctor', '--dir', dir, '--session', session], { env });
      assert.equal(doctor.code, 1, doctor.stdout);
      const line = doctorLine(doctor.stdout, 'login');
      assert.equal(line?.status, 'FAIL', doctor.stdout);
      assert.match(line!.detail, new RegExp(`--dir ${path.join(dir, relative)} `));
    });
  }

  it('several logins: backup and doctor name --sessions-dir', async () => {
    const dir = path.join(await tempDir('below-many'), 'auth_info');
    await writeSession(path.join(dir, 'shop-1'), SMALL);
    await writeSession(path.join(dir, 'shop-2'), SMALL);
    const backup = await runCli(['backup', '--dir', dir, '--session', 'below-many'], { env });
    assert.equal(backup.code, 1);
    assert.match(messages(backup.stderr), new RegExp(`2 directories below it hold Baileys logins .*--sessions-dir ${dir} `));
    const doctor = await runCli(['doctor', '--dir', dir, '--session', 'below-many'], { env });
    assert.equal(doctor.code, 1);
    assert.match(doctorLine(doctor.stdout, 'login')!.detail, new RegExp(`--sessions-dir ${dir} `));
  });

  it('four levels down is not searched (the documented bound); a login in --dir itself is backed up as ever', async () => {
    const deep = path.join(await tempDir('below-deep'), 'auth_info');
    await mkdir(deep);
    await writeSession(path.join(deep, 'a', 'b', 'c', 'mybot'), SMALL);
    const backup = await runCli(['backup', '--dir', deep, '--session', 'below-deep'], { env });
    assert.equal(backup.code, 0, backup.stderr);

    const own = path.join(await tempDir('own'), 'auth_info');
    await writeSession(own, SMALL);
    await writeSession(path.join(own, 'old-copy'), SMALL);
    const ok = await runCli(['backup', '--dir', own, '--session', 'own'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    const doctor = await runCli(['doctor', '--dir', own, '--session', 'own'], { env });
    assert.equal(doctorLine(doctor.stdout, 'login')?.status, 'OK', doctor.stdout);
  });
});

describe('files held back: over the size limit, torn', async () => {
  const url = await freshDatabase('held_back');
  const env = cliEnv(url);

  it('a file over the 16 MiB limit: stored without it, named once, exit 1', async () => {
    const dir = await tempDir('too-large');
    await writeSession(dir, SMALL);
    // Sparse: 17 MiB on paper, no disk used.
    execFileSync('truncate', ['-s', `${MAX_FILE_BYTES + 1024 * 1024}`, path.join(dir, 'baileys_store.json')]);
    const result = await runCli(['backup', '--dir', dir, '--session', 'too-large'], { env });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const said = messages(result.stderr);
    assert.equal(count(said, 'not stored: baileys_store.json: the file is 17825792 bytes, over the 16777216-byte limit'), 1, said);
    assert.match(said, /1 file was not stored .*move files over 16777216 bytes out of the auth directory/);
    assert.match(result.stdout, /generation 1 of session too-large: .*1 not stored/);
    const head = await storedHead(url, 'too-large');
    assert.ok(head.has('creds.json') && !head.has('baileys_store.json'));
  });

  it('a torn file keeps its behaviour: held, the stored version kept, exit 0', async () => {
    const dir = await tempDir('torn');
    await writeSession(dir, SMALL);
    await writeFile(path.join(dir, 'pre-key-99.json'), '{"private":');
    const result = await runCli(['backup', '--dir', dir, '--session', 'torn', '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(messages(result.stderr), /not stored: pre-key-99\.json: the file is not valid JSON/);
    const json = JSON.parse(result.stdout) as { held: number; held_back: unknown[] };
    assert.equal(json.held, 1);
    assert.deepEqual(json.held_back, []);
  });
});

const user = otherUser();
describe('files the keeper may not read (the keeper as another uid than the bot)', {
  skip: 'skip' in user ? user.skip : false,
}, async () => {
  const { uid, gid } = user as { uid: number; gid: number };
  // The CLI as that user: the bundle and a node it can run, copied where it can read them (the checkout
  // itself may be private to root, as a fresh mktemp -d clone is).
  const { script, node } = await throwawayUser(await tempDir('unreadable-keeper'));
  const url = await freshDatabase('unreadable');
  const env = cliEnv(url);

  /** An auth directory the keeper's uid owns, with the bot's (root's) files in it, some mode 0600. */
  async function botDirectory(label: string, closed: string[]): Promise<string> {
    const home = await tempDir(label);
    await openToAll(home);
    const dir = path.join(home, 'auth_info');
    await writeSession(dir, SMALL);
    await chown(dir, uid, gid);
    for (const name of closed) await chmod(path.join(dir, name), 0o600);
    return dir;
  }

  it('backup names each file it may not read once, stores the rest, and exits 1', async () => {
    const dir = await botDirectory('unreadable-backup', ['creds.json', 'pre-key-1.json']);
    const result = await runCli(['backup', '--dir', dir, '--session', 'unreadable', '--json'], { env, uid, gid, script, node });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const said = messages(result.stderr);
    for (const name of ['creds.json', 'pre-key-1.json']) assert.equal(count(said, `not stored: ${name}: cannot open (EACCES)`), 1, said);
    assert.match(said, new RegExp(`2 files were not stored .*make the files readable by uid ${uid}`));
    const json = JSON.parse(result.stdout) as { held_back: { file: string; reason: string }[] };
    assert.deepEqual(
      json.held_back.sort((a, b) => a.file.localeCompare(b.file)),
      [
        { file: 'creds.json', reason: 'unreadable' },
        { file: 'pre-key-1.json', reason: 'unreadable' },
      ],
    );
    const head = await storedHead(url, 'unreadable');
    assert.ok(head.has('pre-key-2.json') && !head.has('creds.json'), 'what it could read is stored');
  });

  it('doctor lists them with owner and mode, and says who must be able to read them', async () => {
    const dir = await botDirectory('unreadable-doctor', ['creds.json']);
    const result = await runCli(['doctor', '--dir', dir, '--session', 'unreadable-doctor'], { env, uid, gid, script, node });
    assert.equal(result.code, 1, result.stdout);
    const line = doctorLine(result.stdout, 'file access');
    assert.equal(line?.status, 'FAIL', result.stdout);
    assert.match(line!.detail, new RegExp(`^uid ${uid} \\(groups [^)]*\\) cannot read 1 of what it must back up: `));
    assert.match(line!.detail, new RegExp(`${path.join(dir, 'creds.json')} \\(owner 0:0, mode 0600\\)`));
    assert.match(line!.detail, /Run the keeper as the bot's user \(uid 0\).*securityContext\.fsGroup.*umask 027/);
    assert.equal(doctorLine(result.stdout, 'auth directory')?.status, 'OK', "the directory itself is the keeper's and writable");

    // The same files readable by all: the check holds.
    await chmod(path.join(dir, 'creds.json'), 0o644);
    const fixed = await runCli(['doctor', '--dir', dir, '--session', 'unreadable-doctor'], { env, uid, gid, script, node });
    assert.equal(doctorLine(fixed.stdout, 'file access')?.status, 'OK', fixed.stdout);
  });

  it('doctor --sessions-dir: a session directory it may not enter is named', async () => {
    const home = await tempDir('unreadable-sessions');
    await openToAll(home);
    const sessions = path.join(home, 'sessions');
    await writeSession(path.join(sessions, 'open'), SMALL);
    await writeSession(path.join(sessions, 'closed'), SMALL);
    await chown(sessions, uid, gid);
    await chmod(path.join(sessions, 'closed'), 0o700);
    const result = await runCli(['doctor', '--sessions-dir', sessions], { env, uid, gid, script, node });
    assert.equal(result.code, 1, result.stdout);
    const line = doctorLine(result.stdout, 'file access');
    assert.equal(line?.status, 'FAIL', result.stdout);
    assert.match(
      line!.detail,
      new RegExp(`cannot read 1 of what it must back up: ${path.join(sessions, 'closed')} \\(owner 0:0, mode 0700\\)\\.`),
    );
  });
});
