// Every restore outcome of README "restore — the init container", with its exit code, through the real CLI.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { query } from '../../harness/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';

async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('restore outcomes and exit codes', async () => {
  const url = await freshDatabase('outcomes');
  const env = cliEnv(url);
  const bot = await tempDir('bot');
  const auth = await writeSession(bot, { preKeys: 5 });
  assert.equal((await runCli(['backup', '--dir', bot, '--session', 'main'], { env })).code, 0);

  it('does nothing (exit 0) when the directory already holds a valid creds.json', async () => {
    const dir = await tempDir('has-creds');
    await writeSession(dir, { preKeys: 1 });
    const before = await readTree(dir);
    const result = await runCli(['restore', '--dir', dir, '--session', 'main'], { env });
    assert.equal(result.code, 0);
    assert.match(result.stdout, /already holds a valid creds\.json/);
    assert.deepEqual(await readTree(dir), before);
  });

  it('overwrites that directory with --force', async () => {
    const dir = await tempDir('force');
    await writeSession(dir, { preKeys: 1 });
    const result = await runCli(['restore', '--dir', dir, '--session', 'main', '--force'], { env });
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(await readTree(dir), await readTree(bot));
  });

  it('restores over a torn creds.json (it is not a valid login)', async () => {
    const dir = await tempDir('torn-dir');
    await writeFile(path.join(dir, 'creds.json'), '{"noiseKey":');
    const result = await runCli(['restore', '--dir', dir, '--session', 'main'], { env });
    assert.equal(result.code, 0, result.stdout);
    assert.deepEqual(await readTree(dir), await readTree(bot));
  });

  it('exits 0 and says the bot will pair by QR when there is no backup; 3 with --require-backup', async () => {
    const dir = path.join(await tempDir('empty'), 'auth_info');
    const plain = await runCli(['restore', '--dir', dir, '--session', 'never-backed-up'], { env });
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /no backup.*QR/);
    const required = await runCli(['restore', '--dir', dir, '--session', 'never-backed-up', '--require-backup'], { env });
    assert.equal(required.code, 3);
    assert.match(required.stdout, /--require-backup/);
  });

  it('--require-backup also refuses (exit 3, nothing written) a stored point without a usable creds.json', async () => {
    // A head emptied in the database (every row gone, the file count set to 0) restores nothing: the
    // bot would start unpaired exactly as with no backup at all.
    const empty = await tempDir('emptied-bot');
    await writeSession(empty, { preKeys: 2 });
    assert.equal((await runCli(['backup', '--dir', empty, '--session', 'emptied'], { env })).code, 0);
    await query(url, "DELETE FROM baileys_keeper.files WHERE session_id = 'emptied'");
    await query(url, "UPDATE baileys_keeper.generations SET total_files = 0 WHERE session_id = 'emptied'");
    const dir = path.join(await tempDir('emptied'), 'auth_info');
    const lenient = await runCli(['restore', '--dir', dir, '--session', 'emptied'], { env });
    assert.equal(lenient.code, 0, lenient.stdout + lenient.stderr);
    for (const args of [[], ['--dry-run']]) {
      const required = await runCli(['restore', '--dir', dir, '--session', 'emptied', '--require-backup', ...args], { env });
      assert.equal(required.code, 3, required.stdout + required.stderr);
      assert.match(
        messages(required.stdout + required.stderr),
        /generation 1 of session emptied holds no creds\.json: the bot would start unpaired; --require-backup was given/,
      );
    }
    assert.deepEqual(await readdir(dir), []);
  });

  it('retries an unreachable database until --wait runs out, then exits 2 without touching the dir', async () => {
    const dir = path.join(await tempDir('down'), 'auth_info');
    const started = Date.now();
    const result = await runCli(['restore', '--dir', dir, '--wait', '2'], {
      env: cliEnv(`postgres://keeper:secret@127.0.0.1:${await closedPort()}/keeper`),
    });
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.ok(Date.now() - started >= 2000, 'it kept retrying for --wait seconds');
    assert.match(result.stdout, /database unreachable, retrying/);
    assert.match(
      result.stdout,
      /cannot reach PostgreSQL at postgres:\/\/keeper@127\.0\.0\.1:\d+\/keeper /,
      'the target without its password',
    );
    assert.doesNotMatch(result.stdout + result.stderr, /secret/);
    await assert.rejects(readdir(dir), /ENOENT/);
  });

  it('retries a connection lost after connecting (a failover mid-restore) for --wait, then exits 2', async () => {
    // A proxy that cuts every connection once the restore starts reading, then refuses new ones.
    const target = new URL(url);
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
      sockets.add(client).add(upstream);
      client.on('data', (chunk) => {
        if (chunk.toString('latin1').includes('FROM "baileys_keeper".sessions')) {
          proxy.close();
          for (const socket of sockets) socket.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      for (const socket of [client, upstream])
        socket
          .on('error', () => undefined)
          .on('close', () => {
            client.destroy();
            upstream.destroy();
          });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const viaProxy = new URL(url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String((proxy.address() as net.AddressInfo).port);
    const dir = path.join(await tempDir('failover'), 'auth_info');
    const started = Date.now();
    const result = await runCli(['restore', '--dir', dir, '--session', 'main', '--wait', '2'], { env: cliEnv(viaProxy.toString()) });
    assert.equal(result.code, 2, result.stdout);
    assert.ok(Date.now() - started >= 1500, 'it retried');
    assert.match(result.stdout, /database connection lost, retrying|database unreachable, retrying/);
    await assert.rejects(readdir(dir), /ENOENT/);
  });

  it('fails at once (exit 2) on a wrong password, naming what to fix', async () => {
    const bad = new URL(url);
    bad.password = 'wrong-password';
    const result = await runCli(['restore', '--dir', await tempDir('auth'), '--wait', '30'], { env: cliEnv(bad.toString()) });
    assert.equal(result.code, 2);
    assert.match(result.stdout, /authentication .* failed: check the user and password/);
    assert.doesNotMatch(result.stdout, /wrong-password/);
  });

  it('restores an older point with --generation and --at, and exits 3 for one not retained', async () => {
    auth.state.creds.accountSyncCounter = 42;
    await auth.saveCreds();
    assert.equal((await runCli(['backup', '--dir', bot, '--session', 'main'], { env })).code, 0);
    const old = await tempDir('gen1');
    assert.equal((await runCli(['restore', '--dir', old, '--session', 'main', '--generation', '1'], { env })).code, 0);
    assert.equal(JSON.parse(await readFile(path.join(old, 'creds.json'), 'utf8')).accountSyncCounter, 0);
    const [row] = await query<{ created_at: Date }>(
      url,
      "SELECT created_at FROM baileys_keeper.generations WHERE session_id = 'main' AND generation = 1",
    );
    const byTime = await tempDir('at');
    assert.equal((await runCli(['restore', '--dir', byTime, '--session', 'main', '--at', row!.created_at.toISOString()], { env })).code, 0);
    assert.deepEqual(await readTree(byTime), await readTree(old));
    const missing = await runCli(['restore', '--dir', await tempDir('missing'), '--session', 'main', '--generation', '99'], { env });
    assert.equal(missing.code, 3);
    assert.match(missing.stdout, /generation 99 .* not retained; retained generations are 1\.\.2/);
  });

  it('exits 3 for a point not retained even when the directory holds a login (restore, --dry-run, export)', async () => {
    const dir = await tempDir('kept-login');
    await writeSession(dir, { preKeys: 1 });
    const before = await readTree(dir);
    const unknownSession = ['restore', '--dir', dir, '--session', 'nobody', '--generation', '1'];
    for (const args of [
      ['restore', '--dir', dir, '--session', 'main', '--generation', '99'],
      ['restore', '--dir', dir, '--session', 'main', '--generation', '99', '--dry-run'],
      ['restore', '--dir', dir, '--session', 'main', '--at', '2001-01-01T00:00:00Z'],
      ['restore', '--dir', dir, '--session', 'main', '--at', '2001-01-01T00:00:00Z', '--dry-run'],
    ]) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 3, `${args.join(' ')}: ${result.stdout}`);
      assert.match(
        messages(result.stdout),
        /not retained; retained generations are 1\.\.2|no retained generation at or before 2001-.*retained generations are 1\.\.2/,
      );
    }
    const nobody = await runCli(unknownSession, { env });
    assert.equal(nobody.code, 3, nobody.stdout);
    assert.match(messages(nobody.stdout), /generation 1 of session nobody is not retained; it has no backup/);
    assert.deepEqual(await readTree(dir), before, 'the login in the directory is untouched');
    // A point that exists leaves the login alone as before (--force overwrites it).
    const kept = await runCli(['restore', '--dir', dir, '--session', 'main', '--generation', '1'], { env });
    assert.equal(kept.code, 0, kept.stdout);
    assert.match(kept.stdout, /already holds a valid creds\.json/);
    for (const point of [
      ['--generation', '99'],
      ['--at', '2001-01-01T00:00:00Z'],
    ]) {
      const exported = await runCli(['export', '--session', 'main', ...point, '--output', path.join(dir, '..', 'x.tar')], { env });
      assert.equal(exported.code, 3, exported.stderr);
      assert.match(messages(exported.stderr), /retained generations are 1\.\.2/);
    }
  });

  it('lists what it would write with --dry-run and writes nothing', async () => {
    const dir = path.join(await tempDir('dry'), 'auth_info');
    const result = await runCli(['restore', '--dir', dir, '--session', 'main', '--dry-run'], { env });
    assert.equal(result.code, 0);
    assert.match(result.stdout, /write {3}creds\.json/);
    assert.match(result.stdout, /dry run: nothing written/);
    await assert.rejects(readdir(dir), /ENOENT/);
  });

  it('--dry-run does not even finish an interrupted restore', async () => {
    const dir = await tempDir('dry-pending');
    const stage = path.join(dir, '.baileys-keeper-restore-pending');
    await mkdir(stage);
    await writeFile(path.join(stage, 'pre-key-77.json'), '{"staged":true}');
    await writeFile(path.join(stage, '.manifest'), JSON.stringify({ files: ['pre-key-77.json'] }));
    const result = await runCli(['restore', '--dir', dir, '--session', 'main', '--dry-run'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((await readdir(dir)).sort(), ['.baileys-keeper-restore-pending']);
    assert.deepEqual((await readdir(stage)).sort(), ['.manifest', 'pre-key-77.json']);
  });

  it('exits 4 and writes nothing when a stored file fails its checksum', async () => {
    assert.equal((await runCli(['backup', '--dir', bot, '--session', 'tampered'], { env })).code, 0);
    await query(
      url,
      "UPDATE baileys_keeper.files SET content = set_byte(content, 2, 65) WHERE session_id = 'tampered' AND name = 'pre-key-3.json'",
    );
    const dir = path.join(await tempDir('tampered'), 'auth_info');
    const result = await runCli(['restore', '--dir', dir, '--session', 'tampered'], { env });
    assert.equal(result.code, 4, result.stdout);
    assert.match(messages(result.stdout), /"pre-key-3\.json": sha256 mismatch/);
    await assert.rejects(readdir(dir), /ENOENT/);
    const verify = await runCli(['verify', '--session', 'tampered'], { env });
    assert.equal(verify.code, 4);
    assert.match(verify.stdout, /FAILED {2}"pre-key-3\.json": sha256 mismatch/);
  });

  it('exits 4 on a stored name that would escape the directory', async () => {
    assert.equal((await runCli(['backup', '--dir', bot, '--session', 'escape'], { env })).code, 0);
    await query(url, "UPDATE baileys_keeper.files SET name = '../../evil.json' WHERE session_id = 'escape' AND name = 'pre-key-2.json'");
    const parent = await tempDir('escape');
    const result = await runCli(['restore', '--dir', path.join(parent, 'a', 'auth_info'), '--session', 'escape'], { env });
    assert.equal(result.code, 4);
    assert.match(result.stdout, /unsafe file name/);
    await assert.rejects(readFile(path.join(parent, 'evil.json')), /ENOENT/);
  });

  it('exits 64 on bad usage, saying what is wrong', async () => {
    for (const args of [
      ['restore', '--bogus'],
      ['restore', '--wait', 'soon'],
      ['restore', '--session', '../x'],
      ['frobnicate'],
      ['delete'],
    ]) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 64, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /baileys-keeper: \S/);
    }
  });
});
