// sslmode and sslrootcert → the TLS options node-postgres really uses, for the first connection attempt
// and for libpq's fallback, so each mode means what it means in libpq.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { connectionSettings } from '../../src/db/settings.js';
import { tlsPlan, type TlsPlan } from '../../src/db/tls.js';
import { UsageError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';

const BASE = 'postgres://keeper:pw@db.example.com:5432/bots';

interface Tls {
  ca?: string;
  rejectUnauthorized?: boolean;
  checkServerIdentity?: unknown;
}

function planFor(query: string, env: Record<string, string> = {}): TlsPlan {
  return tlsPlan(connectionSettings(`${BASE}${query ? `?${query}` : ''}`, env)!);
}

/** The ssl options of the first attempt, or false for a plaintext connection. */
function tlsFor(query: string): Tls | false {
  return planFor(query).first as Tls | false;
}

/** Verification on: the CA is checked (no rejectUnauthorized: false) and the host name too (Node's default check). */
function verifiesHost(tls: Tls | false | null): boolean {
  return typeof tls === 'object' && tls !== null && tls.rejectUnauthorized !== false && tls.checkServerIdentity === undefined;
}

const usageError = (pattern: RegExp) => (error: unknown) =>
  error instanceof UsageError && error.exitCode === 64 && pattern.test(error.message);

describe('sslmode with its libpq meaning', async () => {
  const dir = await tempDir('ssl-modes');
  const ca = path.join(dir, 'ca.crt');
  await writeFile(ca, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');

  it('sslrootcert=system alone means verify-full against the system CAs (never a plaintext connection)', () => {
    const plan = planFor('sslrootcert=system');
    assert.ok(verifiesHost(plan.first as Tls), JSON.stringify(plan));
    assert.equal(plan.fallback, null, 'no plaintext fallback');
    assert.equal((plan.first as Tls).ca, undefined, 'the default (system) CAs');
    assert.equal(connectionSettings(`${BASE}?sslrootcert=system`, {})!.sslmode, 'verify-full');
    assert.ok(verifiesHost(tlsFor('sslmode=verify-full&sslrootcert=system')));
  });

  for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca']) {
    it(`sslrootcert=system with sslmode=${mode} is a usage error, as in libpq 16+`, () => {
      assert.throws(
        () => planFor(`sslmode=${mode}&sslrootcert=system`),
        usageError(new RegExp(`sslmode=${mode}.*needs sslmode=verify-full|needs sslmode=verify-full.*sslmode=${mode}`)),
      );
    });
  }

  it('require encrypts without verifying; with sslrootcert it verifies the CA but not the host (verify-ca)', () => {
    const require = tlsFor('sslmode=require');
    assert.ok(typeof require === 'object' && require.rejectUnauthorized === false);
    for (const query of [`sslmode=require&sslrootcert=${ca}`, `sslmode=verify-ca&sslrootcert=${ca}`]) {
      const tls = tlsFor(query);
      assert.ok(
        typeof tls === 'object' &&
          tls.rejectUnauthorized !== false &&
          typeof tls.checkServerIdentity === 'function' &&
          tls.ca?.includes('not checked here'),
        query,
      );
    }
  });

  it('verify-full checks the CA and the host name', () => {
    const tls = tlsFor(`sslmode=verify-full&sslrootcert=${ca}`);
    assert.ok(verifiesHost(tls) && (tls as Tls).ca?.includes('not checked here'));
  });

  it("no sslmode is libpq's prefer: TLS without verification first, plaintext when the server has no TLS", () => {
    for (const plan of [planFor(''), planFor('sslmode=prefer')]) {
      assert.ok(typeof plan.first === 'object' && plan.first.rejectUnauthorized === false, JSON.stringify(plan));
      assert.equal(plan.fallback, false);
    }
  });

  it('allow is plaintext first, TLS when the server insists; disable is plaintext only', () => {
    const allow = planFor('sslmode=allow');
    assert.equal(allow.first, false);
    assert.ok(typeof allow.fallback === 'object' && allow.fallback !== null);
    assert.deepEqual(planFor('sslmode=disable'), { first: false, fallback: null });
  });

  it("no-verify (node-postgres' value for self-signed servers) encrypts and never verifies; with sslrootcert it is refused", () => {
    const plan = planFor('sslmode=no-verify');
    assert.ok(typeof plan.first === 'object' && plan.first.rejectUnauthorized === false);
    assert.equal(plan.fallback, null, 'never plaintext');
    assert.throws(() => planFor(`sslmode=no-verify&sslrootcert=${ca}`), usageError(/no-verify never verifies/));
  });

  it('PGSSLMODE and PGSSLROOTCERT apply under a URL that does not set them; the URL wins', () => {
    assert.equal(planFor('', { PGSSLMODE: 'disable' }).first, false);
    assert.ok(verifiesHost(planFor('', { PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca }).first as Tls));
    assert.ok(typeof planFor('sslmode=require', { PGSSLMODE: 'disable' }).first === 'object');
  });

  it('an unreadable sslrootcert is a usage error before any connection; verify-ca without one too', () => {
    assert.throws(
      () => planFor(`sslmode=verify-full&sslrootcert=${path.join(dir, 'missing.crt')}`),
      usageError(/cannot read sslrootcert=/),
    );
    assert.throws(() => planFor('sslmode=verify-ca'), usageError(/verify-ca needs sslrootcert/));
  });

  it('an sslmode libpq does not have is refused, naming it', () => {
    assert.throws(() => planFor('sslmode=true'), usageError(/sslmode in DATABASE_URL: the value "true" is not supported/));
  });
});
