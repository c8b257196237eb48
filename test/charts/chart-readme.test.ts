// The chart README's parameters tables are generated from values.yaml's `## @param` comments by
// readme-generator-for-helm (`npm run chart:readme`). Here the generator runs on a copy of the README:
// the committed one must be exactly what it writes, so a value added or changed without regenerating
// fails CI instead of leaving the README behind.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CHART } from '../support/charts/render.js';
import { tempDir } from '../support/fs.js';
import { REPO } from '../../harness/paths.js';

const SCRIPT = 'chart:readme';
const README = path.join(CHART, 'README.md');
const VALUES = path.join(CHART, 'values.yaml');
const run = promisify(execFile);
const STALE = `charts/baileys-keeper/README.md is not what values.yaml says: run \`npm run ${SCRIPT}\` to regenerate it`;

/** The generator's arguments as package.json's script gives them, with the README and values paths replaced. */
async function generatorArgs(readme: string, values: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [bin, ...args] = pkg.scripts[SCRIPT]!.split(/\s+/);
  assert.equal(bin, 'readme-generator');
  const expected = ['--values', 'charts/baileys-keeper/values.yaml', '--readme', 'charts/baileys-keeper/README.md'];
  assert.deepEqual(args, expected, 'the script writes the chart README from its values.yaml');
  return [await realpath(path.join(REPO, 'node_modules', '.bin', bin)), '--values', values, '--readme', readme];
}

/** Runs the generator (with this Node) on a copy of `readme`; resolves with what it wrote. */
async function regenerate(readme: string, values = VALUES): Promise<string> {
  const copy = path.join(await tempDir('chart-readme'), 'README.md');
  await copyFile(readme, copy);
  // The generator prints what is wrong (a value without metadata) on stdout before it throws.
  await run(process.execPath, await generatorArgs(copy, values)).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`readme-generator failed: ${error.stdout ?? ''}${error.stderr ?? ''}`, { cause: error });
  });
  return readFile(copy, 'utf8');
}

describe('chart: README parameters', () => {
  it('the README lists every value of values.yaml, exactly as `npm run chart:readme` writes it', async () => {
    const committed = await readFile(README, 'utf8');
    const generated = await regenerate(README);
    if (committed !== generated) {
      const [ours, theirs] = [committed.split('\n'), generated.split('\n')];
      const line = ours.findIndex((text, index) => text !== theirs[index]);
      assert.fail(`${STALE} (line ${line + 1} is\n  ${ours[line]}\nand would be\n  ${theirs[line]})`);
    }
    // Sections and rows come from the comments: a few spot checks that the tables are there at all.
    assert.match(committed, /^## Parameters$/m);
    assert.match(committed, /^### Bot$/m);
    assert.match(committed, /^\| `bot\.extraVolumes` +\| .*\| `\[\]` +\|$/m);
    assert.match(committed, /^\| `monitoring\.prometheusRule\.alertLabels` +\|/m);
  });

  it('the check can fail: a stale table is rewritten, and a value without a `## @param` comment is refused', async () => {
    const dir = await tempDir('chart-readme-stale');
    const stale = path.join(dir, 'README.md');
    const committed = await readFile(README, 'utf8');
    await writeFile(stale, committed.replace(/(\| `sidecar\.debounceMs` +\|[^|]+\| )`1000`/, '$1`999` '));
    assert.notEqual(await readFile(stale, 'utf8'), committed, 'the copy was made stale');
    assert.equal(await regenerate(stale), committed, 'regenerating gives the current table back');

    const values = path.join(dir, 'values.yaml');
    await writeFile(values, `${await readFile(VALUES, 'utf8')}newValue: 1\n`);
    await assert.rejects(regenerate(README, values), /Missing metadata for key: newValue/);
  });
});
