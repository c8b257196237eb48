// Retention from the command line: the writers thin after a backup, history shows the schedule,
// restore --at between two retained generations takes the older one and says how far it is, and a bad
// schedule is a usage error.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { startService, waitFor } from '../../harness/sidecar.js';

const DAY = 86_400_000;

describe('retention', async () => {
  const url = await freshDatabase('retention-cli');
  const env = cliEnv(url);

  it('backup thins what the schedule no longer keeps; history shows the schedule; restore --at says how far the point is', async () => {
    const dir = await tempDir('retention-dir');
    const auth = await writeSession(dir, { preKeys: 2 });
    const contents: Map<string, string>[] = [];
    for (let i = 0; i < 4; i++) {
      await auth.state.keys.set({ session: { [`55110${i}.0`]: Buffer.from(`record ${i}`) } } as never);
      const result = await runCli(['backup', '--dir', dir, '--session', 'aged'], { env });
      assert.equal(result.code, 0, result.stderr);
      contents.push(await readTree(dir));
    }
    // As if the bot had run for weeks: generation 1 is 20 days old, 2 is 10 days, 3 is 3 days, 4 is now.
    for (const [generation, days] of [
      [1, 20],
      [2, 10],
      [3, 3],
    ] as const) {
      await query(
        url,
        `UPDATE baileys_keeper.generations SET created_at = now() - interval '${days} days' WHERE session_id = 'aged' AND generation = $1`,
        [generation],
      );
    }
    // Every one of the last hour, one per day for 15 days, and the newest 1: generation 1 (20 days old)
    // goes at the next backup.
    const schedule = ['--retention', '1h:all,15d:1d', '--keep', '1'];
    await auth.state.keys.set({ session: { '5511999.0': Buffer.from('five') } } as never);
    const fifth = await runCli(['backup', '--dir', dir, '--session', 'aged', ...schedule], { env });
    assert.equal(fifth.code, 0, fifth.stderr);
    assert.match(messages(fifth.stderr), /history thinned to the retention schedule: 1 generation and \d+ file versions deleted/);

    const history = await runCli(['history', '--session', 'aged', ...schedule], { env });
    assert.equal(history.code, 0);
    assert.match(history.stdout, /^retention 1h:all,15d:1d, and always the newest 1 generation$/m);
    assert.match(history.stdout, /^ {2}0s–1h old: 2 retained \(every generation\)$/m);
    assert.match(history.stdout, /^ {2}1h–15d old: 2 retained \(one per 1d\)$/m);
    assert.deepEqual(
      [...history.stdout.matchAll(/^(\d+) +\d{4}-/gm)].map((m) => Number(m[1])),
      [5, 4, 3, 2],
    );
    const json = JSON.parse((await runCli(['history', '--session', 'aged', '--json', ...schedule], { env })).stdout);
    assert.deepEqual(json.retention, { schedule: '1h:all,15d:1d', keep: 1 });

    // Five days ago lies between generation 2 (10 days) and 3 (3 days): the older one is restored.
    const at = new Date(Date.now() - 5 * DAY).toISOString();
    const target = path.join(await tempDir('retention-restore'), 'auth_info');
    const restored = await runCli(['restore', '--dir', target, '--session', 'aged', '--at', at], { env });
    assert.equal(restored.code, 0, restored.stdout);
    assert.match(
      messages(restored.stdout),
      /restored generation 2 of \S+ .*the newest retained generation at or before --at \S+, (4d23h|5d)\S* before it/,
    );
    assert.deepEqual(await readTree(target), contents[1]);

    // Twenty days ago: generation 1 was thinned away; nothing is that old.
    const tooOld = await runCli(
      ['restore', '--dir', target, '--force', '--session', 'aged', '--at', new Date(Date.now() - 20 * DAY).toISOString()],
      { env },
    );
    assert.equal(tooOld.code, 3);
    assert.match(messages(tooOld.stdout + tooOld.stderr), /no retained generation at or before .*; retained generations are 2\.\.5/);
  });

  it('the sidecar thins off the backup path after a backup that wrote', async () => {
    const dir = await tempDir('retention-sidecar');
    const auth = await writeSession(dir, { preKeys: 2 });
    for (let i = 0; i < 4; i++) {
      await auth.state.keys.set({ session: { [`55112${i}.0`]: Buffer.from(`r ${i}`) } } as never);
      assert.equal((await runCli(['backup', '--dir', dir, '--session', 'thinned-live'], { env })).code, 0);
    }
    await auth.state.keys.set({ session: { '5511299.0': Buffer.from('live') } } as never);
    const service = await startService(
      [
        'sidecar',
        '--dir',
        dir,
        '--session',
        'thinned-live',
        '--retention',
        'none',
        '--keep',
        '2',
        '--debounce',
        '100',
        '--max-delay',
        '200',
      ],
      env,
    );
    after(() => service.child.kill('SIGKILL'));
    // Said once the whole pass (generations, then the file versions they alone could see) is done.
    await waitFor(
      () => (service.output.some((line) => line.includes('history thinned to the retention schedule (none)')) ? true : null),
      30_000,
      () => service.output.join('\n'),
    );
    assert.deepEqual(
      (
        await query<{ generation: string }>(
          url,
          "SELECT generation FROM baileys_keeper.generations WHERE session_id = 'thinned-live' ORDER BY generation",
        )
      ).map((row) => Number(row.generation)),
      [4, 5],
    );
    assert.equal((await service.stop()).code, 0);
  });

  it('a bad schedule is a usage error that shows the grammar, from the flag or KEEPER_RETENTION', async () => {
    const dir = await tempDir('retention-bad');
    for (const [args, extra] of [
      [['--retention', '1h:al'], {}],
      [[], { KEEPER_RETENTION: '7d:1h,1d:10m' }],
    ] as const) {
      const result = await runCli(['backup', '--dir', dir, ...args], { env: cliEnv(url, extra) });
      assert.equal(result.code, 64);
      assert.match(
        result.stderr,
        /invalid --retention \/ KEEPER_RETENTION .*AGE:INTERVAL tiers with increasing ages, e\.g\. 1h:all,24h:10m,7d:1h,30d:1d/,
      );
    }
  });
});
