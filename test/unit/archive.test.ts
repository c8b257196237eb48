import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { packArchive, parseArchive } from '../../src/archive.js';
import { IntegrityError, UsageError } from '../../src/errors.js';
import { MAX_FILE_BYTES, readSnapshot } from '../../src/snapshot.js';
import { writeSession } from '../../harness/baileys.js';
import { tempDir } from '../support/fs.js';

type Entry = { header: Partial<tar.Header> & { name: string }; content?: Buffer };

/** Builds a tar from raw headers, including kinds export never writes. */
async function rawTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) => pack.on('end', resolve));
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  for (const entry of entries) pack.entry(entry.header as tar.Header, entry.content ?? Buffer.alloc(0));
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const good = { header: { name: 'pre-key-1.json', type: 'file' as const }, content: Buffer.from('{"ok":true}') };

async function rejects(entries: Entry[], pattern: RegExp): Promise<void> {
  const data = await rawTar(entries);
  await assert.rejects(
    parseArchive(data),
    (error: unknown) => error instanceof IntegrityError && pattern.test(error.message) && /nothing was stored/.test(error.message),
  );
}

/** The archive is refused as not being one of a directory: a usage error (exit 64), never an integrity failure. */
async function refusesAsFormat(data: Buffer | Entry[], pattern: RegExp): Promise<void> {
  await assert.rejects(parseArchive(Array.isArray(data) ? await rawTar(data) : data), (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.exitCode, 64);
    assert.match(error.message, pattern);
    assert.match(error.message, /nothing was stored/);
    return true;
  });
}

describe('archive import checks', () => {
  it('round-trips what export packs', async () => {
    const files = [
      { name: 'pre-key-7.json', content: Buffer.from('{"x":1}') },
      { name: 'notes.txt', content: Buffer.from('plain') },
    ];
    const parsed = await parseArchive(await packArchive(files, new Date()));
    assert.deepEqual([...parsed.files.keys()].sort(), ['notes.txt', 'pre-key-7.json']);
    assert.equal(parsed.files.get('notes.txt')!.content.toString(), 'plain');
    assert.equal(parsed.directory, null);
  });

  it('accepts a gzip-compressed tar and a tar made with `tar -C dir .`', async () => {
    const data = await rawTar([
      { header: { name: './', type: 'directory' } },
      { header: { name: './pre-key-1.json', type: 'file' }, content: Buffer.from('{}') },
    ]);
    assert.deepEqual([...(await parseArchive(gzipSync(data))).files.keys()], ['pre-key-1.json']);
  });

  it('accepts one top-level directory of any name, with or without its entry, `./` before it or not', async () => {
    for (const [top, withEntry] of [
      ['auth_info', true],
      ['./auth_info', true],
      ['baileys_auth_info', false],
      ['.auth', true],
    ] as const) {
      const parsed = await parseArchive(
        await rawTar([
          ...(withEntry ? [{ header: { name: `${top}/`, type: 'directory' as const } }] : []),
          { header: { name: `${top}/pre-key-1.json`, type: 'file' }, content: Buffer.from('{}') },
          { header: { name: `${top}//pre-key-2.json`, type: 'file' }, content: Buffer.from('{}') },
        ]),
      );
      assert.deepEqual([...parsed.files.keys()].sort(), ['pre-key-1.json', 'pre-key-2.json'], top);
      assert.equal(parsed.directory, top.replace('./', ''));
    }
  });

  it('skips what a backup of the directory skips: dotfiles, dot-directories and *.tmp, at the top or in the directory', async () => {
    for (const top of ['', 'auth_info/', './']) {
      const parsed = await parseArchive(
        await rawTar([
          { header: { name: `${top}pre-key-1.json`, type: 'file' }, content: Buffer.from('{}') },
          { header: { name: `${top}.DS_Store`, type: 'file' }, content: Buffer.from('x') },
          { header: { name: `${top}creds.json.tmp`, type: 'file' }, content: Buffer.from('{"half') },
          { header: { name: `${top}.baileys-keeper-stale-1/`, type: 'directory' } },
          { header: { name: `${top}.baileys-keeper-stale-1/creds.json`, type: 'file' }, content: Buffer.from('{}') },
        ]),
      );
      assert.deepEqual([...parsed.files.keys()], ['pre-key-1.json'], top);
      assert.deepEqual(parsed.skipped, [`${top}.DS_Store`, `${top}creds.json.tmp`, `${top}.baileys-keeper-stale-1/creds.json`]);
    }
  });

  it('rejects a name over 255 bytes', () =>
    rejects([{ header: { name: `${'k'.repeat(300)}.json`, type: 'file' }, content: Buffer.from('{}') }], /over 255 bytes/));
  it('rejects an oversize entry before reading it', () =>
    rejects(
      [{ header: { name: 'big.bin', type: 'file', size: MAX_FILE_BYTES + 1 }, content: Buffer.alloc(MAX_FILE_BYTES + 1) }],
      /"big\.bin".*over the/,
    ));
  it('rejects a name given twice', () => rejects([good, good], /twice/));
  it('rejects a torn JSON entry, at the top or in the directory', async () => {
    await rejects([{ header: { name: 'session-1.json', type: 'file' }, content: Buffer.from('{"half') }], /"session-1\.json".*JSON/);
    await rejects(
      [{ header: { name: 'auth_info/session-1.json', type: 'file' }, content: Buffer.from('{"half') }],
      /"auth_info\/session-1\.json".*JSON/,
    );
  });
  it('rejects a creds.json that is not a creds object', () =>
    rejects([{ header: { name: 'creds.json', type: 'file' }, content: Buffer.from('{}') }], /creds/));
  it('rejects a damaged header after the first entry as damage (exit 4)', async () => {
    const data = await packArchive(
      [
        { name: 'pre-key-1.json', content: Buffer.from('{}') },
        { name: 'pre-key-2.json', content: Buffer.from('{}') },
      ],
      new Date(0),
    );
    data[1024 + 3]! ^= 0x20; // the second header's name: its checksum no longer matches
    await assert.rejects(
      parseArchive(data),
      (error: unknown) => error instanceof IntegrityError && /damaged after 1 entries/.test(error.message),
    );
  });
});

