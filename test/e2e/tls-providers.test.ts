// Provider-shaped connection settings against a real TLS-only PostgreSQL with a certificate from a private
// CA (issue 14): each must mean what it means to psql, or be refused at once (64) without a secret.
//   - sslmode=no-verify (Heroku-style self-signed servers): encrypt, do not verify.
//   - a password with unencoded special characters: refused, nothing after the user name shown;
//     the same password percent-encoded works.
//   - channel_binding=require (Neon's default): only SCRAM-SHA-256-PLUS; a server asking for a
//     cleartext password, or trusting us, is refused before the password is sent.
//   - the PG* variables alone (a Bitnami or CloudNativePG Secret), with PGPASSWORD or a pgpass file.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, messages, runCli, type CliResult } from '../../harness/cli.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { secretPieces } from '../support/secrets.js';
import { skipWithoutOpenssl, startTlsServer, type TlsServer } from '../support/tls.js';

/** The issue's password: every character a URL gives a meaning to. */
const PASSWORD = 'p@ss#w%rd/1?';
const CLEARTEXT_PASSWORD = 'Cl3ar-Only-Pw';
const HBA = [
  'hostssl all keeper_cleartext 127.0.0.1/32 password',
  'hostssl all keeper_trust 127.0.0.1/32 trust',
  'hostssl all all 127.0.0.1/32 scram-sha-256',
].join('\n');

function assertNoSecret(result: CliResult, secret: string): void {
  const output = result.stdout + result.stderr;
  for (const piece of secretPieces(secret))
    assert.ok(!output.includes(piece), `${JSON.stringify(piece)} of the password is in the output:\n${output}`);
}

