// The worst bodies the session API accepts (under both the body-size and the file-count limit) keep the
// real keeper process within the memory limit its Kubernetes manifests give it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { startService, waitFor } from '../../harness/sidecar.js';
import { MAX_INCOMING_FILES } from '../../src/incoming.js';
import { MAX_FILE_BYTES } from '../../src/snapshot.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const TOKEN = 'memory-token-0123456789abcdef';
/** The memory limit of the kustomize base and the chart's default resources (384Mi). */
const MEMORY_LIMIT_BYTES = 384 * 1024 * 1024;
/**
 * The heap Node gives itself in such a container: it sizes V8's old generation from the cgroup memory
 * limit (a quarter of it), not from the machine's memory, so this is how the keeper runs in the pod.
 */
// The images start node with --max-semi-space-size=1 (Dockerfile.sidecar, deploy/railway/Dockerfile): the
// keeper is measured as it runs there. Without it Node 24's larger young generation alone takes the peak of
// a 16 MiB restore past the limit (396 MiB measured), which is why the images set it.
const CONTAINER_NODE_OPTIONS = `--max-old-space-size=${MEMORY_LIMIT_BYTES / 4 / 1024 / 1024} --max-semi-space-size=1`;
/** KEEPER_MAX_BODY_BYTES' default. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Peak resident memory of process `pid` so far (VmHWM), bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(match, 'VmHWM in /proc/PID/status');
  return Number(match[1]) * 1024;
}

/** A body of `count` files whose JSON fills about `bytes`; each file is JSON text, as Baileys writes. */
function bodyOf(sessionId: string, count: number, bytes: number, char = 'a'): string {
  const overhead = 40; // name, quotes, braces and commas per file
  const fill = Math.max(0, Math.floor((bytes - 100) / count) - overhead);
  const parts: string[] = [];
  for (let i = 0; i < count; i++)
    parts.push(`"pre-key-${i}.json":"{\\"k\\":\\"${char.repeat(Math.max(0, Math.floor(fill / Buffer.byteLength(char))))}\\"}"`);
  return `{"session_id":"${sessionId}","session_data":{${parts.join(',')}}}`;
}

/** A body of `count` empty files with the shortest names: the most files a body under the size limit can hold. */
function emptyFiles(sessionId: string, count: number): string {
  return `{"session_id":"${sessionId}","session_data":{${Array.from({ length: count }, (_, i) => `"${i.toString(36)}":""`).join(',')}}}`;
}

describe('session API memory', async () => {
  const url = await freshDatabase('api_memory');
  const dir = await tempDir('memory-watched');
  await writeSession(dir, { preKeys: 2 });
  const service = await startService(
    ['sidecar', '--dir', dir, '--session', 'watched', '--interval', '600000'],
    cliEnv(url, { KEEPER_API_TOKEN: TOKEN, NODE_OPTIONS: CONTAINER_NODE_OPTIONS }),
  );
  await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 20_000);
  const post = async (body: string) => {
    const response = await fetch(`http://127.0.0.1:${service.port}/api/session/backup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    return { status: response.status, text: await response.text() };
  };

  it('stays under the 384 MiB limit through the worst bodies under both limits, and answers restores of them', async () => {
    const cases: { label: string; body: string; status: number }[] = [
      { label: `${MAX_INCOMING_FILES} tiny files`, body: bodyOf('many-tiny', MAX_INCOMING_FILES, MAX_BODY_BYTES - 4096), status: 200 },
      { label: 'one huge file', body: bodyOf('one-huge', 1, Math.min(MAX_FILE_BYTES, MAX_BODY_BYTES) - 4096), status: 200 },
      { label: 'one huge file of two-byte characters', body: bodyOf('one-huge-wide', 1, MAX_BODY_BYTES - 4096, 'é'), status: 200 },
      { label: 'many mid-size files', body: bodyOf('many-mid', 1000, MAX_BODY_BYTES - 4096), status: 200 },
      { label: 'a million and a half empty files (over the count limit)', body: emptyFiles('too-many', 1_500_000), status: 413 },
    ];
    for (const { label, body, status } of cases) {
      assert.ok(Buffer.byteLength(body) <= MAX_BODY_BYTES, `${label}: the body is under the size limit`);
      const answer = await post(body);
      assert.equal(answer.status, status, `${label}: ${answer.text.slice(0, 300)}`);
      const peak = await peakRss(service.child.pid!);
      assert.ok(peak < MEMORY_LIMIT_BYTES, `${label}: peak RSS ${(peak / 1048576).toFixed(0)} MiB is over 384 MiB`);
    }
    for (const session of ['many-tiny', 'one-huge', 'one-huge-wide', 'many-mid']) {
      const response = await fetch(`http://127.0.0.1:${service.port}/api/session/restore?session_id=${session}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(response.status, 200, session);
      await response.arrayBuffer();
      const peak = await peakRss(service.child.pid!);
      assert.ok(peak < MEMORY_LIMIT_BYTES, `restore of ${session}: peak RSS ${(peak / 1048576).toFixed(0)} MiB is over 384 MiB`);
    }
    process.stdout.write(`# peak RSS of the keeper: ${((await peakRss(service.child.pid!)) / 1048576).toFixed(0)} MiB\n`);
  });

  it('stops cleanly', async () => {
    assert.equal((await service.stop()).code, 0);
  });
});
