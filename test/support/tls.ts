// A PostgreSQL of the test's own that accepts only TLS, with certificates from a CA made here by the
// openssl CLI. Used by the TLS tests; CI installs openssl and sets KEEPER_TEST_REQUIRE_TLS=1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, chown, copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded, type EmbeddedServer } from '../../src/embedded-postgres.js';
import { testLog } from './log.js';

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
/** CI installs openssl and sets this, so the TLS tests cannot silently skip there. */
export const tlsRequired = process.env['KEEPER_TEST_REQUIRE_TLS'] === '1';
/** The `skip` option of a describe() that needs openssl. */
export const skipWithoutOpenssl =
  !hasOpenssl && !tlsRequired ? 'the openssl CLI is not installed (CI installs it and runs this file)' : false;

function openssl(cwd: string, ...args: string[]): void {
  const result = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A server certificate `name`.crt/.key for `san`, signed by ca.crt. */
async function serverCertificate(dir: string, name: string, subject: string, san: string): Promise<void> {
  openssl(dir, 'req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${subject}`);
  await writeFile(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
}

/** A CA, a server certificate it signs for 127.0.0.1, one it signs for db.invalid only, and an unrelated CA. */
async function makeCertificates(dir: string): Promise<void> {
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=keeper test CA');
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=some other CA');
  await serverCertificate(dir, 'server', '127.0.0.1', 'IP:127.0.0.1');
  await serverCertificate(dir, 'wrong-host', 'db.invalid', 'DNS:db.invalid');
}

export interface TlsServer {
  server: EmbeddedServer;
  /** The directory with ca.crt, other-ca.crt and the server certificates. */
  certs: string;
  /** The server's superuser URL (no sslmode). */
  base: URL;
  /** Makes certs/`name`.crt and .key the server's certificate (read at start and at every reload). */
  installCertificate(name: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a server that accepts only the connections `hba` (pg_hba.conf lines, hostssl only) allows,
 * presenting a certificate for 127.0.0.1 signed by certs/ca.crt.
 */
export async function startTlsServer(hba = 'hostssl all all 127.0.0.1/32 scram-sha-256\n'): Promise<TlsServer> {
  assert.ok(hasOpenssl, 'KEEPER_TEST_REQUIRE_TLS=1 but there is no openssl CLI');
  const certs = await mkdtemp(path.join(os.tmpdir(), 'bk-tls-certs-'));
  await makeCertificates(certs);
  // Under os.tmpdir() and world-traversable: as root the server runs as `postgres` and must reach it.
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'bk-tls-pg-'));
  await chmod(dataDir, 0o755);
  await (await startEmbedded(dataDir, testLog)).stop(); // creates the cluster
  const cluster = path.join(dataDir, 'pg');
  const installCertificate = async (name: string) => {
    const owner = await stat(cluster);
    for (const ext of ['crt', 'key']) {
      const file = path.join(cluster, `server.${ext}`);
      await copyFile(path.join(certs, `${name}.${ext}`), file);
      await chown(file, owner.uid, owner.gid);
      await chmod(file, 0o600);
    }
  };
  await installCertificate('server');
  await writeFile(path.join(cluster, 'pg_hba.conf'), hba);
  const server = await startEmbedded(dataDir, testLog, {
    settings: { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' },
  });
  return {
    server,
    certs,
    base: new URL(server.url),
    installCertificate,
    async stop() {
      await server.stop();
      for (const dir of [certs, dataDir]) await rm(dir, { recursive: true, force: true });
    },
  };
}
