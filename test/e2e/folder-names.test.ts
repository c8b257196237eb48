// Every folder of a sessions directory that holds a login is kept, whatever its name (docs/many-sessions.md
// "Folder names"): names that are no session id get a mapped id, one-to-one, and `restore --sessions-dir`
// recreates each folder under its original name. Real processes, a real PostgreSQL, the real Baileys writer.
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openAuth, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { sessionIdFor } from '../../src/names.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

/** Loop settings that make a test's waits short: a fast debounce, a short --interval (tombstones follow it). */
const FAST = ['--debounce', '100', '--max-delay', '300', '--interval', '1500', '--lease-ttl', '1500', '--shutdown-quiet', '0'];

/** Folder names platforms use that are no session id, and look-alikes a naive rule would merge. */
const NAMES = [
  'alice',
  'João',
  '+5511987654321',
  '5511987654321@s.whatsapp.net',
  'bot ',
  ' bot',
  'my bot',
  'x'.repeat(150),
  'ü'.repeat(127),
  'cliente «ação» 😀',
  'a b',
  'a_b',
  'Jo_C3_A3o',
  'João'.normalize('NFD'),
  '%41',
  'back\\slash',
];

const idOf = (prefix: string, name: string): string => {
  const id = sessionIdFor(prefix, name);
  assert.ok('sessionId' in id, `${JSON.stringify(name)} is skipped`);
  return id.sessionId;
};