describe('archive shapes that are not one directory: usage errors (exit 64)', () => {
  const file = (name: string): Entry => ({ header: { name, type: 'file' }, content: Buffer.from('{}') });
  it('a symlink, hard link, device or FIFO entry, naming it', async () => {
    await refusesAsFormat([good, { header: { name: 'creds.json', type: 'symlink', linkname: '/etc/passwd' } }], /"creds\.json".*symlink/);
    await refusesAsFormat(
      [good, { header: { name: 'session-1.json', type: 'link', linkname: 'pre-key-1.json' } }],
      /"session-1\.json".*link/,
    );
    await refusesAsFormat(
      [{ header: { name: 'tty.json', type: 'character-device', devmajor: 5, devminor: 0 } }],
      /"tty\.json".*character-device/,
    );
    await refusesAsFormat([{ header: { name: 'sda.json', type: 'block-device', devmajor: 8, devminor: 0 } }], /block-device/);
    await refusesAsFormat([{ header: { name: 'pipe.json', type: 'fifo' } }], /"pipe\.json".*fifo/);
  });
  it('an absolute path or one that climbs out with ..', async () => {
    await refusesAsFormat([file('/etc/cron.d/x')], /"\/etc\/cron\.d\/x".*absolute path/);
    await refusesAsFormat([file('../escape.json')], /"\.\.\/escape\.json".*climbs out/);
    await refusesAsFormat([file('auth_info/../../escape.json')], /climbs out/);
  });
  it('two top-level directories, or files beside a directory', async () => {
    await refusesAsFormat(
      [file('alice/creds.json'), file('bob/creds.json')],
      /2 top-level directories \(alice\/, bob\/\).*one archive per auth directory/,
    );
    await refusesAsFormat(
      [file('creds.json'), file('auth_info/pre-key-1.json')],
      /files at its top \("creds\.json"\) and a directory \(auth_info\/\)/,
    );
    await refusesAsFormat(
      [file('./creds.json'), { header: { name: './keys/', type: 'directory' } }],
      /files at its top .* a directory \(keys\/\)/,
    );
  });
  it('a sub-directory inside the directory, or files deeper than it', async () => {
    await refusesAsFormat(
      [file('auth_info/creds.json'), file('auth_info/old/creds.json')],
      /"auth_info\/old\/creds\.json".*sub-directory \(auth_info\/old\/\)/,
    );
    await refusesAsFormat(
      [file('auth_info/creds.json'), { header: { name: 'auth_info/old/', type: 'directory' } }],
      /sub-directory \(auth_info\/old\/\)/,
    );
    await refusesAsFormat(
      [file('sessions/acme/alice/creds.json'), file('sessions/acme/bob/creds.json')],
      /sub-directory \(sessions\/acme\/alice\/\).*one session each/,
    );
    await refusesAsFormat([file('sessions/acme/alice/creds.json')], /every file is under sessions\/acme\/alice\/.*-C sessions\/acme alice/);
  });
  it('input that is not a tar: text, other compressions, zip', async () => {
    await refusesAsFormat(Buffer.from('this is not a tar archive at all'.repeat(40)), /not a tar archive/);
    await refusesAsFormat(Buffer.from('{"creds":1}'), /not a tar archive.*tar czf x\.tgz auth_info/);
    await refusesAsFormat(gzipSync(Buffer.from('hello, not a tar, only gzip'.repeat(30))), /not a tar archive/);
    await refusesAsFormat(Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(600)]), /xz-compressed.*xz -dc/);
    await refusesAsFormat(Buffer.concat([Buffer.from('BZh91AY&SY'), Buffer.alloc(600)]), /bzip2-compressed/);
    await refusesAsFormat(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]), /zstd-compressed/);
    await refusesAsFormat(Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(600)]), /a zip archive/);
  });
  it('an archive with no files: empty input, an empty gzip stream, just the marker, just a directory, only dotfiles', async () => {
    await refusesAsFormat(Buffer.alloc(0), /empty \(0 bytes\)/);
    await refusesAsFormat(gzipSync(Buffer.alloc(0)), /empty gzip stream/);
    await refusesAsFormat(await packArchive([], new Date(0)), /holds no files to import.*logout/);
    await refusesAsFormat(Buffer.alloc(10240), /holds no files/);
    await refusesAsFormat([{ header: { name: 'auth_info/', type: 'directory' } }], /holds no files/);
    await refusesAsFormat([file('auth_info/.keeper-probe')], /holds no files to import \(only 1 dotfiles or \*\.tmp files/);
  });
  it('a file that is also the directory holding the others', () =>
    refusesAsFormat([file('auth_info'), file('auth_info/creds.json')], /it is a file, and also the directory/));
});

