// Many sessions in one keeper (--sessions-dir) as real processes over a real PostgreSQL, written by the
// real Baileys writer: sessions created, paired, churned and removed while it runs; tombstones; a new pod's
// restore; two keepers on one directory; bad entries in the parent.
import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openAuth, register, sessionRecord, writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { REPO } from '../../harness/paths.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { assertNodeProcessMetrics } from '../support/metrics.js';

const BOT = path.join(REPO, 'build', 'test', 'support', 'mini-bot.js');

/** Loop settings that make a test's waits short: a fast debounce, a short --interval (tombstones follow it). */
const FAST = ['--debounce', '100', '--max-delay', '300', '--interval', '1500', '--lease-ttl', '1500', '--shutdown-quiet', '0'];

describe('many sessions (--sessions-dir)', async () => {
  const url = await freshDatabase('many');
  const env = cliEnv(url);

  const generations = async (session: string) =>
    query<{ generation: string; reason: string; total_files: number }>(
      url,
      'SELECT generation, reason, total_files FROM baileys_keeper.generations WHERE session_id = $1 ORDER BY generation',
      [session],
    );
  /** Waits until every stored head equals its directory (or fails with the differences). */
  const settled = async (sessionsDir: string, sessions: Record<string, string>, timeoutMs = 15_000) => {
    let problems: string[] = [];
    await waitFor(
      async () => {
        problems = [];
        for (const [id, name] of Object.entries(sessions)) {
          const diff = diffTrees(await storedHead(url, id), await readTree(path.join(sessionsDir, name)));
          problems.push(...diff.map((line) => `${id}: ${line}`));
        }
        return problems.length === 0 ? true : null;
      },
      timeoutMs,
      () => problems.join('\n'),
    );
  };

  it('keeps sessions that appear, change and disappear while it runs; skips bad entries with one warning each', async () => {
    const root = await tempDir('many');
    const sessionsDir = path.join(root, 'sessions');
    await mkdir(sessionsDir);
    await writeSession(path.join(sessionsDir, 'alice'), { preKeys: 5 });
    await writeSession(path.join(sessionsDir, 'bob'), { preKeys: 5 });
    await writeSession(path.join(sessionsDir, 'carol'), { preKeys: 5 });
    // What a platform's parent directory also holds: none of it is a session.
    await writeFile(path.join(sessionsDir, 'notes.txt'), 'not a session');
    await symlink(path.join(sessionsDir, 'alice'), path.join(sessionsDir, 'alias'));
    await mkdir(path.join(sessionsDir, 'bad name!')); // no login in it: no session (yet)
    await mkdir(path.join(sessionsDir, '.cache'));

    const service = await startService(['sidecar', '--sessions-dir', sessionsDir, '--session-prefix', 'tenant-', ...FAST], env);
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      await settled(sessionsDir, { 'tenant-alice': 'alice', 'tenant-bob': 'bob', 'tenant-carol': 'carol' });
      assert.equal(await service.metric('baileys_keeper_sessions'), 3);
      // The process metrics describe the process: no session label on them.
      assertNodeProcessMetrics(await service.metrics());
      assert.equal(await service.metric('baileys_keeper_lease_held{session="tenant-bob"}'), 1);
      assert.ok((await service.metric('baileys_keeper_generation{session="tenant-alice"}')) >= 1);
      assert.equal((await service.get('/healthz')).status, 200);

      // A customer scans a QR: a new directory, its creds written, then paired.
      const dave = await openAuth(path.join(sessionsDir, 'dave'));
      await dave.saveCreds();
      await register(dave);
      // Churn in one, a new file in another.
      const bob = await openAuth(path.join(sessionsDir, 'bob'));
      for (let i = 0; i < 20; i++) await bob.state.keys.set({ session: { [`5511${i}.0`]: sessionRecord() } } as never);
      const sessions = { 'tenant-alice': 'alice', 'tenant-bob': 'bob', 'tenant-carol': 'carol', 'tenant-dave': 'dave' };
      await settled(sessionsDir, sessions);
      assert.equal(await service.metric('baileys_keeper_session_registered{session="tenant-dave"}'), 1);

      // Alice's directory goes and comes back within --interval (a re-pair): not a removal.
      await rename(path.join(sessionsDir, 'alice'), path.join(root, 'alice-away'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await rename(path.join(root, 'alice-away'), path.join(sessionsDir, 'alice'));
      // Carol's customer leaves: her directory stays removed.
      await rm(path.join(sessionsDir, 'carol'), { recursive: true });
      await waitFor(
        async () => ((await generations('tenant-carol')).at(-1)?.reason === 'removed' ? true : null),
        15_000,
        () => `no tombstone for tenant-carol:\n${service.output.slice(-20).join('\n')}`,
      );
      const tombstone = (await generations('tenant-carol')).at(-1)!;
      assert.equal(tombstone.total_files, 0);
      assert.ok((await generations('tenant-carol')).length > 1, 'the history before the tombstone is kept');
      await waitFor(async () => ((await service.metrics()).has('baileys_keeper_generation{session="tenant-carol"}') ? null : true), 5_000);
      assert.equal(await service.metric('baileys_keeper_sessions'), 3);
      // Several rescans later, nothing for alice: she was back in time.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.ok(!(await generations('tenant-alice')).some((g) => g.reason === 'removed'), 'alice was back within --interval');
      await settled(sessionsDir, { 'tenant-alice': 'alice', 'tenant-bob': 'bob', 'tenant-dave': 'dave' });

      // Each bad entry was said once, however many rescans there were ('bad name!' holds no login: it waits for one).
      for (const entry of ['notes.txt', 'alias', 'bad name!', '.cache']) {
        const said = service.output.filter((line) => line.includes(`"entry":${JSON.stringify(entry)}`));
        assert.equal(said.length, 1, `${entry}: ${said.length} warnings`);
      }
      const status = JSON.parse((await runCli(['status', '--json'], { env })).stdout) as {
        sessions: { session_id: string; removed: boolean }[];
      };
      // The departed customer is told apart from a session that is not watched: its directory was removed.
      assert.deepEqual(
        status.sessions.filter((s) => s.removed).map((s) => s.session_id),
        ['tenant-carol'],
      );
      const table = (await runCli(['status'], { env })).stdout;
      assert.match(table, /^tenant-carol .* no \(removed \S+\) /m);
    } finally {
      assert.equal((await service.stop()).code, 0, service.output.slice(-20).join('\n'));
    }

    // A new pod: restore --sessions-dir brings back every session but the removed one.
    const fresh = path.join(root, 'new-pod');
    const restored = await runCli(['restore', '--sessions-dir', fresh, '--session-prefix', 'tenant-'], { env });
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    const sessions = { 'tenant-alice': 'alice', 'tenant-bob': 'bob', 'tenant-dave': 'dave' };
    for (const [id, name] of Object.entries(sessions))
      assert.deepEqual(diffTrees(await storedHead(url, id), await readTree(path.join(fresh, name))), [], id);
    await assert.rejects(readTree(path.join(fresh, 'carol')), /ENOENT/, 'a removed session is not restored');
    assert.match(restored.stdout, /3 restored, 0 already logged in, 0 empty, 1 removed/);

    // The removed session can still be brought back from its history.
    // The newest generation with the login: after it come the tombstone and, when a backup ran while rm -r
    // had deleted the files but not yet the folder, the logout it saw.
    const before = (await generations('tenant-carol')).filter((g) => g.reason !== 'removed' && g.reason !== 'logout').at(-1)!;
    const back = await runCli(
      ['restore', '--session', 'tenant-carol', '--dir', path.join(fresh, 'carol'), '--generation', String(before.generation), '--force'],
      { env },
    );
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.ok((await readTree(path.join(fresh, 'carol'))).has('creds.json'));
    // Its tombstone alone restores nothing, and says how to bring it back.
    const plain = await runCli(['restore', '--session', 'tenant-carol', '--dir', path.join(root, 'carol-plain')], { env });
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /was removed \(tombstone generation \d+\).*--generation \d+ --force/);
  });

  it('two keepers on one sessions directory: one writer per session; SIGKILL hands every session to the other', async () => {
    const sessionsDir = await tempDir('many-two');
    const names = ['s1', 's2', 's3', 's4'];
    for (const name of names) await writeSession(path.join(sessionsDir, name), { preKeys: 3 });
    const first = await startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST], env);
    await waitFor(async () => ((await first.get('/readyz')).status === 200 ? true : null), 20_000);
    const second = await startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST], env);
    try {
      await waitFor(async () => ((await second.get('/readyz')).status === 200 ? true : null), 20_000);
      const owners = async () =>
        query<{ session_id: string; lease_owner: string | null }>(
          url,
          `SELECT session_id, lease_owner FROM baileys_keeper.sessions WHERE session_id = ANY($1) AND lease_expires_at > now()`,
          [names],
        );
      const held = await owners();
      assert.equal(held.length, names.length, 'every session has a live writer');
      for (const name of names) {
        const firstHolds = await first.metric(`baileys_keeper_lease_held{session="${name}"}`);
        const secondHolds = await second.metric(`baileys_keeper_lease_held{session="${name}"}`);
        assert.equal(firstHolds + secondHolds, 1, `${name}: exactly one writer`);
      }
      first.child.kill('SIGKILL');
      await first.exited;
      await waitFor(
        async () => {
          for (const name of names) if ((await second.metric(`baileys_keeper_lease_held{session="${name}"}`)) !== 1) return null;
          return true;
        },
        15_000,
        () => 'the second keeper did not take every session over',
      );
      const auth = await openAuth(path.join(sessionsDir, 's2'));
      await auth.state.keys.set({ session: { '5511999.0': sessionRecord() } } as never);
      await settled(sessionsDir, Object.fromEntries(names.map((name) => [name, name])));
    } finally {
      first.child.kill('SIGKILL');
      assert.equal((await second.stop()).code, 0);
    }
  });

  it('run --sessions-dir: restores every session before the platform starts, serves the API, final backup of all after it exits', async () => {
    const source = await tempDir('many-run-source');
    for (const name of ['a', 'b']) await writeSession(path.join(source, name), { preKeys: 3 });
    assert.equal((await runCli(['backup', '--sessions-dir', source, '--session-prefix', 'r-'], { env })).code, 0);
    const sessionsDir = path.join(await tempDir('many-run'), 'sessions');
    // A platform: one process per customer here, each writing through useMultiFileAuthState; c is new.
    const platform = ['a', 'b', 'c']
      .map((name) => `"${process.execPath}" "${BOT}" "${path.join(sessionsDir, name)}" wait-term &`)
      .join(' ');
    const service = await startService(
      ['run', '--sessions-dir', sessionsDir, '--session-prefix', 'r-', ...FAST, '--', 'sh', '-c', `${platform} wait`],
      cliEnv(url, { KEEPER_API_TOKEN: 'many-token' }),
    );
    try {
      await waitFor(() => (service.output.filter((line) => line === 'bot: ready').length === 3 ? true : null), 20_000);
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      assert.match(service.output.join('\n'), /sessions restored: 2 restored, 0 already logged in, 0 empty, 0 removed/);
      await waitFor(async () => ((await service.metrics()).get('baileys_keeper_sessions') === 3 ? true : null), 10_000);
      assert.equal(await service.metric('baileys_keeper_restores_total{session="r-a",result="restored"}'), 1);

      const post = (body: unknown) =>
        fetch(`http://127.0.0.1:${service.port}/api/session/backup`, {
          method: 'POST',
          headers: { authorization: 'Bearer many-token', 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      const unnamed = await post({});
      assert.equal(unnamed.status, 400, 'with many sessions a backup of a watched directory names its session');
      assert.match(((await unnamed.json()) as { error: string }).error, /session_id is required/);
      const named = await post({ session_id: 'r-c' });
      assert.equal(named.status, 200);
      assert.ok(((await named.json()) as { generation: number }).generation >= 1);
      const unknown = await post({ session_id: 'r-zzz' });
      assert.equal(unknown.status, 400);
      assert.match(((await unknown.json()) as { error: string }).error, /has none in the sessions directory/);
      const remove = await fetch(`http://127.0.0.1:${service.port}/api/session/delete?session_id=r-b`, {
        method: 'DELETE',
        headers: { authorization: 'Bearer many-token' },
      });
      assert.equal(remove.status, 409, 'a watched session is not deleted under the keeper');
    } finally {
      const ended = await service.stop();
      assert.notEqual(ended.code, null, service.output.slice(-20).join('\n'));
    }
    // run's own lines name no session (it keeps many, none of them `default`); the bot's pid is its own field.
    const runLines = service.output
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line['component'] === 'run');
    assert.ok(runLines.length > 0, service.output.slice(-20).join('\n'));
    assert.deepEqual(
      runLines.filter((line) => 'session' in line),
      [],
    );
    const started = runLines.find((line) => line['msg'] === 'bot started (its own process group)');
    assert.ok(started && typeof started['botPid'] === 'number' && started['botPid'] !== started['pid'], JSON.stringify(started));
    // Every customer's last write (made while stopping) is in the final backup.
    for (const name of ['a', 'b', 'c']) {
      const dir = await readTree(path.join(sessionsDir, name));
      assert.ok(dir.has('session-5511000000099.0.json'), `${name} wrote its last key`);
      assert.deepEqual(diffTrees(await storedHead(url, `r-${name}`), dir), [], name);
    }
  });

  it('/healthz is 503 while the sessions directory is missing, and 200 once it appears with its sessions', async () => {
    const root = await tempDir('many-late');
    const sessionsDir = path.join(root, 'sessions');
    const service = await startService(['sidecar', '--sessions-dir', sessionsDir, ...FAST], env);
    try {
      const health = await waitFor(async () => {
        const answer = await service.get('/healthz');
        return answer.status === 503 ? answer : null;
      }, 10_000);
      assert.match(JSON.parse(health.text).error, /cannot watch the sessions directory/);
      assert.equal((await service.get('/readyz')).status, 503);
      await mkdir(root, { recursive: true });
      await writeSession(path.join(sessionsDir, 'late'), { preKeys: 2 });
      await waitFor(async () => ((await service.get('/healthz')).status === 200 ? true : null), 20_000);
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      await settled(sessionsDir, { late: 'late' });
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
  });

  it('a sessions directory that is a symbolic link (to a volume) is watched: a new session is picked up at once', async () => {
    const root = await tempDir('many-link');
    const volume = path.join(root, 'volume');
    await mkdir(volume);
    await writeSession(path.join(volume, 'first'), { preKeys: 2 });
    const link = path.join(root, 'sessions');
    await symlink(volume, link);
    // A long --interval: only the watch, not the periodic listing, can pick the new session up in time.
    const slow = FAST.map((value, index) => (FAST[index - 1] === '--interval' ? '600000' : value));
    const service = await startService(['sidecar', '--sessions-dir', link, ...slow], env);
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
      await writeSession(path.join(link, 'second'), { preKeys: 2 });
      await settled(link, { first: 'first', second: 'second' }, 10_000);
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
  });

  it('restore --sessions-dir: the worst exit code of its sessions, the others restored; one-session flags refused; --require-backup', async () => {
    const source = await tempDir('many-restore-source');
    for (const name of ['ok1', 'ok2', 'blocked']) await writeSession(path.join(source, name), { preKeys: 2 });
    assert.equal((await runCli(['backup', '--sessions-dir', source, '--session-prefix', 'x-'], { env })).code, 0);
    const target = await tempDir('many-restore-target');
    // Where session x-blocked would go there is a file: its restore cannot write; the others must not suffer.
    await writeFile(path.join(target, 'blocked'), 'not a directory');
    const restored = await runCli(['restore', '--sessions-dir', target, '--session-prefix', 'x-'], { env });
    assert.equal(restored.code, 1, restored.stdout + restored.stderr);
    assert.match(restored.stdout, /session x-blocked could not be restored/);
    assert.match(restored.stdout, /2 restored, 0 already logged in, 0 empty, 0 removed \(not restored\), 1 failed/);
    for (const name of ['ok1', 'ok2'])
      assert.deepEqual(diffTrees(await storedHead(url, `x-${name}`), await readTree(path.join(target, name))), [], name);

    const dryRun = await runCli(['restore', '--sessions-dir', target, '--dry-run'], { env });
    assert.equal(dryRun.code, 64);
    assert.match(dryRun.stderr, /--dry-run, --generation and --at name one session/);
    const nothing = await runCli(
      ['restore', '--sessions-dir', await tempDir('many-none'), '--session-prefix', 'nobody-', '--require-backup'],
      {
        env,
      },
    );
    assert.equal(nothing.code, 3, nothing.stdout + nothing.stderr);
    assert.match(nothing.stdout + nothing.stderr, /no stored session has the prefix \\?"nobody-\\?"; --require-backup was given/);
  });

  it('backup --sessions-dir backs up every session once; the one-session settings are refused with it', async () => {
    const sessionsDir = await tempDir('many-backup');
    await writeSession(path.join(sessionsDir, 'one'), { preKeys: 2 });
    await writeSession(path.join(sessionsDir, 'two'), { preKeys: 2 });
    await writeFile(path.join(sessionsDir, 'stray.json'), '{}');
    const result = await runCli(['backup', '--sessions-dir', sessionsDir, '--session-prefix', 'b-'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /generation 1 of session b-one/);
    assert.match(result.stdout, /generation 1 of session b-two/);
    assert.match(result.stderr, /skipped \\"stray.json\\" in the sessions directory: it is not a directory/);
    await settled(sessionsDir, { 'b-one': 'one', 'b-two': 'two' }, 1_000);
    const doctor = await runCli(['doctor', '--sessions-dir', sessionsDir, '--session-prefix', 'b-'], { env });
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /stored file versions of all 2 stored sessions with the prefix verified/);
    assert.match(doctor.stdout, /lease: 0 of 2 sessions held/);

    const clash = await runCli(['sidecar', '--sessions-dir', sessionsDir, '--dir', sessionsDir], { env });
    assert.equal(clash.code, 64);
    assert.match(clash.stderr, /give either --sessions-dir or --dir\/--session/);
    const prefixAlone = await runCli(['backup', '--session-prefix', 'x-'], { env });
    assert.equal(prefixAlone.code, 64);
    assert.match(prefixAlone.stderr, /--session-prefix only applies with --sessions-dir/);
    const badPrefix = await runCli(['backup', '--sessions-dir', sessionsDir, '--session-prefix', 'a/b'], { env });
    assert.equal(badPrefix.code, 64);
    assert.match(badPrefix.stderr, /invalid --session-prefix/);
  });
});