describe('provider-shaped connection settings against a TLS-only server', { skip: skipWithoutOpenssl }, () => {
  let tls: TlsServer;
  let ca = '';
  let port = 0;

  before(async () => {
    tls = await startTlsServer(`${HBA}\n`);
    ca = path.join(tls.certs, 'ca.crt');
    port = Number(tls.base.port);
    const admin = new pg.Client({ connectionString: tls.base.toString(), ssl: { rejectUnauthorized: false } });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE keeper1 LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`CREATE ROLE keeper_cleartext LOGIN PASSWORD '${CLEARTEXT_PASSWORD}'`);
      await admin.query('CREATE ROLE keeper_trust LOGIN');
      await admin.query('CREATE DATABASE app');
      await admin.query('GRANT ALL ON DATABASE app TO keeper1, keeper_cleartext, keeper_trust');
    } finally {
      await admin.end();
    }
  });

  after(async () => {
    await tls?.stop();
  });

  const at = (user: string, password: string | null, query: string) =>
    `postgres://${user}${password === null ? '' : `:${encodeURIComponent(password)}`}@127.0.0.1:${port}/app${query ? `?${query}` : ''}`;

  it('sslmode=no-verify encrypts without verifying, as node-postgres documents it for Heroku-style servers', async () => {
    const env = cliEnv(at('keeper1', PASSWORD, 'sslmode=no-verify'), { KEEPER_SESSION_ID: 'no-verify' });
    const dir = await tempDir('no-verify-bot');
    await writeSession(dir, { preKeys: 2 });
    const backup = await runCli(['backup', '--dir', dir], { env });
    assert.equal(backup.code, 0, backup.stderr);
    const status = await runCli(['status'], { env });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^no-verify +1 /m);
  });

  it(
    "the issue's unencoded password is a usage error naming " + 'percent-encoding, with nothing after the user name and no retries',
    async () => {
      const raw = `postgres://keeper1:${PASSWORD}@127.0.0.1:${port}/app`;
      const result = await runCli(['restore', '--dir', await tempDir('unencoded'), '--wait', '30'], { env: cliEnv(raw) });
      assert.equal(result.code, 64, result.stdout + result.stderr);
      const text = messages(result.stdout + result.stderr);
      assert.match(text, /DATABASE_URL \(postgres:\/\/keeper1@…\) does not parse unambiguously.*percent-encode special characters/);
      assert.doesNotMatch(text, /retrying/);
      assertNoSecret(result, PASSWORD);
    },
  );

  it('the same password percent-encoded is that password: backup and restore work', async () => {
    const env = cliEnv(at('keeper1', PASSWORD, `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`), {
      KEEPER_SESSION_ID: 'encoded',
    });
    const dir = await tempDir('encoded-bot');
    await writeSession(dir, { preKeys: 3 });
    assert.equal((await runCli(['backup', '--dir', dir], { env })).code, 0);
    const target = await tempDir('encoded-restored');
    const restore = await runCli(['restore', '--dir', target], { env });
    assert.equal(restore.code, 0, restore.stdout);
    assert.deepEqual(await readTree(target), await readTree(dir));
  });

  it('channel_binding=require against a server that asks for a cleartext password: refused at once (exit 2), the password not sent', async () => {
    // The server does accept this password in cleartext: without channel_binding=require the keeper gets in.
    const plain = await runCli(['status', '--schema', 'cleartext'], {
      env: cliEnv(at('keeper_cleartext', CLEARTEXT_PASSWORD, 'sslmode=require')),
    });
    assert.equal(plain.code, 0, plain.stderr);
    const result = await runCli(['restore', '--dir', await tempDir('cleartext'), '--schema', 'cleartext', '--wait', '30'], {
      env: cliEnv(at('keeper_cleartext', CLEARTEXT_PASSWORD, 'sslmode=require&channel_binding=require')),
    });
    assert.equal(result.code, 2, result.stdout);
    const text = messages(result.stdout);
    assert.match(
      text,
      /refused to authenticate to postgres:\/\/keeper_cleartext@127\.0\.0\.1:\d+\/app: channel_binding=require, but the server asked for the password in cleartext; nothing was sent/,
    );
    assert.doesNotMatch(text, /retrying/);
    assertNoSecret(result, CLEARTEXT_PASSWORD);
  });

  it('channel_binding=require against a server that lets us in without a password (trust): refused', async () => {
    const result = await runCli(['status', '--schema', 'trusted'], {
      env: cliEnv(at('keeper_trust', null, 'sslmode=require&channel_binding=require')),
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(messages(result.stderr), /channel_binding=require, but the server let us in without channel binding/);
  });

  it("channel_binding=require (Neon's default string) with scram-sha-256 over TLS: SCRAM-SHA-256-PLUS, it works", async () => {
    const result = await runCli(['status'], { env: cliEnv(at('keeper1', PASSWORD, 'sslmode=require&channel_binding=require')) });
    assert.equal(result.code, 0, result.stderr);
  });

  it('sslmode=allow: plaintext first, and TLS when the server accepts only TLS (as libpq)', async () => {
    const result = await runCli(['status'], { env: cliEnv(at('keeper1', PASSWORD, 'sslmode=allow')) });
    assert.equal(result.code, 0, result.stderr);
  });

  it('the PG* variables alone, as a Bitnami or CloudNativePG Secret provides them: backup and restore', async () => {
    const variables = {
      DATABASE_URL: undefined,
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGDATABASE: 'app',
      PGUSER: 'keeper1',
      PGPASSWORD: PASSWORD,
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: ca,
      PGAPPNAME: 'bot-keeper',
      PGCONNECT_TIMEOUT: '5',
      KEEPER_SESSION_ID: 'pg-variables',
    };
    const env = cliEnv('', variables);
    const dir = await tempDir('pg-variables-bot');
    await writeSession(dir, { preKeys: 3 });
    const backup = await runCli(['backup', '--dir', dir], { env });
    assert.equal(backup.code, 0, backup.stderr);
    assert.doesNotMatch(backup.stderr, /embedded/, 'not the embedded default');
    const target = await tempDir('pg-variables-restored');
    assert.equal((await runCli(['restore', '--dir', target], { env })).code, 0);
    assert.deepEqual(await readTree(target), await readTree(dir));

    // CloudNativePG's Secret also holds a pgpass line: PGPASSFILE instead of PGPASSWORD.
    const pgpass = path.join(await tempDir('pgpass'), 'pgpass');
    await writeFile(pgpass, `127.0.0.1:${port}:app:keeper1:${PASSWORD.replace(/[:\\]/g, '\\$&')}\n`, { mode: 0o600 });
    const fromFile = await runCli(['status'], { env: cliEnv('', { ...variables, PGPASSWORD: undefined, PGPASSFILE: pgpass }) });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.match(fromFile.stdout, /^pg-variables +1 /m);
  });
});
