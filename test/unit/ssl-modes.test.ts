// sslmode and sslrootcert in the database URL → the TLS options node-postgres really uses (parsed by its
// own pg-connection-string), so each mode means what it means in libpq.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'pg-connection-string';
import { withLibpqSslModes } from '../../src/db/connection.js';
import { UsageError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';

const BASE = 'postgres://keeper:pw@db.example.com:5432/bots';

interface Tls {
  ca?: string;
  rejectUnauthorized?: boolean;
  checkServerIdentity?: unknown;
}

/** The ssl options pg ends up with for `query`, or false/undefined for a plaintext connection. */
function tlsFor(query: string): Tls | false | undefined {
  const ssl = parse(withLibpqSslModes(`${BASE}?${query}`)).ssl;
  return ssl === undefined || ssl === false ? ssl : (ssl as Tls);
}

/** Verification on: the CA is checked (no rejectUnauthorized: false) and the host name too (Node's default check). */
function verifiesHost(tls: Tls | false | undefined): boolean {
  return typeof tls === 'object' && tls.rejectUnauthorized !== false && tls.checkServerIdentity === undefined;
}

describe('sslmode with its libpq meaning', async () => {
  const dir = await tempDir('ssl-modes');
  const ca = path.join(dir, 'ca.crt');
  await writeFile(ca, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');

  it('sslrootcert=system alone means verify-full against the system CAs (never a plaintext connection)', () => {
    const tls = tlsFor('sslrootcert=system');
    assert.ok(verifiesHost(tls), JSON.stringify(tls));
    assert.equal((tls as Tls).ca, undefined, 'the default (system) CAs');
    assert.match(withLibpqSslModes(`${BASE}?sslrootcert=system`), /sslmode=verify-full/);
    assert.ok(verifiesHost(tlsFor('sslmode=verify-full&sslrootcert=system')));
  });

  for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca']) {
    it(`sslrootcert=system with sslmode=${mode} is a usage error, as in libpq 16+`, () => {
      assert.throws(
        () => withLibpqSslModes(`${BASE}?sslmode=${mode}&sslrootcert=system`),
        (error: unknown) => error instanceof UsageError && error.exitCode === 64 && error.message.includes(`sslmode=${mode}`) && /needs sslmode=verify-full/.test(error.message),
      );
    });
  }

  it('require encrypts without verifying; with sslrootcert it verifies the CA but not the host (verify-ca)', () => {
    const require = tlsFor('sslmode=require');
    assert.ok(typeof require === 'object' && require.rejectUnauthorized === false);
    for (const query of [`sslmode=require&sslrootcert=${ca}`, `sslmode=verify-ca&sslrootcert=${ca}`]) {
      const tls = tlsFor(query);
      assert.ok(typeof tls === 'object' && tls.rejectUnauthorized !== false && typeof tls.checkServerIdentity === 'function' && tls.ca?.includes('not checked here'), query);
    }
  });

  it('verify-full checks the CA and the host name', () => {
    const tls = tlsFor(`sslmode=verify-full&sslrootcert=${ca}`);
    assert.ok(verifiesHost(tls) && (tls as Tls).ca?.includes('not checked here'));
  });

  it('no TLS parameter leaves the URL alone; disable is plaintext', () => {
    assert.equal(withLibpqSslModes(BASE), BASE);
    assert.equal(tlsFor('sslmode=disable'), false);
  });

  it('an unreadable sslrootcert is a usage error before any connection', () => {
    assert.throws(() => withLibpqSslModes(`${BASE}?sslmode=verify-full&sslrootcert=${path.join(dir, 'missing.crt')}`), (error: unknown) => error instanceof UsageError && /cannot read sslrootcert=/.test(error.message));
  });
});
