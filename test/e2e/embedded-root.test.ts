// The embedded PostgreSQL started by root: PostgreSQL refuses to run as root, so the server runs as an
// account that already exists (the cluster's owner, else the first of postgres, nobody), says so, and
// never adds an account to the system.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, chown, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { startEmbedded } from '../../src/embedded-postgres.js';
import { DatabaseUnreachableError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';

const asRoot = process.getuid?.() === 0;
const MISSING = 'bk-no-such-account';

/** A logger whose lines are kept, and the lines' messages. */
function recordingLog() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

/** The accounts and groups of the system, to show that none was added. */
async function accounts(): Promise<string> {
  return `${await readFile('/etc/passwd', 'utf8')}\n${await readFile('/etc/group', 'utf8')}`;
}

function uidOf(name: string): number {
  const result = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  assert.equal(result.status, 0, `no account ${name}`);
  return Number(result.stdout.trim());
}

/** The real uid a process runs as (/proc/PID/status). */
async function processUid(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
}

async function dataDir(label: string): Promise<string> {
  const dir = await tempDir(label);
  await chmod(dir, 0o755); // the server's account must reach it
  return dir;
}

describe('the embedded PostgreSQL started by root', { skip: asRoot ? false : 'needs root' }, () => {
  it('runs as the first of its accounts that exists, says so, and creates none', async () => {
    const before = await accounts();
    const dir = await dataDir('embedded-root');
    const { log, messages } = recordingLog();
    const server = await startEmbedded(dir, log, { serverUsers: [MISSING, 'nobody'] });
    try {
      assert.equal(await processUid(server.pid), uidOf('nobody'), 'the postmaster runs as nobody');
      assert.equal((await stat(path.join(dir, 'pg'))).uid, uidOf('nobody'), 'the cluster belongs to nobody');
      const said = messages().find((message) => message.startsWith('started as root'));
      assert.ok(said, messages().join('\n'));
      assert.match(said, /runs as user 'nobody' \(uid \d+; the first of bk-no-such-account, nobody that exists\)/);
      assert.match(said, /PostgreSQL refuses to run as root/);
      assert.match(said, /no account is created/);
    } finally {
      await server.stop();
    }
    assert.equal(await accounts(), before, 'no account or group was added');

    // Started again with the default accounts (postgres first), it runs as the cluster's owner: the
    // only account PostgreSQL accepts for it.
    const again = recordingLog();
    const restarted = await startEmbedded(dir, again.log);
    try {
      assert.equal(await processUid(restarted.pid), uidOf('nobody'));
      assert.ok(
        again.messages().some((message) => /runs as user 'nobody' .*the owner of the existing cluster/.test(message)),
        again.messages().join('\n'),
      );
    } finally {
      await restarted.stop();
    }
  });

  it('refuses, exit 2 and what to do, when none of its accounts exists, and adds none', async () => {
    const before = await accounts();
    const dir = await dataDir('embedded-root-none');
    const started = startEmbedded(dir, pino({ level: 'silent' }), { serverUsers: [MISSING] });
    await assert.rejects(started, (error: Error) => {
      assert.ok(error instanceof DatabaseUnreachableError, String(error));
      assert.match(error.message, /none of bk-no-such-account exists; the keeper creates no account/);
      assert.match(error.message, /run it as a regular user, create one of those accounts, or set DATABASE_URL/);
      return true;
    });
    assert.equal(await accounts(), before, 'no account or group was added');
  });

  it('refuses a cluster that belongs to root, saying what to do', async () => {
    const dir = await dataDir('embedded-root-owned');
    await (await startEmbedded(dir, pino({ level: 'silent' }))).stop();
    await chown(path.join(dir, 'pg'), 0, 0);
    await assert.rejects(startEmbedded(dir, pino({ level: 'silent' })), (error: Error) => {
      assert.ok(error instanceof DatabaseUnreachableError, String(error));
      assert.match(error.message, /cluster .* belongs to root, and PostgreSQL refuses to run as root: remove that directory/);
      return true;
    });
  });
});
