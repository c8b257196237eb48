import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BufferJSON, initAuthCreds } from '@whiskeysockets/baileys';
import { UsageError } from '../../src/errors.js';
import { readSnapshot, TORN_RETRY_DELAYS_MS } from '../../src/snapshot.js';
import { tempDir } from '../support/fs.js';
import { ManualClock } from '../support/manual-clock.js';

const creds = () => JSON.stringify(initAuthCreds(), BufferJSON.replacer);

/** Resolves once `clock` has a timer set (the reader pauses on it); fails when none comes within a few seconds. */
async function pausedOn(clock: ManualClock): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (clock.pending === 0) {
    if (Date.now() > deadline) assert.fail('the reader did not pause on the clock it was given');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('snapshot', () => {
  it('reads regular files and skips links, sub-directories, FIFOs, sockets, dotfiles and *.tmp', async () => {
    const dir = await tempDir('snap');
    const outside = await tempDir('outside');
    await writeFile(path.join(dir, 'creds.json'), creds());
    await writeFile(path.join(dir, 'pre-key-1.json'), '{"a":1}');
    await writeFile(path.join(outside, 'secret.json'), '{"secret":true}');
    await symlink(path.join(outside, 'secret.json'), path.join(dir, 'session-link.json'));
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'pre-key-2.json'), '{}');
    execFileSync('mkfifo', [path.join(dir, 'fifo.json')]);
    const server = net.createServer().listen(path.join(dir, 'sock.json'));
    await new Promise((resolve) => server.once('listening', resolve));
    await writeFile(path.join(dir, '.hidden.json'), '{}');
    await writeFile(path.join(dir, 'pre-key-3.json.tmp'), '{}');
    try {
      const snapshot = await readSnapshot(dir);
      assert.deepEqual([...snapshot.files.keys()].sort(), ['creds.json', 'pre-key-1.json']);
      assert.equal(snapshot.held.size, 0);
    } finally {
      server.close();
    }
  });

  it('re-reads a torn file and stores it once the writer has finished', async () => {
    const dir = await tempDir('snap');
    const file = path.join(dir, 'creds.json');
    const full = creds();
    await writeFile(file, full.slice(0, 40)); // what a reader sees in the middle of Baileys' writeFile
    const clock = new ManualClock();
    const reading = readSnapshot(dir, { clock });
    await pausedOn(clock);
    assert.equal(clock.next()! - clock.now(), TORN_RETRY_DELAYS_MS[0], 'the first pause, on the given clock');
    await writeFile(file, full); // the writer finishes during the pause
    await clock.advance(TORN_RETRY_DELAYS_MS[0]!);
    const snapshot = await reading;
    assert.equal(clock.pending, 0, 'no second pause');
    assert.equal(snapshot.files.get('creds.json')?.content.toString(), full);
    assert.equal(snapshot.held.size, 0);
  });

  it('holds a file that stays torn after every retry', async () => {
    const dir = await tempDir('snap');
    await writeFile(path.join(dir, 'creds.json'), '');
    await writeFile(path.join(dir, 'session-1.0.json'), '{"half":');
    const clock = new ManualClock();
    const started = clock.now();
    const snapshot = await clock.runUntilSettled(readSnapshot(dir, { retryDelaysMs: [1_000, 2_000, 3_000], clock }));
    assert.equal(clock.now() - started, 6_000, 'every pause taken, on the given clock');
    assert.equal(snapshot.files.size, 0);
    assert.deepEqual(snapshot.held.get('creds.json'), { reason: 'the file is empty', kind: 'torn', torn: true });
    assert.equal(snapshot.held.get('session-1.0.json')?.torn, true);
  });

  it('holds an oversize file without counting it as torn', async () => {
    const dir = await tempDir('snap');
    await writeFile(path.join(dir, 'big.json'), JSON.stringify({ data: 'x'.repeat(2000) }));
    const snapshot = await readSnapshot(dir, { maxFileBytes: 1000, retryDelaysMs: [] });
    assert.equal(snapshot.held.get('big.json')?.torn, false);
    assert.equal(snapshot.held.get('big.json')?.kind, 'too_large');
    assert.match(snapshot.held.get('big.json')!.reason, /limit/);
  });

  it('says clearly when the directory is missing or not a directory', async () => {
    const dir = await tempDir('snap');
    await assert.rejects(
      readSnapshot(path.join(dir, 'nope')),
      (error: unknown) => error instanceof UsageError && /does not exist/.test(error.message),
    );
    await writeFile(path.join(dir, 'file'), 'x');
    await assert.rejects(
      readSnapshot(path.join(dir, 'file')),
      (error: unknown) => error instanceof UsageError && /not a directory/.test(error.message),
    );
  });
});
