import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { packArchive, parseArchive } from '../../src/archive.js';
import { IntegrityError } from '../../src/errors.js';
import { MAX_FILE_BYTES } from '../../src/snapshot.js';

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

describe('archive import checks', () => {
  it('round-trips what export packs', async () => {
    const files = [
      { name: 'pre-key-7.json', content: Buffer.from('{"x":1}') },
      { name: 'notes.txt', content: Buffer.from('plain') },
    ];
    const parsed = await parseArchive(await packArchive(files, new Date()));
    assert.deepEqual([...parsed.files.keys()].sort(), ['notes.txt', 'pre-key-7.json']);
    assert.equal(parsed.files.get('notes.txt')!.content.toString(), 'plain');
  });

  it('accepts a gzip-compressed tar and a tar made with `tar -C dir .`', async () => {
    const data = await rawTar([
      { header: { name: './', type: 'directory' } },
      { header: { name: './pre-key-1.json', type: 'file' }, content: Buffer.from('{}') },
    ]);
    assert.deepEqual([...(await parseArchive(gzipSync(data))).files.keys()], ['pre-key-1.json']);
  });

  it('rejects a symlink entry, naming it', () =>
    rejects([good, { header: { name: 'creds.json', type: 'symlink', linkname: '/etc/passwd' } }], /"creds\.json".*symlink/));
  it('rejects a hard link entry', () =>
    rejects([good, { header: { name: 'session-1.json', type: 'link', linkname: 'pre-key-1.json' } }], /"session-1\.json".*link/));
  it('rejects a character device entry', () =>
    rejects([{ header: { name: 'tty.json', type: 'character-device', devmajor: 5, devminor: 0 } }], /"tty\.json".*character-device/));
  it('rejects a fifo entry', () => rejects([{ header: { name: 'pipe.json', type: 'fifo' } }], /"pipe\.json".*fifo/));
  it('rejects a sub-directory', () => rejects([{ header: { name: 'sub/', type: 'directory' } }], /"sub\/".*directory/));
  it('rejects path traversal', () =>
    rejects([{ header: { name: '../escape.json', type: 'file' }, content: Buffer.from('{}') }], /"\.\.\/escape\.json".*path separator/));
  it('rejects a nested path', () =>
    rejects([{ header: { name: 'a/b.json', type: 'file' }, content: Buffer.from('{}') }], /"a\/b\.json".*path separator/));
  it('rejects an absolute path', () =>
    rejects([{ header: { name: '/etc/cron.d/x', type: 'file' }, content: Buffer.from('x') }], /"\/etc\/cron\.d\/x"/));
  it('rejects a dotfile', () => rejects([{ header: { name: '.bashrc', type: 'file' }, content: Buffer.from('x') }], /"\.bashrc".*dotfile/));
  it('rejects a name over 255 bytes', () =>
    rejects([{ header: { name: `${'k'.repeat(300)}.json`, type: 'file' }, content: Buffer.from('{}') }], /over 255 bytes/));
  it('rejects an oversize entry before reading it', () =>
    rejects(
      [{ header: { name: 'big.bin', type: 'file', size: MAX_FILE_BYTES + 1 }, content: Buffer.alloc(MAX_FILE_BYTES + 1) }],
      /"big\.bin".*over the/,
    ));
  it('rejects a name given twice', () => rejects([good, good], /twice/));
  it('rejects a torn JSON entry', () =>
    rejects([{ header: { name: 'session-1.json', type: 'file' }, content: Buffer.from('{"half') }], /"session-1\.json".*JSON/));
  it('rejects a creds.json that is not a creds object', () =>
    rejects([{ header: { name: 'creds.json', type: 'file' }, content: Buffer.from('{}') }], /creds/));

  it('rejects input that is not a tar', async () => {
    await assert.rejects(parseArchive(Buffer.from('this is not a tar archive at all'.repeat(40))), IntegrityError);
    await assert.rejects(parseArchive(Buffer.alloc(0)), /empty/);
    await assert.rejects(parseArchive(Buffer.from([0x1f, 0x8b, 1, 2, 3])), /gzip/);
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
    for (const cut of [ends[13]! + 100, ends[13]! + 512 + 3, ends[20]! - 1, 1, 511])
      await refused(data.subarray(0, cut), /cut short|not a valid tar/);
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

  it('accepts an export of no files (just the marker)', async () => {
    assert.equal((await parseArchive(await packArchive([], new Date(0)))).files.size, 0);
  });
});
