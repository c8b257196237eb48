// TLS to PostgreSQL: a server of our own that accepts only TLS (hostssl), with a certificate from a
// CA made here by the openssl CLI. verify-full and require work; a wrong CA is refused at once; a
// certificate for another host name is refused by verify-full only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, chown, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../../src/db/embedded.js';
import { writeSession } from '../support/baileys.js';
import { cliEnv, messages, runCli } from '../support/cli.js';
import { readTree, tempDir } from '../support/fs.js';
import { testLog } from '../support/log.js';
import { waitFor } from '../support/sidecar.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
// CI installs openssl and sets this, so the test cannot silently skip there.
const required = process.env['KEEPER_TEST_REQUIRE_TLS'] === '1';

function openssl(cwd: string, ...args: string[]): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A server certificate `name`.crt/.key for `san`, signed by ca.crt. */
async function serverCertificate(dir: string, name: string, subject: string, san: string): Promise<void> {
  openssl(dir, 'req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${subject}`);
  await writeFile(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

/** A CA, a server certificate it signs for 127.0.0.1, one it signs for db.invalid only, and an unrelated CA. */
async function makeCertificates(dir: string): Promise<void> {
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=keeper test CA');
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=some other CA');
  await serverCertificate(dir, 'server', '127.0.0.1', 'IP:127.0.0.1');
  await serverCertificate(dir, 'wrong-host', 'db.invalid', 'DNS:db.invalid');
}

describe('TLS to PostgreSQL', { skip: !hasOpenssl && !required ? 'the openssl CLI is not installed (CI installs it and runs this file)' : false }, () => {
  let server: EmbeddedServer | null = null;
  let certs = '';
  let dataDir = '';
  let base: URL;

  before(async () => {
    assert.ok(hasOpenssl, 'KEEPER_TEST_REQUIRE_TLS=1 but there is no openssl CLI');
    certs = await mkdtemp(path.join(os.tmpdir(), 'bk-tls-certs-'));
    await makeCertificates(certs);
    // Under os.tmpdir() and world-traversable: as root the server runs as `postgres` and must reach it.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'bk-tls-pg-'));
    await chmod(dataDir, 0o755);
    await (await startEmbedded(dataDir, testLog)).stop(); // creates the cluster
    const cluster = path.join(dataDir, 'pg');
    await installCertificate('server');
    // Only TLS connections are accepted: a round trip that works proves it went over TLS.
    await writeFile(path.join(cluster, 'pg_hba.conf'), 'hostssl all all 127.0.0.1/32 scram-sha-256\n');
    server = await startEmbedded(dataDir, testLog, { settings: { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' } });
    base = new URL(server.url);
  });

  after(async () => {
    await server?.stop();
    for (const dir of [certs, dataDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Makes certs/`name`.crt and .key the server's certificate (read at start and at every reload). */
  async function installCertificate(name: string): Promise<void> {
    const cluster = path.join(dataDir, 'pg');
    const owner = await stat(cluster);
    for (const ext of ['crt', 'key']) {
      const file = path.join(cluster, `server.${ext}`);
      await copyFile(path.join(certs, `${name}.${ext}`), file);
      await chown(file, owner.uid, owner.gid);
      await chmod(file, 0o600);
    }
  }

  /** The subjectAltName of the certificate the server presents now. */
  async function servedAltName(): Promise<string> {
    let seen = '';
    const client = new pg.Client({
      connectionString: base.toString(),
      ssl: { ca: await readFile(path.join(certs, 'ca.crt'), 'utf8'), checkServerIdentity: (_host, cert) => ((seen = cert.subjectaltname ?? ''), undefined) },
    });
    await client.connect();
    await client.end();
    return seen;
  }

  const url = (params: Record<string, string>) => {
    const target = new URL(base);
    for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
    return target.toString();
  };

  it('round trip with sslmode=verify-full and sslrootcert: backup, verify, restore', async () => {
    const env = cliEnv(url({ sslmode: 'verify-full', sslrootcert: path.join(certs, 'ca.crt') }), { KEEPER_SESSION_ID: 'tls' });
    const dir = await tempDir('tls-bot');
    await writeSession(dir, { preKeys: 5 });
    const backup = await runCli(['backup', '--dir', dir], { env });
    assert.equal(backup.code, 0, backup.stderr);
    assert.equal((await runCli(['verify'], { env })).code, 0);
    const target = await tempDir('tls-restored');
    const restore = await runCli(['restore', '--dir', target], { env });
    assert.equal(restore.code, 0, restore.stdout);
    assert.deepEqual(await readTree(target), await readTree(dir));
  });

  it('sslmode=require encrypts without verifying (libpq semantics), so a self-signed server works', async () => {
    const result = await runCli(['status'], { env: cliEnv(url({ sslmode: 'require' })) });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^tls +1 /m);
  });

  it('verify-full refuses a server whose certificate another CA signed: exit 2 at once, no retries', async () => {
    const env = cliEnv(url({ sslmode: 'verify-full', sslrootcert: path.join(certs, 'other-ca.crt') }));
    const result = await runCli(['restore', '--dir', await tempDir('tls-refused'), '--wait', '60'], { env });
    assert.equal(result.code, 2, result.stdout);
    const text = messages(result.stdout);
    assert.match(text, /TLS to PostgreSQL at .* failed: [A-Z_]+: .*Check sslmode and sslrootcert/);
    assert.doesNotMatch(text, /retrying/);
    assert.doesNotMatch(text, new RegExp(decodeURIComponent(base.password)), 'the password is not in the message');
  });

  it('require with the wrong sslrootcert is verified against it (like verify-ca) and refused too', async () => {
    const result = await runCli(['status'], { env: cliEnv(url({ sslmode: 'require', sslrootcert: path.join(certs, 'other-ca.crt') })) });
    assert.equal(result.code, 2);
    assert.match(messages(result.stderr), /TLS to PostgreSQL at .* failed/);
  });

  it('without sslmode the TLS-only server refuses, and the message says to add it', async () => {
    const result = await runCli(['status'], { env: cliEnv(base.toString()) });
    assert.equal(result.code, 2);
    assert.match(messages(result.stderr), /accepts only TLS connections: add sslmode=verify-full/);
  });

  // Last: it reissues the server's certificate. The CA is right; only the name differs.
  it('verify-full checks the host name: a certificate for db.invalid reached as 127.0.0.1 is refused (exit 2); verify-ca and require accept it', async () => {
    await installCertificate('wrong-host');
    process.kill(server!.pid, 'SIGHUP'); // PostgreSQL reloads its certificate on SIGHUP
    await waitFor(async () => ((await servedAltName()) === 'DNS:db.invalid' ? true : null), 30_000, () => 'the server still presents its old certificate');
    const ca = path.join(certs, 'ca.crt');
    const refused = await runCli(['status'], { env: cliEnv(url({ sslmode: 'verify-full', sslrootcert: ca })) });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(messages(refused.stderr), /TLS to PostgreSQL at .* failed: ERR_TLS_CERT_ALTNAME_INVALID: .*127\.0\.0\.1.*verify-full needs the host name in it/);
    const weaker: Record<string, string>[] = [{ sslmode: 'verify-ca', sslrootcert: ca }, { sslmode: 'require', sslrootcert: ca }, { sslmode: 'require' }];
    for (const params of weaker) {
      const accepted = await runCli(['status'], { env: cliEnv(url(params)) });
      assert.equal(accepted.code, 0, `${JSON.stringify(params)}: ${accepted.stderr}`);
      assert.match(accepted.stdout, /^tls +1 /m);
    }
  });

  it('an sslrootcert that cannot be read is a usage error (64)', async () => {
    const result = await runCli(['status'], { env: cliEnv(url({ sslmode: 'verify-full', sslrootcert: path.join(certs, 'missing.crt') })) });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /cannot read sslrootcert=.*missing\.crt from the database URL \(ENOENT\)/);
  });
});
