// takePicture / pictureChanges: which writes between two pictures are seen (a rewrite of the same size, a
// new file, a deletion, a rename over a file), and what is left out as the backup leaves it out.
import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pictureChanges, takePicture } from '../../src/directory-picture.js';
import { tempDir } from '../support/fs.js';

describe('directory picture', () => {
  it('sees a rewrite of the same size, a new file, a deletion and a rename over a file', async () => {
    const dir = await tempDir('picture');
    for (const name of ['a.json', 'b.json', 'c.json']) await writeFile(path.join(dir, name), '{"v":1}');
    const before = await takePicture(dir);
    assert.deepEqual([...before.keys()].sort(), ['a.json', 'b.json', 'c.json']);
    assert.deepEqual(pictureChanges(before, await takePicture(dir)), [], 'nothing written: nothing changed');
    // Kernels stamp files with a coarse clock (a few ms): a rewrite of the same size within one tick of the
    // picture keeps size, inode and times, and is not seen. Outside writers come later than that.
    await new Promise((resolve) => setTimeout(resolve, 30));
    await writeFile(path.join(dir, 'a.json'), '{"v":2}'); // same size
    await rm(path.join(dir, 'b.json'));
    await writeFile(path.join(dir, 'd.json'), '{}');
    await writeFile(path.join(dir, 'c.json.new'), '{"v":1}');
    await rename(path.join(dir, 'c.json.new'), path.join(dir, 'c.json')); // same content, another inode
    assert.deepEqual(pictureChanges(before, await takePicture(dir)), ['a.json', 'b.json', 'c.json', 'd.json']);
  });

  it('leaves out what a backup leaves out: dotfiles, *.tmp, links, sub-directories', async () => {
    const dir = await tempDir('picture-skip');
    await writeFile(path.join(dir, 'creds.json'), '{}');
    const before = await takePicture(dir);
    await writeFile(path.join(dir, '.probe'), '');
    await writeFile(path.join(dir, 'pre-key-1.json.tmp'), '{}');
    await symlink(path.join(dir, 'creds.json'), path.join(dir, 'link.json'));
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'x.json'), '{}');
    assert.deepEqual(pictureChanges(before, await takePicture(dir)), []);
  });

  it('with sessions: the files of every session directory, by relative path; a missing root is empty', async () => {
    const root = await tempDir('picture-sessions');
    await mkdir(path.join(root, 'alice'));
    await mkdir(path.join(root, '.hidden'));
    await writeFile(path.join(root, 'alice', 'creds.json'), '{}');
    await writeFile(path.join(root, '.hidden', 'creds.json'), '{}');
    const before = await takePicture(root, { sessions: true });
    assert.deepEqual([...before.keys()], [path.join('alice', 'creds.json')]);
    await mkdir(path.join(root, 'bob'));
    await writeFile(path.join(root, 'bob', 'creds.json'), '{}');
    assert.deepEqual(pictureChanges(before, await takePicture(root, { sessions: true })), [path.join('bob', 'creds.json')]);
    assert.equal((await takePicture(path.join(root, 'gone'))).size, 0);
  });
});
