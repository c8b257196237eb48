// The session API waits for the store: a backup POSTed from the moment the port accepts never runs
// against a schema that is being created, is told to retry (503 + Retry-After), and /readyz says why.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, startCli } from '../../harness/cli.js';
import { query } from '../../harness/db.js';
import { waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { freePort } from '../support/net.js';

const TOKEN = 'startup-token-0123456789abcdef';
const STARTS = 5;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: string;
}

describe('session API during start-up on a fresh schema', async () => {
  const url = await freshDatabase('api_startup');

  it(`answers 503 + Retry-After until the schema is ready, never a query error, over ${STARTS} starts`, async () => {
    for (let start = 1; start <= STARTS; start++) {
      const schema = `fresh_${start}`;
      // The last two starts keep a sessions directory (its own migration, shared by every session); the
      // last one an empty one, whose keeper is "ready" before any session has migrated anything.
      const many = start >= STARTS - 1;
      const dir = await tempDir(`startup-${start}`);
      if (start !== STARTS) await writeSession(many ? path.join(dir, 'watched') : dir, { preKeys: 2 });
      const port = await freePort();
      const where = many ? ['--sessions-dir', dir] : ['--dir', dir, '--session', 'watched'];
      const child = startCli(['sidecar', ...where, '--listen', `127.0.0.1:${port}`, '--schema', schema], {
        env: cliEnv(url, { KEEPER_API_TOKEN: TOKEN }),
      });
      child.stdin!.end();
      const output: string[] = [];
      child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        const answers: Answer[] = [];
        const readiness: Answer[] = [];
        const post = async (): Promise<Answer | null> => {
          try {
            const response = await fetch(`http://127.0.0.1:${port}/api/session/backup`, {
              method: 'POST',
              headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
              body: JSON.stringify({ session_id: 'early', session_data: { 'note.json': `{"start":${start}}` } }),
            });
            return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text() };
          } catch {
            return null; // not accepting yet
          }
        };
        // A tight loop from the moment the port accepts, until the write is stored.
        await waitFor(
          async () => {
            const answer = await post();
            if (answer === null) return null;
            answers.push(answer);
            if (answer.status !== 200) {
              const ready = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
              if (ready) readiness.push({ status: ready.status, retryAfter: null, body: await ready.text() });
            }
            return answer.status === 200 ? answer : null;
          },
          30_000,
          () => `start ${start}: no 200; answers: ${JSON.stringify(answers.slice(-3))}\n${output.join('').slice(-2000)}`,
          exited,
        );
        process.stdout.write(
          `# start ${start}${many ? ` (sessions directory${start === STARTS ? ', empty' : ''})` : ''}: ${answers.length - 1} answers before the write was stored\n`,
        );
        for (const answer of answers.slice(0, -1)) {
          assert.equal(answer.status, 503, `start ${start}: ${answer.body}`);
          assert.ok(answer.retryAfter !== null && Number(answer.retryAfter) > 0, `start ${start}: 503 without Retry-After`);
          const { error } = JSON.parse(answer.body) as { error: string };
          assert.doesNotMatch(error, /42P01|42703|does not exist|relation|column/, `start ${start}: a query ran against the schema`);
          assert.match(error, /schema/, `start ${start}: the 503 says why`);
        }
        for (const ready of readiness.filter((answer) => answer.status !== 200)) {
          const { reasons } = JSON.parse(ready.body) as { reasons: string[] };
          assert.ok(reasons.length > 0, `start ${start}: /readyz names why it is not ready: ${ready.body}`);
        }
        const [row] = await query<{ head_generation: string }>(
          url,
          `SELECT head_generation FROM ${schema}.sessions WHERE session_id = 'early'`,
        );
        assert.equal(Number(row!.head_generation), 1, `start ${start}: the one write is generation 1`);
        const empty = await query(url, `SELECT session_id FROM ${schema}.sessions WHERE head_generation = 0 AND session_id <> 'watched'`);
        assert.deepEqual(empty, [], `start ${start}: no session row left at generation 0`);
        const history = await query<{ n: string }>(url, `SELECT count(*) AS n FROM ${schema}.generations WHERE session_id = 'early'`);
        assert.equal(Number(history[0]!.n), 1);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    }
  });

  it('/readyz names the schema while it cannot be prepared', async () => {
    // A database that refuses connections: the schema can never be prepared.
    const port = await freePort();
    const dead = `postgresql://keeper@127.0.0.1:${await freePort()}/nothing`;
    const child = startCli(['sidecar', '--dir', await tempDir('startup-dead'), '--listen', `127.0.0.1:${port}`], {
      env: cliEnv(dead, { KEEPER_API_TOKEN: TOKEN }),
    });
    child.stdin!.end();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const ready = await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
          if (!response) return null;
          const body = JSON.parse(await response.text()) as { reasons?: string[] };
          return body.reasons?.some((reason) => /schema cannot be prepared/.test(reason)) ? { status: response.status, body } : null;
        },
        20_000,
        () => 'readyz never named the schema',
        exited,
      );
      assert.equal(ready.status, 503);
      const api = await fetch(`http://127.0.0.1:${port}/api/session/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(api.status, 503);
      assert.ok(Number(api.headers.get('retry-after')) > 0);
      assert.match(((await api.json()) as { error: string }).error, /schema/);
    } finally {
      child.kill('SIGKILL'); // its final flush would wait for the missing database
      await exited;
    }
  });
});
