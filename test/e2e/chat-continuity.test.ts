// The promise behind the byte equality: after a deploy every chat keeps decrypting, both ways, measured
// against live Signal peers (harness/conversation.ts) talking to a real bot process whose
// directory real keeper processes carry from one pod to the next. And the proof that the measurement
// can fail: a restore one exchange stale, made on purpose, breaks chats and is seen to.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { describeReport } from '../../harness/conversation.js';
import { rollingDeploy, runStopped, serviceLauncher, staleRestore, stopNewPod, type PlayOptions } from '../../harness/continuity.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';

const FAST = ['--debounce', '100', '--max-delay', '500', '--shutdown-quiet', '200'];

describe('chats keep decrypting after a deploy', async () => {
  const url = await freshDatabase('chat_continuity');
  const play = async (session: string, seed: number): Promise<PlayOptions> => ({
    url,
    session,
    seed,
    contacts: 3,
    groups: 1,
    exchanges: 4,
    workDir: await tempDir(`chat-${session}`),
    start: serviceLauncher(url, session, FAST),
    track: (kill) => after(kill),
  });

  it("rolling deploy: SIGTERM to the old pod while it talks, the new pod's restore waits for its lease: 0 broken chats", async () => {
    const { report, restoreWaited, newPod } = await rollingDeploy(await play('rolling', 1701));
    await stopNewPod(newPod);
    assert.ok(restoreWaited, "the new pod's restore waited for the old pod's final backup");
    assert.equal(report.broken, 0, describeReport(report));
    assert.ok(report.chats.length >= 6, `every chat was probed: ${describeReport(report)}`);
  });

  it('run stopped (SIGTERM) mid-conversation, the next container on an empty disk: 0 broken chats', async () => {
    const { report, newPod } = await runStopped(await play('run-stop', 1702));
    await stopNewPod(newPod);
    assert.equal(report.broken, 0, describeReport(report));
  });

  it('a restore one exchange stale (restore --generation) breaks chats, and the harness sees it', async () => {
    const { report, staleBy } = await staleRestore(await play('stale', 1703));
    assert.ok(staleBy >= 1, `the head moved after the restored generation (by ${staleBy})`);
    const chats = report.chats.filter((chat) => chat.kind !== 'new contact');
    assert.ok(
      chats.some((chat) => chat.outcome !== 'ok'),
      `a stale restore must break chats: ${describeReport(report)}`,
    );
  });
});
