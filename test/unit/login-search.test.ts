// findLoginsBelow: a Baileys login one to three levels below the auth directory is found (four is not
// searched), several are all named, symbolic links are not followed, an unreadable directory is skipped,
// and the search stops at its bound of entries read.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { findLoginsBelow, loginElsewhereAdvice, loginsBelowInstead } from '../../src/login-search.js';
import { tempDir } from '../support/fs.js';
import { openToAll, otherUser } from '../support/other-user.js';
import { throwawayUser } from '../support/throwaway-user.js';

/** Writes a real Baileys login (creds.json and keys, through useMultiFileAuthState) at `root/relative`. */
async function loginAt(root: string, relative: string): Promise<void> {
  await writeSession(path.join(root, relative), { preKeys: 2, sessions: 1, senderKeys: 0, appStateKeys: 0 });
}

describe('findLoginsBelow', () => {
  it('finds a login at depth 1, 2 and 3, and not at depth 4 (the documented bound)', async () => {
    for (const relative of ['mybot', path.join('bots', 'mybot'), path.join('a', 'b', 'mybot')]) {
      const root = await tempDir('login-depth');
      await loginAt(root, relative);
      assert.deepEqual(await findLoginsBelow(root), [relative], relative);
      assert.deepEqual(await loginsBelowInstead(root), [relative]);
    }
    const deep = await tempDir('login-depth4');
    await loginAt(deep, path.join('a', 'b', 'c', 'mybot'));
    assert.deepEqual(await findLoginsBelow(deep), [], 'four levels down is not searched by default');
    assert.deepEqual(await findLoginsBelow(deep, { maxDepth: 4 }), [path.join('a', 'b', 'c', 'mybot')]);
  });

  it('names every login, sorted, and only directories whose creds.json is Baileys creds', async () => {
    const root = await tempDir('login-several');
    await loginAt(root, 'zeta');
    await loginAt(root, 'alpha');
    await loginAt(root, path.join('tenants', 'beta'));
    await mkdir(path.join(root, 'torn'));
    await writeFile(path.join(root, 'torn', 'creds.json'), '{"noiseKey":');
    await mkdir(path.join(root, 'other'));
    await writeFile(path.join(root, 'other', 'creds.json'), '{"user":"someone else\'s creds"}');
    await mkdir(path.join(root, 'dir-named-creds', 'creds.json'), { recursive: true });
    // Dotted directories are never kept: the stale copy a restore set aside is no login to point --dir at.
    await loginAt(root, '.baileys-keeper-stale-2026-12-06T00-00-00Z');
    assert.deepEqual(await findLoginsBelow(root), ['alpha', path.join('tenants', 'beta'), 'zeta']);
  });

  it('is not used when the directory holds creds.json itself', async () => {
    const root = await tempDir('login-own');
    await loginAt(root, '.');
    await loginAt(root, 'nested');
    assert.deepEqual(await loginsBelowInstead(root), []);
    assert.deepEqual(await findLoginsBelow(root), ['nested']);
  });

  it('never follows a symbolic link to a directory, nor a creds.json that is a link', async () => {
    const root = await tempDir('login-links');
    const elsewhere = await tempDir('login-elsewhere');
    await loginAt(elsewhere, 'mybot');
    await symlink(path.join(elsewhere, 'mybot'), path.join(root, 'linked-login'));
    await symlink(elsewhere, path.join(root, 'linked-parent'));
    await mkdir(path.join(root, 'linked-creds'));
    await symlink(path.join(elsewhere, 'mybot', 'creds.json'), path.join(root, 'linked-creds', 'creds.json'));
    assert.deepEqual(await findLoginsBelow(root), []);
  });

  it('gives nothing, without throwing, for a directory that does not exist or is a file', async () => {
    const root = await tempDir('login-missing');
    await writeFile(path.join(root, 'file'), 'x');
    assert.deepEqual(await findLoginsBelow(path.join(root, 'nope')), []);
    assert.deepEqual(await findLoginsBelow(path.join(root, 'file')), []);
  });

  it('stops after its bound of entries read: a huge tree cannot stall it', async () => {
    const root = await tempDir('login-bound');
    for (let i = 0; i < 300; i++) await mkdir(path.join(root, `empty-${String(i).padStart(3, '0')}`));
    await loginAt(root, path.join('zz', 'mybot'));
    assert.deepEqual(await findLoginsBelow(root, { maxEntries: 100 }), [], 'the bound was reached before zz/mybot');
    assert.deepEqual(await findLoginsBelow(root), [path.join('zz', 'mybot')]);
  });

  const user = otherUser();
  it('skips a directory it may not read, and still finds the others', { skip: 'skip' in user ? user.skip : false }, async () => {
    const { uid, gid } = user as { uid: number; gid: number };
    const root = await tempDir('login-unreadable');
    await openToAll(root);
    await loginAt(root, path.join('closed', 'mybot'));
    await loginAt(root, 'open');
    await chmod(path.join(root, 'open'), 0o755);
    await chmod(path.join(root, 'open', 'creds.json'), 0o644);
    await chmod(path.join(root, 'closed'), 0o700); // root's, not the other user's
    // The search as that user, through the CLI's bundle copied where it can read it (the checkout itself
    // may be private to root): `doctor` names the logins it finds below --dir.
    const bundle = await throwawayUser(await tempDir('login-unreadable-keeper'));
    const result = spawnSync(
      bundle.node,
      [bundle.script, 'doctor', '--dir', root, '--database-url', 'postgres://nobody@127.0.0.1:1/none'],
      {
        uid,
        gid,
        encoding: 'utf8',
      },
    );
    const said = result.stdout + result.stderr;
    assert.match(said, new RegExp(`--dir ${path.join(root, 'open').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), said);
    assert.doesNotMatch(said, /--dir \S*closed/, 'closed/ is skipped, open/ still found');
    assert.deepEqual(await findLoginsBelow(root), [path.join('closed', 'mybot'), 'open'], 'root reads both');
  });
});

describe('loginElsewhereAdvice', () => {
  it('names the flag to use: --dir for one login, --sessions-dir for several under one parent', () => {
    assert.match(
      loginElsewhereAdvice('auth_info', ['mybot']),
      /auth_info holds no creds\.json, but auth_info\/mybot holds a Baileys login/,
    );
    assert.match(loginElsewhereAdvice('auth_info', ['mybot']), /--dir auth_info\/mybot \(KEEPER_DIR\)/);
    assert.match(loginElsewhereAdvice('auth_info', ['a', 'b']), /--sessions-dir auth_info \(KEEPER_SESSIONS_DIR\)/);
    assert.match(loginElsewhereAdvice('auth_info', ['x/a', 'x/b']), /--sessions-dir auth_info\/x /);
    assert.match(loginElsewhereAdvice('auth_info', ['a', 'x/b']), /--dir auth_info\/a, --dir auth_info\/x\/b/);
  });
});
