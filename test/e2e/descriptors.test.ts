// Out of file descriptors (EMFILE): a file the keeper cannot open because the process has no descriptor
// left is held back as unreadable — never taken for a deleted file or a no-op — and read as soon as
// descriptors are free again. Run in a child process under a real RLIMIT_NOFILE (`ulimit -n`).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { REPO } from '../../harness/paths.js';
import { tempDir } from '../support/fs.js';

describe('descriptors exhausted', () => {
  it('a file that cannot be opened for EMFILE is held back as unreadable, and read once descriptors are free', async () => {
    const dir = await tempDir('emfile');
    await writeSession(dir, { preKeys: 6 });
    const snapshotModule = pathToFileURL(path.join(REPO, 'build', 'src', 'snapshot.js')).href;
    const script = path.join(dir, '..', `${path.basename(dir)}-probe.mjs`);
    await writeFile(
      script,
      [
        `import { openSync, closeSync } from 'node:fs';`,
        `import { readSnapshot } from ${JSON.stringify(snapshotModule)};`,
        `const dir = ${JSON.stringify(dir)};`,
        // Holds every descriptor the process may still open, as an idle-connection flood would.
        'const held = [];',
        "for (;;) { try { held.push(openSync('/dev/null', 'r')); } catch (e) { if (e.code !== 'EMFILE') throw e; break; } }",
        // None left: the directory itself cannot be listed (the loop shows it as an unreadable directory).
        'const listing = await readSnapshot(dir).then(() => "read", (e) => e.cause?.code ?? e.message);',
        // Two left: the listing works, most of the files opened at once do not.
        'closeSync(held.pop()); closeSync(held.pop());',
        'const starved = await readSnapshot(dir, { retryDelaysMs: [0, 0, 0] });',
        'for (const fd of held) closeSync(fd);',
        'const freed = await readSnapshot(dir, { retryDelaysMs: [0, 0, 0] });',
        "const kinds = [...starved.held.values()].map((h) => h.kind + ':' + h.reason);",
        'console.log(JSON.stringify({ listing, held: held.length, starvedFiles: starved.files.size, kinds, freedFiles: freed.files.size, freedHeld: freed.held.size }));',
      ].join('\n'),
    );
    // A low descriptor limit, so that using every descriptor up is quick.
    const result = spawnSync('bash', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${script}"`], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!);
    assert.ok(report.held > 100, `descriptors used up: ${report.held}`);
    assert.equal(report.listing, 'EMFILE', 'with no descriptor left the listing fails, and says why');
    assert.ok(report.kinds.length > 0, `no file was held back while descriptors were exhausted: ${result.stdout}`);
    for (const kind of report.kinds) assert.match(kind, /^unreadable:cannot open \(EMFILE\)$/);
    assert.equal(
      report.starvedFiles + report.kinds.length,
      report.freedFiles,
      'no file was taken for deleted while it could not be opened',
    );
    assert.deepEqual([report.freedHeld, report.freedFiles > 0], [0, true]);
  });
});
