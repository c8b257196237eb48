// `npm start` keeps working: the demo pairs, backs up, and on its next start restores instead of pairing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../harness/paths.js';
import { tempDir } from '../support/fs.js';

function demo(dir: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [path.join(REPO, 'build', 'examples', 'demo.js')], {
    env: { ...process.env, DEMO_DIR: dir, DEMO_SECONDS: '4', DEMO_LISTEN: '127.0.0.1:0', DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

describe('the npm start demo', () => {
  it('pairs on the first start and restores the login on the second', async () => {
    const dir = await tempDir('demo');
    await chmod(dir, 0o755);
    const first = await demo(dir);
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /no login: a real bot would show a QR code/);
    assert.match(first.output, /"msg":"backup stored"/);
    assert.match(first.output, /^demo +\d+ +\S+ +\d+ .* yes \(5511\*+\d{4}\)/m);
    const second = await demo(dir);
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /restored generation \d+/);
    assert.match(second.output, /started already paired as 5511\*+\d{4}: no QR code needed/);
  });
});