describe('sessions-directory folders whatever their names', async () => {
  const url = await freshDatabase('folders');
  const env = cliEnv(url, { KEEPER_API_TOKEN: 'folders-token' });

  const storedIds = async (prefix: string) =>
    (
      await query<{ session_id: string }>(url, 'SELECT session_id FROM baileys_keeper.sessions WHERE starts_with(session_id, $1)', [prefix])
    ).map((row) => row.session_id);
  /** Every folder's files are stored as its session's head (or the differences). */
  const differences = async (sessionsDir: string, prefix: string, names: readonly string[]) => {
    const problems: string[] = [];
    for (const name of names) {
      const diff = diffTrees(await storedHead(url, idOf(prefix, name)), await readTree(path.join(sessionsDir, name)));
      problems.push(...diff.map((line) => `${JSON.stringify(name)}: ${line}`));
    }
    return problems;
  };
  /** restore --sessions-dir into an empty directory recreates exactly `names`, each with its stored files. */
  const restoresUnderOriginalNames = async (prefix: string, names: readonly string[], code = 0) => {
    const target = path.join(await tempDir('folders-restore'), 'sessions');
    const restored = await runCli(['restore', '--sessions-dir', target, '--session-prefix', prefix], { env });
    assert.equal(restored.code, code, restored.stdout + restored.stderr);
    assert.deepEqual((await readdir(target)).sort(), [...names].sort());
    assert.deepEqual(await differences(target, prefix, names), []);
    return restored;
  };

  it('backup --sessions-dir keeps every folder that holds a login; restore recreates each under its original name', async () => {
    const sessionsDir = await tempDir('folders-backup');
    for (const name of NAMES) await writeSession(path.join(sessionsDir, name), { preKeys: 2 });
    // No login in them: not customers (lost+found sits at the root of every ext4 volume).
    await mkdir(path.join(sessionsDir, 'lost+found'));
    await mkdir(path.join(sessionsDir, 'pending folder'));

    const backup = await runCli(['backup', '--sessions-dir', sessionsDir, '--session-prefix', 't-'], { env });
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    const ids = NAMES.map((name) => idOf('t-', name));
    assert.equal(new Set(ids).size, NAMES.length, 'two folders share a session id');
    assert.deepEqual((await storedIds('t-')).sort(), [...ids].sort());
    assert.deepEqual(await differences(sessionsDir, 't-', NAMES), []);
    assert.ok(ids.includes('t-alice'), 'a folder named like a session id keeps prefix + name');
    assert.match(backup.stderr, /\\"lost\+found\\" holds no login \(creds.json\) yet: nothing to back up/);

    // status names the folder of every mapped id, and only of those.
    const status = JSON.parse((await runCli(['status', '--json'], { env })).stdout) as {
      sessions: { session_id: string; folder?: string }[];
    };
    for (const name of NAMES) {
      const row = status.sessions.find((session) => session.session_id === idOf('t-', name));
      assert.equal(row?.folder, name === 'alice' || name === 'a_b' || name === 'Jo_C3_A3o' ? undefined : name, name);
    }

    // A second backup finds the same sessions (stable ids): nothing changed.
    const again = await runCli(['backup', '--sessions-dir', sessionsDir, '--session-prefix', 't-'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/no changes/g)?.length, NAMES.length, again.stdout);

    await restoresUnderOriginalNames('t-', NAMES);
  });

  it('restore never creates a folder whose name is unsafe, says how to restore that session by hand, and exits 1', async () => {
    const sessionsDir = await tempDir('folders-unsafe');
    await writeSession(path.join(sessionsDir, 'ok'), { preKeys: 1 });
    await writeSession(path.join(sessionsDir, 'tab\there'), { preKeys: 1 });
    await writeSession(path.join(sessionsDir, 'new\nline'), { preKeys: 1 });
    const backup = await runCli(['backup', '--sessions-dir', sessionsDir, '--session-prefix', 'u-'], { env });
    assert.equal(backup.code, 0, backup.stderr);
    // Stored (never lost) …
    assert.deepEqual(await differences(sessionsDir, 'u-', ['tab\there', 'new\nline']), []);
    // … but a name with a control character is never written by restore.
    // The others are restored; the exit code says that not every kept session was (SPEC: the worst code).
    const restored = await restoresUnderOriginalNames('u-', ['ok'], 1);
    assert.match(restored.stdout, /u-\.tab_09here is not restored into the sessions directory: .*not safe to create/);
    assert.match(restored.stdout, /restore it by hand with --session u-\.tab_09here --dir DIR/);
    assert.match(restored.stdout, /2 with no folder name that can be created/);
  });

  it('backup --sessions-dir exits 1 while an entry that holds a login is not kept; 0 once only logins it keeps remain', async () => {
    const outside = await tempDir('folders-outside');
    await writeSession(path.join(outside, 'elsewhere'), { preKeys: 1 });
    const cases: { label: string; make: (dir: string) => Promise<void>; code: number; says?: RegExp }[] = [
      { label: 'a dotted folder with a login', make: (dir) => writeSession(path.join(dir, '.hidden'), { preKeys: 1 }).then(), code: 1 },
      {
        label: 'a folder whose name is not UTF-8, with a login',
        make: async (dir) => {
          await writeSession(path.join(dir, 'tmp-name'), { preKeys: 1 });
          await rename(path.join(dir, 'tmp-name'), Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9])]));
        },
        code: 1,
        says: /its name is not valid UTF-8 \(bytes 636166e9\)/,
      },
      { label: 'a link to a login kept nowhere', make: (dir) => symlink(path.join(outside, 'elsewhere'), path.join(dir, 'link')), code: 1 },
      {
        label: 'a link to a session of the same directory',
        make: (dir) => symlink(path.join(dir, 'kept'), path.join(dir, 'alias')),
        code: 0,
      },
      {
        label: 'a dotted folder and a folder with no login',
        make: (dir) => mkdir(path.join(dir, '.cache')).then(() => mkdir(path.join(dir, 'empty folder'))),
        code: 0,
      },
    ];
    // One login for k-kept in every case: another login under the same session id would be refused.
    const kept = await tempDir('folders-kept-login');
    await writeSession(kept, { preKeys: 1 });
    for (const { label, make, code, says } of cases) {
      const dir = await tempDir('folders-unkept');
      await cp(kept, path.join(dir, 'kept'), { recursive: true });
      await make(dir);
      const backup = await runCli(['backup', '--sessions-dir', dir, '--session-prefix', 'k-'], { env });
      assert.equal(backup.code, code, `${label}: ${backup.stdout}${backup.stderr}`);
      assert.match(backup.stdout, /generation \d+ of session k-kept|no changes: generation \d+ of session k-kept/, label);
      if (code === 1) assert.match(backup.stderr, /1 entry of the sessions directory holds a login that is not backed up/, label);
      if (says) assert.match(backup.stderr, says, label);
    }

    // A prefix too long to leave room for a mapped id: the folder cannot be kept, and backup says so.
    const dir = await tempDir('folders-long-prefix');
    await writeSession(path.join(dir, 'João da Silva'), { preKeys: 1 });
    const prefix = `${'p'.repeat(80)}-`;
    const backup = await runCli(['backup', '--sessions-dir', dir, '--session-prefix', prefix], { env });
    assert.equal(backup.code, 1, backup.stdout + backup.stderr);
    assert.match(backup.stderr, /the prefix is too long to map a name that is no session id/);
  });

  it('a running keeper keeps folders of every name, apart; a renamed folder is a new session; a folder joins when it gets a login', async () => {
    const root = await tempDir('folders-sidecar');
    const sessionsDir = path.join(root, 'sessions');
    await mkdir(sessionsDir);
    const atStart = NAMES.slice(0, 6);
    for (const name of atStart) await writeSession(path.join(sessionsDir, name), { preKeys: 2 });
    await mkdir(path.join(sessionsDir, 'lost+found'));
    const service = await startService(['sidecar', '--sessions-dir', sessionsDir, '--session-prefix', 's-', ...FAST], env);
    const settled = async (names: readonly string[]) => {
      let problems: string[] = [];
      await waitFor(
        async () => {
          problems = await differences(sessionsDir, 's-', names);
          return problems.length === 0 ? true : null;
        },
        20_000,
        () => `${problems.join('\n')}\n${service.output.slice(-10).join('\n')}`,
        service.exited,
      );
    };
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      await settled(atStart);
      // Folders created while it runs, as a platform creates them when a customer scans a QR code.
      const later = NAMES.slice(6);
      for (const name of later) await writeSession(path.join(sessionsDir, name), { preKeys: 2 });
      await settled(NAMES);
      assert.equal(await service.metric('baileys_keeper_sessions'), NAMES.length);
      assert.equal(await service.metric(`baileys_keeper_lease_held{session="${idOf('s-', 'João')}"}`), 1);

      // A folder that is no session id and holds no login yet joins as soon as a login is written in it.
      const late = path.join(sessionsDir, 'late customer');
      await mkdir(late);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.equal(await service.metric('baileys_keeper_sessions'), NAMES.length, 'a folder with no login is no session');
      const auth = await openAuth(late);
      await auth.saveCreds();
      await settled(['late customer']);
      assert.equal(await service.metric('baileys_keeper_sessions'), NAMES.length + 1);

      // A renamed folder is a new session; the old id is recorded as removed after --interval.
      await rename(path.join(sessionsDir, 'my bot'), path.join(sessionsDir, 'my bot (2)'));
      await settled(['my bot (2)']);
      await waitFor(
        async () => {
          const rows = await query<{ reason: string }>(
            url,
            'SELECT reason FROM baileys_keeper.generations WHERE session_id = $1 ORDER BY generation DESC LIMIT 1',
            [idOf('s-', 'my bot')],
          );
          return rows[0]?.reason === 'removed' ? true : null;
        },
        15_000,
        () => 'no tombstone for the renamed folder',
      );

      // A folder whose name is not UTF-8 is skipped with one warning; nothing breaks.
      await writeSession(path.join(root, 'bytes'), { preKeys: 1 });
      await rename(path.join(root, 'bytes'), Buffer.concat([Buffer.from(`${sessionsDir}/caf`), Buffer.from([0xe9])]));
      await waitFor(() => (service.output.some((line) => line.includes('its name is not valid UTF-8')) ? true : null), 10_000);
      assert.equal((await service.get('/healthz')).status, 200);

      // Operators see which folder a mapped id belongs to: in the API and in the loop's log lines.
      const response = await fetch(`http://127.0.0.1:${service.port}/api/session/status`, {
        headers: { authorization: 'Bearer folders-token' },
      });
      const { sessions } = (await response.json()) as { sessions: { session_id: string; folder?: string }[] };
      assert.equal(sessions.find((session) => session.session_id === idOf('s-', 'João'))?.folder, 'João');
      assert.equal(sessions.find((session) => session.session_id === 's-alice')?.folder, undefined);
      assert.ok(
        service.output.some(
          (line) => line.includes(`"session":"${idOf('s-', '+5511987654321')}"`) && line.includes('"folder":"+5511987654321"'),
        ),
      );
      for (const entry of ['lost+found']) {
        const said = service.output.filter((line) => line.includes(`"entry":${JSON.stringify(entry)}`));
        assert.equal(said.length, 1, `${entry}: said ${said.length} times`);
      }
    } finally {
      assert.equal((await service.stop()).code, 0, service.output.slice(-20).join('\n'));
    }

    const kept = [...NAMES.filter((name) => name !== 'my bot'), 'my bot (2)', 'late customer'];
    await restoresUnderOriginalNames('s-', kept);
  });
});