/** Runs GNU tar (the real binary) with `args` in `cwd`; returns the archive it wrote to `out`. */
async function gnuTar(cwd: string, out: string, args: string[]): Promise<Buffer> {
  await promisify(execFile)('tar', [...args.slice(0, 1), out, ...args.slice(1)], { cwd });
  return readFile(out);
}

describe('the archives people make with GNU tar', async () => {
  const root = await tempDir('gnu-tar');
  const dir = path.join(root, 'auth_info');
  await writeSession(dir, { preKeys: 6 });
  // A long name (GNU tar writes it as a ././@LongLink entry, pax as a path record) and what a backup skips.
  await writeFile(path.join(dir, `app-state-sync-key-${'A'.repeat(150)}.json`), '{"keyData":"x"}');
  await writeFile(path.join(dir, '.keeper-probe'), '');
  await writeFile(path.join(dir, 'creds.json.tmp'), '{"half');
  await mkdir(path.join(dir, '.baileys-keeper-stale-20261206T140000Z'));
  await writeFile(path.join(dir, '.baileys-keeper-stale-20261206T140000Z', 'creds.json'), '{}');
  const backedUp = await readSnapshot(dir);
  const names = [...backedUp.files.keys()].sort();
  assert.ok(names.length > 8 && !names.some((name) => name.startsWith('.') || name.endsWith('.tmp')));

  const layouts: [string, string[], string | null][] = [
    ['tar czf x.tgz auth_info', ['-czf', 'auth_info'], 'auth_info'],
    ['tar cf x.tar auth_info', ['-cf', 'auth_info'], 'auth_info'],
    ['tar cf x.tar ./auth_info', ['-cf', './auth_info'], 'auth_info'],
    ['tar czf x.tgz --format=pax auth_info', ['-czf', '--format=pax', 'auth_info'], 'auth_info'],
    ['tar cf x.tar --format=oldgnu auth_info', ['-cf', '--format=oldgnu', 'auth_info'], 'auth_info'],
    ['tar czf x.tgz -C auth_info .', ['-czf', '-C', 'auth_info', '.'], null],
    ['tar cf x.tar -C auth_info .', ['-cf', '-C', 'auth_info', '.'], null],
  ];
  for (const [label, args, directory] of layouts) {
    it(`${label}: the files a backup of the directory stores, nothing else`, async () => {
      const parsed = await parseArchive(await gnuTar(root, path.join(root, 'x.archive'), args));
      assert.deepEqual([...parsed.files.keys()].sort(), names);
      for (const [name, file] of backedUp.files) assert.ok(parsed.files.get(name)!.content.equals(file.content), name);
      assert.equal(parsed.directory, directory);
      assert.deepEqual(
        parsed.skipped.map((name) => path.basename(name)).sort(),
        ['.keeper-probe', 'creds.json', 'creds.json.tmp'],
        'the dotfile, the temporary file and the set-aside creds.json are left out',
      );
    });
  }

  it('tar cf x.tar auth_info/* and tar cf x.tar -C auth_info <names>: without directory entries', async () => {
    const inDir = await parseArchive(await gnuTar(root, path.join(root, 'x.tar'), ['-cf', ...names.map((name) => `auth_info/${name}`)]));
    assert.deepEqual([...inDir.files.keys()].sort(), names);
    assert.equal(inDir.directory, 'auth_info');
    const flat = await parseArchive(await gnuTar(root, path.join(root, 'x.tar'), ['-cf', '-C', 'auth_info', ...names]));
    assert.deepEqual([...flat.files.keys()].sort(), names);
  });

  it('git archive of a repository holding the directory (a pax global header first)', async () => {
    const repo = path.join(root, 'repo');
    await mkdir(repo);
    const git = (...args: string[]) =>
      promisify(execFile)('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: repo });
    await git('init', '-q');
    await promisify(execFile)('cp', ['-r', dir, repo]);
    await git('add', 'auth_info');
    await git('commit', '-qm', 'session');
    await git('archive', '--format=tar.gz', '-o', path.join(root, 'git.tgz'), 'HEAD');
    const parsed = await parseArchive(await readFile(path.join(root, 'git.tgz')));
    assert.deepEqual([...parsed.files.keys()].sort(), names);
    assert.equal(parsed.directory, 'auth_info');
  });

  it('tar cf x.tar --format=v7 auth_info (no magic, only checksums)', async () => {
    const small = path.join(root, 'v7', 'auth_info');
    await writeSession(small, { preKeys: 2 });
    const parsed = await parseArchive(await gnuTar(path.dirname(small), path.join(root, 'x.tar'), ['-cf', '--format=v7', 'auth_info']));
    assert.deepEqual([...parsed.files.keys()].sort(), [...(await readSnapshot(small)).files.keys()].sort());
    assert.equal(parsed.directory, 'auth_info');
  });

  it('a tar of the path to the directory (tar czf x.tgz /home/me/bot/auth_info) says to run tar from its parent', async () => {
    const nested = path.join(root, 'home', 'me', 'bot', 'auth_info');
    await writeSession(nested, { preKeys: 1 });
    await refusesAsFormat(
      await gnuTar(root, path.join(root, 'x.tgz'), ['-czf', path.join(root, 'home')]),
      /every file is under .*home\/me\/bot\/auth_info\/, as tar keeps the path it is given: run tar from its parent \(tar czf x\.tgz -C .*home\/me\/bot auth_info\)/,
    );
  });

  it('a tar of the sessions directory, or of two auth directories, is refused as a usage error', async () => {
    const sessions = path.join(root, 'sessions');
    await writeSession(path.join(sessions, 'alice'), { preKeys: 1 });
    await writeSession(path.join(sessions, 'bob'), { preKeys: 1 });
    await refusesAsFormat(await gnuTar(root, path.join(root, 'x.tgz'), ['-czf', 'sessions']), /sub-directory \(sessions\/(alice|bob)\/\)/);
    await refusesAsFormat(
      await gnuTar(root, path.join(root, 'x.tgz'), ['-czf', '-C', 'sessions', 'alice', 'bob']),
      /2 top-level directories/,
    );
    await refusesAsFormat(await gnuTar(root, path.join(root, 'x.tar.xz'), ['-cJf', 'auth_info']), /xz-compressed/);
  });
});

/** A real export of `count` key files, and where each entry ends (header plus padded contents). */
async function exportOf(count: number): Promise<{ data: Buffer; ends: number[] }> {
  const files = Array.from({ length: count }, (_, i) => ({
    name: `pre-key-${i + 1}.json`,
    content: Buffer.from(JSON.stringify({ keyId: i + 1, pad: 'k'.repeat(i * 53) })),
  }));
  const ends: number[] = [];
  let at = 0;
  for (const file of files) {
    at += 512 + Math.ceil(file.content.length / 512) * 512;
    ends.push(at);
  }
  return { data: await packArchive(files, new Date(0)), ends };
}

async function refused(data: Buffer, pattern: RegExp): Promise<void> {
  await assert.rejects(parseArchive(data), (error: unknown) => {
    assert.ok(error instanceof IntegrityError, String(error));
    assert.match(error.message, pattern);
    assert.match(error.message, /nothing was stored/);
    return true;
  });
}

describe('an archive is whole or nothing', () => {
  it('refuses a tar cut exactly after an entry (no end-of-archive marker), naming it', async () => {
    const { data, ends } = await exportOf(46);
    await refused(data.subarray(0, ends[13]), /cut short: it ends after 14 entries without tar's end-of-archive marker/);
    await refused(data.subarray(0, ends[45]), /cut short: it ends after 46 entries/);
    // Half of the marker is not the marker.
    await refused(data.subarray(0, ends[45]! + 512), /end-of-archive marker/);
  });

  it('refuses a tar cut in the middle of an entry, its header, or its padding', async () => {
    const { data, ends } = await exportOf(46);
    for (const cut of [ends[13]! + 100, ends[13]! + 512 + 3, ends[20]! - 1, 263, 511]) await refused(data.subarray(0, cut), /cut short/);
    // Less than a header's first 263 bytes shows no tar at all: not a tar (exit 64), nothing stored either way.
    for (const cut of [1, 100, 262]) await refusesAsFormat(data.subarray(0, cut), /not a tar archive/);
  });

  it('refuses a gzipped export cut at an entry boundary, cut anywhere, or corrupt', async () => {
    const { data, ends } = await exportOf(46);
    await refused(gzipSync(data.subarray(0, ends[13])), /cut short: it ends after 14 entries/);
    const whole = gzipSync(data);
    await refused(whole.subarray(0, whole.length - 4), /gzip stream is cut short/);
    await refused(whole.subarray(0, Math.floor(whole.length / 2)), /gzip stream is cut short/);
    const badCrc = Buffer.from(whole);
    badCrc[badCrc.length - 6]! ^= 0x01;
    await refused(badCrc, /gzip stream is corrupt/);
    assert.equal((await parseArchive(whole)).files.size, 46);
  });

  it('refuses data after the end: junk after the gzip stream or the marker, a second archive appended', async () => {
    const { data } = await exportOf(3);
    // zlib reads what follows a gzip member as another member (corrupt) unless it starts with a zero byte.
    await refused(Buffer.concat([gzipSync(data), Buffer.from('trailing junk')]), /gzip stream is corrupt/);
    await refused(Buffer.concat([gzipSync(data), Buffer.from([0, 0, 0x78])]), /3 bytes of unexpected data after its gzip stream/);
    await refused(Buffer.concat([data, Buffer.from('junk')]), /unexpected data after its end-of-archive marker/);
    const second = await packArchive([{ name: 'pre-key-99.json', content: Buffer.from('{}') }], new Date(0));
    await refused(Buffer.concat([data, second]), /"pre-key-99\.json" is rejected: it comes after an end-of-archive marker/);
  });

  it('accepts the zero padding tar and gzip add after the end', async () => {
    const { data } = await exportOf(3);
    // GNU tar pads archives to 10 KiB records; gzip tolerates trailing zeros.
    assert.equal((await parseArchive(Buffer.concat([data, Buffer.alloc(10240 - (data.length % 10240))]))).files.size, 3);
    assert.equal((await parseArchive(Buffer.concat([gzipSync(data), Buffer.alloc(512)]))).files.size, 3);
  });
});
