// Green means protected (SPEC "Protection"): /metrics, `status` and the lag tell whether what is on disk is
// stored, measured against the directory and the head — a file over the size limit, files or a directory
// the keeper may not read, an event the watcher never delivers — and a quiet directory costs no reads.
import assert from 'node:assert/strict';
import { chmod, chown, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, type Service, startService, storedHead, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { throwawayUser, throwawayUserSkip } from '../support/throwaway-user.js';

const TOKEN = 'protection-token-0123456789abcdef';
const FAST = ['--debounce', '100', '--max-delay', '300'];

interface Reading {
  protected: number;
  lag: number;
  held: { torn: number; unreadable: number; too_large: number };
  failures: number;
  noops: number;
}

async function reading(service: Service): Promise<Reading> {
  const m = await service.metrics();
  const get = (name: string) => {
    const value = m.get(name);
    if (value === undefined) throw new Error(`no ${name} in /metrics`);
    return value;
  };
  return {
    protected: get('baileys_keeper_protected'),
    lag: get('baileys_keeper_backup_lag_seconds'),
    held: {
      torn: get('baileys_keeper_held_back_files{reason="torn"}'),
      unreadable: get('baileys_keeper_held_back_files{reason="unreadable"}'),
      too_large: get('baileys_keeper_held_back_files{reason="too_large"}'),
    },
    failures: get('baileys_keeper_backups_total{result="failure"}'),
    noops: get('baileys_keeper_backups_total{result="noop"}'),
  };
}

/** The session's status as `GET /api/session/status` gives it. */
async function apiStatus(service: Service, sessionId: string): Promise<{ protected: boolean; reasons: string[]; since: string | null }> {
  const response = await fetch(`http://127.0.0.1:${service.port}/api/session/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  // 503 while the schema is being prepared: nothing measured yet.
  if (response.status === 503) return { protected: false, reasons: ['starting'], since: null };
  const body = (await response.json()) as {
    sessions: Array<{ session_id: string; protected: boolean; reasons: string[]; since: string | null }>;
  };
  const session = body.sessions.find((s) => s.session_id === sessionId);
  assert.ok(session, `no ${sessionId} in ${JSON.stringify(body)}`);
  return session;
}

function until<T>(service: Service, probe: () => Promise<T | null>, what: string, timeoutMs = 20_000): Promise<T> {
  return waitFor(probe, timeoutMs, () => `${what}\n${service.output.slice(-30).join('\n')}`, service.exited);
}

/** Waits until the head equals the directory and the keeper says it is protected with no lag. */
async function protectedAndEqual(service: Service, url: string, sessionId: string, dir: string): Promise<void> {
  await until(
    service,
    async () => {
      const now = await reading(service);
      if (now.protected !== 1 || now.lag !== 0) return null;
      return diffTrees(await storedHead(url, sessionId), await readTree(dir)).length === 0 ? true : null;
    },
    'never protected with the head equal to the directory',
  );
}

describe('protection: green only while what is on disk is stored', async () => {
  const url = await freshDatabase('protection');
  const env = cliEnv(url, { KEEPER_API_TOKEN: TOKEN });

  it('a file over the size limit is held back (too_large): protected 0, the lag grows, said once, shown by status', async () => {
    const dir = await tempDir('too-large');
    await writeSession(dir, { preKeys: 3 });
    const service = await startService(['sidecar', '--dir', dir, '--session', 'big', '--interval', '1000', ...FAST], env);
    after(() => service.child.kill('SIGKILL'));
    await protectedAndEqual(service, url, 'big', dir);

    // A bot keeping its message store in the auth directory: a sparse 17 MiB file, over the 16 MiB limit.
    const handle = await open(path.join(dir, 'baileys_store.json'), 'w');
    await handle.truncate(17 * 1024 * 1024);
    await handle.close();
    const first = await until(
      service,
      async () => {
        const now = await reading(service);
        return now.protected === 0 && now.held.too_large === 1 ? now : null;
      },
      'the oversize file never made the session unprotected',
    );
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // two more audits
    const later = await reading(service);
    assert.equal(later.protected, 0);
    assert.ok(later.lag > first.lag, `the lag must grow while the file is not stored: ${first.lag} then ${later.lag}`);
    assert.equal((await storedHead(url, 'big')).has('baileys_store.json'), false);
    const warnings = service.output.filter((line) => line.includes('not stored: baileys_store.json'));
    assert.equal(warnings.length, 1, `one warning for the file and reason, not one per backup:\n${warnings.join('\n')}`);

    const api = await apiStatus(service, 'big');
    assert.deepEqual([api.protected, api.reasons.includes('too_large')], [false, true]);
    assert.ok(api.since && Date.parse(api.since) <= Date.now());
    // `status` in another process shows what the writer recorded.
    const status = await runCli(['status', '--session', 'big', '--json'], { env });
    const recorded = JSON.parse(status.stdout).sessions[0];
    assert.equal(recorded.protected, false, status.stdout);
    assert.ok(recorded.reasons.includes('too_large'), status.stdout);

    await rm(path.join(dir, 'baileys_store.json'));
    await protectedAndEqual(service, url, 'big', dir);
    assert.equal((await apiStatus(service, 'big')).protected, true);
    await service.stop();
    // Nobody watches it now: status says so instead of showing the last green.
    const stopped = JSON.parse((await runCli(['status', '--session', 'big', '--json'], { env })).stdout).sessions[0];
    assert.deepEqual([stopped.protected, stopped.reasons], [false, ['not_watched']]);
    assert.ok(stopped.since && Date.parse(stopped.since) <= Date.now(), `since when nobody watches it: ${stopped.since}`);
  });

  it('a change the watcher never reports is found by the audit within --interval; a quiet directory is not read again', async () => {
    const dir = await tempDir('audit');
    await writeSession(dir, { preKeys: 5 });
    // Polling once an hour: in this test no change is ever reported by the watcher.
    const service = await startService(
      ['sidecar', '--dir', dir, '--session', 'audited', '--watch', 'poll', '--poll-interval', '3600000', '--interval', '1000', ...FAST],
      env,
    );
    after(() => service.child.kill('SIGKILL'));
    await protectedAndEqual(service, url, 'audited', dir);
    await new Promise((resolve) => setTimeout(resolve, 3_500)); // files written just before start are read once more
    const quiet = await reading(service);
    await new Promise((resolve) => setTimeout(resolve, 3_500)); // three more audits of a quiet directory
    const stillQuiet = await reading(service);
    assert.equal(
      stillQuiet.noops,
      quiet.noops,
      'an audit of an unchanged directory reads no file (a full rescan would count a noop each time)',
    );

    await writeFile(path.join(dir, 'session-audit.0.json'), JSON.stringify({ written: 'behind the watcher' }));
    await writeFile(path.join(dir, 'pre-key-1.json'), JSON.stringify({ rewritten: true, pad: 'x'.repeat(40) }));
    await rm(path.join(dir, 'pre-key-2.json'));
    await protectedAndEqual(service, url, 'audited', dir);
    await service.stop();
  });

  it('a login one level below --dir (useMultiFileAuthState of auth_info/<id>): login_elsewhere, said once with the flag to use', async () => {
    const parent = await tempDir('elsewhere');
    await writeSession(path.join(parent, 'mybot'), { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', parent, '--session', 'elsewhere', '--interval', '1000', ...FAST], env);
    after(() => service.child.kill('SIGKILL'));
    await until(
      service,
      async () => {
        const reasons = (await apiStatus(service, 'elsewhere')).reasons;
        return (await reading(service)).protected === 0 && reasons.join() === 'login_elsewhere' ? true : null;
      },
      'a login below --dir never made the session unprotected for login_elsewhere alone',
    );
    await new Promise((resolve) => setTimeout(resolve, 2_200)); // two more audits: still said once
    const advice = service.output.filter((line) => line.includes(`--dir ${path.join(parent, 'mybot')}`));
    assert.equal(advice.length, 1, `said once, naming the directory and the flag:\n${service.output.slice(-10).join('\n')}`);
    await service.stop();
  });

  describe('files and directories the keeper may not read', { skip: throwawayUserSkip }, async () => {
    const user = await throwawayUser(await tempDir('protection-user'));
    const asUser = { uid: user.uid, script: user.script, node: user.node };

    /** An auth directory the bot (root) owns, that the keeper's user can list. */
    async function botDir(label: string): Promise<string> {
      const dir = path.join(user.home, label);
      await writeSession(dir, { preKeys: 4 });
      await chmod(dir, 0o755);
      return dir;
    }

    it('a file written with umask 077 by another user: unreadable, a failure, protected 0; readable again → stored', async () => {
      const dir = await botDir('umask');
      for (const name of (await readTree(dir)).keys()) await chmod(path.join(dir, name), 0o644);
      const service = await startService(['sidecar', '--dir', dir, '--session', 'umask', '--interval', '1000', ...FAST], env, asUser);
      after(() => service.child.kill('SIGKILL'));
      await protectedAndEqual(service, url, 'umask', dir);

      const secret = path.join(dir, 'session-4477.0.json');
      await writeFile(secret, JSON.stringify({ secret: 'session' }), { mode: 0o600 });
      await chown(secret, 0, 0);
      const first = await until(
        service,
        async () => {
          const now = await reading(service);
          return now.protected === 0 && now.held.unreadable === 1 && now.failures > 0 ? now : null;
        },
        'an unreadable file never made the session unprotected',
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const later = await reading(service);
      assert.ok(later.lag > first.lag, `the lag grows: ${first.lag} then ${later.lag}`);
      assert.ok(later.failures >= first.failures);
      assert.deepEqual((await apiStatus(service, 'umask')).reasons.includes('unreadable'), true);
      const warnings = service.output.filter((line) => line.includes('not stored: session-4477.0.json'));
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.equal((await storedHead(url, 'umask')).has('session-4477.0.json'), false);

      await chmod(secret, 0o644); // the operator gives read access: stored within the retry backoff
      await protectedAndEqual(service, url, 'umask', dir);
      await service.stop();
    });

    it('a directory that turns unreadable: protected 0 with the lag growing; readable again → protected', async () => {
      const dir = await botDir('lockedout');
      for (const name of (await readTree(dir)).keys()) await chmod(path.join(dir, name), 0o644);
      const service = await startService(['sidecar', '--dir', dir, '--session', 'lockedout', '--interval', '1000', ...FAST], env, asUser);
      after(() => service.child.kill('SIGKILL'));
      await protectedAndEqual(service, url, 'lockedout', dir);

      await chmod(dir, 0o000);
      after(() => chmod(dir, 0o755).catch(() => undefined));
      const first = await until(
        service,
        async () => {
          const now = await reading(service);
          return now.protected === 0 && now.lag > 0 ? now : null;
        },
        'an unreadable directory never made the session unprotected',
      );
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const later = await reading(service);
      assert.equal(later.protected, 0);
      assert.ok(later.lag > first.lag, `the lag grows: ${first.lag} then ${later.lag}`);
      assert.ok((await apiStatus(service, 'lockedout')).reasons.some((r) => r === 'unreadable' || r === 'not_watched'));

      await chmod(dir, 0o755);
      await writeFile(path.join(dir, 'pre-key-99.json'), JSON.stringify({ back: true }), { mode: 0o644 });
      await protectedAndEqual(service, url, 'lockedout', dir);
      await service.stop();
    });
  });
});
