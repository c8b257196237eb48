// TLS to PostgreSQL: a server of our own that accepts only TLS (hostssl), with a certificate from a
// CA made here by the openssl CLI. verify-full and require work; a wrong CA is refused at once; a
// certificate for another host name is refused by verify-full only.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli } from '../../harness/cli.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { waitFor } from '../../harness/sidecar.js';
import { skipWithoutOpenssl, startTlsServer, type TlsServer } from '../support/tls.js';

describe('TLS to PostgreSQL', { skip: skipWithoutOpenssl }, () => {
  let tls: TlsServer | null = null;
  let certs = '';
  let base: URL;

  before(async () => {
    // Only TLS connections are accepted: a round trip that works proves it went over TLS.
    tls = await startTlsServer();
    certs = tls.certs;
    base = tls.base;
  });

  after(async () => {
    await tls?.stop();
  });

  /** The subjectAltName of the certificate the server presents now. */
  async function servedAltName(): Promise<string> {
    let seen = '';
    const client = new pg.Client({
      connectionString: base.toString(),
      ssl: {
        ca: await readFile(path.join(certs, 'ca.crt'), 'utf8'),
        checkServerIdentity: (_host, cert) => {
          seen = cert.subjectaltname ?? '';
          return undefined;
        },
      },
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

  it("without sslmode it is libpq's prefer: the TLS-only server is reached over TLS, as psql reaches it", async () => {
    const result = await runCli(['status'], { env: cliEnv(base.toString()) });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^tls +1 /m);
  });

  it('sslmode=disable: the TLS-only server refuses, and the message says to add TLS', async () => {
    const result = await runCli(['status'], { env: cliEnv(url({ sslmode: 'disable' })) });
    assert.equal(result.code, 2);
    assert.match(messages(result.stderr), /accepts only TLS connections: add sslmode=verify-full/);
  });

  // Last: it reissues the server's certificate. The CA is right; only the name differs.
  it(
    'verify-full checks the host name: a certificate for db.invalid reached ' +
      'as 127.0.0.1 is refused (exit 2); verify-ca and require accept it',
    async () => {
      await tls!.installCertificate('wrong-host');
      process.kill(tls!.server.pid, 'SIGHUP'); // PostgreSQL reloads its certificate on SIGHUP
      await waitFor(
        async () => ((await servedAltName()) === 'DNS:db.invalid' ? true : null),
        30_000,
        () => 'the server still presents its old certificate',
      );
      const ca = path.join(certs, 'ca.crt');
      const refused = await runCli(['status'], { env: cliEnv(url({ sslmode: 'verify-full', sslrootcert: ca })) });
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        messages(refused.stderr),
        /TLS to PostgreSQL at .* failed: ERR_TLS_CERT_ALTNAME_INVALID: .*127\.0\.0\.1.*verify-full needs the host name in it/,
      );
      const weaker: Record<string, string>[] = [
        { sslmode: 'verify-ca', sslrootcert: ca },
        { sslmode: 'require', sslrootcert: ca },
        { sslmode: 'require' },
      ];
      for (const params of weaker) {
        const accepted = await runCli(['status'], { env: cliEnv(url(params)) });
        assert.equal(accepted.code, 0, `${JSON.stringify(params)}: ${accepted.stderr}`);
        assert.match(accepted.stdout, /^tls +1 /m);
      }
    },
  );

  it('an sslrootcert that cannot be read is a usage error (64)', async () => {
    const result = await runCli(['status'], { env: cliEnv(url({ sslmode: 'verify-full', sslrootcert: path.join(certs, 'missing.crt') })) });
    assert.equal(result.code, 64);
    assert.match(result.stderr, /cannot read sslrootcert=.*missing\.crt \(sslrootcert in DATABASE_URL, ENOENT\)/);
  });
});
