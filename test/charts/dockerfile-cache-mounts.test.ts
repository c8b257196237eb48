// Railway's builder refuses a `RUN --mount=type=cache` without an `id=`, so no Dockerfile of ours
// (Dockerfile.* at the top, deploy/**/Dockerfile) may have one: users build deploy/railway/Dockerfile
// there, and the others are the pattern they copy.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../../harness/paths.js';

/** Every Dockerfile of ours, relative to the repository: Dockerfile and Dockerfile.* at the top, deploy/**\/Dockerfile. */
async function dockerfiles(): Promise<string[]> {
  const top = (await readdir(REPO)).filter((name) => name === 'Dockerfile' || name.startsWith('Dockerfile.'));
  const deploy = (await readdir(path.join(REPO, 'deploy'), { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile() && entry.name === 'Dockerfile')
    .map((entry) => path.relative(REPO, path.join(entry.parentPath, entry.name)));
  return [...top, ...deploy].sort();
}

/** Each instruction of a Dockerfile with the line it starts on: continuation lines joined, comments dropped. */
function instructions(text: string): { line: number; text: string }[] {
  const result: { line: number; text: string }[] = [];
  let current: { line: number; text: string } | null = null;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    // A comment line ends nothing, even inside a continued instruction (as Docker reads it).
    if (line.startsWith('#') || (line === '' && current === null)) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1) : line;
    if (current) current.text += ` ${body}`;
    else current = { line: index + 1, text: body };
    if (!continued) {
      result.push(current);
      current = null;
    }
  });
  if (current) result.push(current);
  return result;
}

/** `file:line: --mount=...` for every RUN cache mount without an id= in a Dockerfile's text. */
function unkeyedCacheMounts(file: string, text: string): string[] {
  const found: string[] = [];
  for (const instruction of instructions(text)) {
    const [keyword, ...words] = instruction.text.split(/\s+/);
    if (keyword?.toUpperCase() !== 'RUN') continue;
    // RUN's flags come before its command; the first word that is not a flag starts the command.
    for (const word of words) {
      if (!word.startsWith('--')) break;
      if (!word.startsWith('--mount=')) continue;
      const options = word.slice('--mount='.length).split(',');
      const keys = new Set(options.map((option) => option.split('=')[0]));
      if (options.includes('type=cache') && !keys.has('id')) found.push(`${file}:${instruction.line}: ${word}`);
    }
  }
  return found;
}

async function offenders(): Promise<string[]> {
  const found: string[] = [];
  for (const file of await dockerfiles()) {
    found.push(...unkeyedCacheMounts(file, await readFile(path.join(REPO, file), 'utf8')));
  }
  return found;
}

describe('Dockerfiles: cache mounts have an id (Railway refuses them without)', () => {
  it('the check finds an unkeyed cache mount, on a continued line too, and passes a keyed one (it can fail)', () => {
    const text = [
      '# syntax=docker/dockerfile:1',
      'FROM node:24-bookworm-slim',
      'RUN --mount=type=cache,id=npm,target=/var/cache/npm npm ci',
      'RUN --mount=type=bind,source=.,target=/src \\',
      '    # a comment inside the instruction',
      '    --mount=type=cache,target=/root/.npm,sharing=locked \\',
      '    npm ci',
      'RUN echo --mount=type=cache,target=/not/a/flag',
    ].join('\n');
    const found = unkeyedCacheMounts('Dockerfile.test', text);
    assert.deepEqual(found, ['Dockerfile.test:4: --mount=type=cache,target=/root/.npm,sharing=locked']);
  });

  it('finds our Dockerfiles: the two images and the Railway one', async () => {
    const files = await dockerfiles();
    for (const expected of ['Dockerfile.init', 'Dockerfile.sidecar', 'deploy/railway/Dockerfile'])
      assert.ok(files.includes(expected), expected);
  });

  it('no Dockerfile of ours has a --mount=type=cache without an id=', async () => {
    assert.deepEqual(await offenders(), [], 'give each cache mount an id= (e.g. id=npm): Railway refuses unkeyed ones');
  });
});
