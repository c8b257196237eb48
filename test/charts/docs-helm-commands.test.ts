// Every `helm install` of the local chart that the documentation shows renders: a newcomer who copies one
// must not meet a required value the command leaves out (session.id, bot.image.tag).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../harness/paths.js';
import { renderChart } from '../support/charts/render.js';

const DOCUMENTS = ['README.md', 'docs/kubernetes.md', 'charts/baileys-keeper/README.md'];

/**
 * The `helm install NAME CHART …` commands of `text` whose chart is this one (./charts/baileys-keeper, or the OCI
 * artifact the release publishes from it), continuation lines joined, comments cut.
 */
function helmInstalls(text: string): string[] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.replace(/\s#.*$/, '').trim())
    .filter((line) =>
      /^helm (?:install|upgrade --install) \S+ (?:\.\/charts|oci:\/\/ghcr\.io\/baileys-keeper\/charts)\/baileys-keeper\b/.test(line),
    );
}

/** The `--set key=value` pairs of `command`. */
function setPairs(command: string): Record<string, string> {
  const words = command.split(/\s+/);
  const pairs: Record<string, string> = {};
  words.forEach((word, index) => {
    if (word !== '--set') return;
    const pair = words[index + 1]!;
    const at = pair.indexOf('=');
    pairs[pair.slice(0, at)] = pair.slice(at + 1);
  });
  return pairs;
}

describe('docs: the helm install commands shown render', () => {
  for (const document of DOCUMENTS) {
    it(`every helm install of the chart in ${document}`, async () => {
      const commands = helmInstalls(await readFile(path.join(REPO, document), 'utf8'));
      assert.ok(commands.length > 0, `${document} shows no helm install of the local chart`);
      for (const command of commands) {
        await renderChart({ set: setPairs(command) }).catch((error: Error) => {
          assert.fail(`${document}: ${command}\nfails to render: ${error.message.split('\n')[0]}`);
        });
      }
    });
  }
});
