// The connection string and the PG* variables are read as libpq reads them; whatever does not read one
// way only, or is not supported, is a usage error (64) that shows nothing after the user name.
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { resolveDatabase } from '../../src/commands/database.js';
import { loadConfig } from '../../src/config.js';
import { connectionSettings, describeTarget, type ConnectionSettings } from '../../src/db/settings.js';
import { UsageError } from '../../src/errors.js';
import { tempDir } from '../support/fs.js';
import { secretPieces } from '../support/secrets.js';

const PASSWORD = 'p@ss#w%rd/1?';

function settings(text: string | null, env: Record<string, string> = {}): ConnectionSettings {
  const result = connectionSettings(text, env);
  assert.ok(result, 'a database is configured');
  return result;
}

function refused(text: string, pattern: RegExp, env: Record<string, string> = {}): UsageError {
  let caught: unknown;
  assert.throws(
    () => connectionSettings(text, env),
    (error: unknown) => {
      caught = error;
      return true;
    },
  );
  assert.ok(caught instanceof UsageError && caught.exitCode === 64, `expected a usage error for ${text}, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe('connection settings, read as libpq reads them', () => {
  it('a URL with a percent-encoded password means exactly that password', () => {
    const parsed = settings(
      `postgres://keeper1:${encodeURIComponent(PASSWORD)}@db.example.com:6543/app?application_name=bot&connect_timeout=1`,
    );
    assert.equal(parsed.password, PASSWORD);
    assert.deepEqual(
      [parsed.user, parsed.host, parsed.port, parsed.database, parsed.applicationName],
      ['keeper1', 'db.example.com', 6543, 'app', 'bot'],
    );
    assert.equal(parsed.connectTimeoutMs, 2000, 'libpq raises a connect_timeout under 2 s to 2 s');
    assert.equal(describeTarget(parsed), 'postgres://keeper1@db.example.com:6543/app');
  });

  it('the password is in no serialised form of the settings', () => {
    const parsed = settings(`postgresql://keeper1:${encodeURIComponent(PASSWORD)}@db/app?sslpassword=keypass`);
    assert.doesNotMatch(JSON.stringify(parsed), /p@ss|keypass/);
    assert.doesNotMatch(describeTarget(parsed), /p@ss/);
  });

  it("'+' in a query value stays '+' (libpq does not read it as a space)", () => {
    assert.equal(settings('postgres://u@db/app?options=-c%20geqo=off+x').options, '-c geqo=off+x');
  });

  for (const text of [
    `postgres://keeper1:${PASSWORD}@db:5432/app`,
    'postgres://keeper1:p@ss@db:5432/app',
    'postgres://keeper1:pa/ss@db:5432/app',
    'postgres://keeper1:12?ss@db:5432/app',
    'postgres://keeper1:100%sure@db:5432/app',
    'postgres://keeper1:tw0 w1rdz@db:5432/app',
  ]) {
    it(`an unencoded special character is a usage error that shows only the user name: ${text}`, () => {
      const error = refused(text, /^DATABASE_URL \(postgres:\/\/keeper1@…\)[\s\S]*percent-encode special characters/);
      const password = text.slice('postgres://keeper1:'.length, text.lastIndexOf('@db'));
      for (const piece of secretPieces(password))
        assert.ok(!error.message.includes(piece), `${JSON.stringify(piece)} of the password is in: ${error.message}`);
    });
  }

  it('not a connection string at all is a usage error', () => {
    refused('notaurl', /not a PostgreSQL connection string/);
    refused('mysql://u:secretpw@db/app', /starts with mysql:\/\//);
  });

  it("libpq's key=value form, with quoting and escapes", () => {
    const parsed = settings(String.raw`host=db.internal port = 5433 dbname=app user=keeper password='it\'s a \\ secret' sslmode=disable`);
    assert.deepEqual(
      [parsed.host, parsed.port, parsed.database, parsed.user, parsed.password, parsed.sslmode],
      ['db.internal', 5433, 'app', 'keeper', String.raw`it's a \ secret`, 'disable'],
    );
    refused("host=db password='never closed", /quoted value of password is not closed/);
    refused('host=db nonsense', /missing '=' after nonsense/);
  });

  it("a parameter or value not supported is refused by name; other tools' parameters say what to use", () => {
    refused('postgres://u:pw@db/app?keepalives_idle=5', /the parameter keepalives_idle is not supported/);
    refused('postgres://u:pw@db/app?ssl=true', /ssl is a node-postgres parameter.*sslmode=require/);
    refused('postgres://u:pw@db/app?pgbouncer=true', /Prisma/);
    refused('postgres://u:pw@db/app?channel_binding=maybe', /channel_binding in DATABASE_URL: the value "maybe" is not supported/);
    refused('postgres://u:pw@db/app?target_session_attrs=read-write', /target_session_attrs/);
    refused('postgres://u:pw@db1,db2/app', /several hosts/);
    refused('postgres://u:pw@db/app?sslmode=disable&channel_binding=require', /channel_binding=require needs TLS/);
  });

  it('the PG* variables alone configure the database (a Bitnami or CloudNativePG Secret)', () => {
    const parsed = settings(null, {
      PGHOST: 'pg-rw.db.svc',
      PGPORT: '5433',
      PGDATABASE: 'app',
      PGUSER: 'app',
      PGPASSWORD: PASSWORD,
      PGSSLMODE: 'require',
      PGAPPNAME: 'bot',
      PGCONNECT_TIMEOUT: '7',
    });
    assert.deepEqual(
      [
        parsed.host,
        parsed.port,
        parsed.database,
        parsed.user,
        parsed.password,
        parsed.sslmode,
        parsed.applicationName,
        parsed.connectTimeoutMs,
      ],
      ['pg-rw.db.svc', 5433, 'app', 'app', PASSWORD, 'require', 'bot', 7000],
    );
    assert.equal(settings(null, { PGHOST: 'db', PGUSER: 'keeper' }).database, 'keeper', 'dbname defaults to the user name');
  });

  it('under a URL the variables fill what the URL leaves out, and the URL wins', () => {
    const parsed = settings('postgres://urluser@urlhost/urldb', {
      PGHOST: 'envhost',
      PGUSER: 'envuser',
      PGPASSWORD: 'envpassword',
      PGPORT: '6000',
    });
    assert.deepEqual(
      [parsed.host, parsed.user, parsed.database, parsed.port, parsed.password],
      ['urlhost', 'urluser', 'urldb', 6000, 'envpassword'],
    );
  });

  it('with neither a URL nor a connection variable: null, the embedded default', () => {
    assert.equal(connectionSettings(null, {}), null);
    assert.equal(connectionSettings(null, { PGAPPNAME: 'bot', PGSSLMODE: 'require' }), null, 'only variables that say where or who count');
    assert.equal(resolveDatabase(loadConfig('status', [], { PGHOST: 'db' }).database)?.host, 'db');
  });

  it('a libpq variable the keeper does not support is refused when set', () => {
    assert.throws(
      () => connectionSettings(null, { PGHOST: 'db', PGSERVICE: 'prod' }),
      (error: unknown) => error instanceof UsageError && /PGSERVICE is set/.test(error.message),
    );
  });

  it('a pgpass file as libpq reads it: first matching line, * wildcards, \\ escapes, comments, 0600 only', async () => {
    const dir = await tempDir('pgpass');
    const file = path.join(dir, 'pgpass');
    await writeFile(
      file,
      `${['#*:*:*:*:commented-out', 'other:5432:app:keeper:wrong-host', 'db:*:app:keeper:a\\:b\\\\c', '*:*:*:*:fallback'].join('\n')}\n`,
      { mode: 0o600 },
    );
    assert.equal(settings('postgres://keeper@db/app', { PGPASSFILE: file }).password, 'a:b\\c');
    assert.equal(settings('postgres://keeper@elsewhere/app', { PGPASSFILE: file }).password, 'fallback');
    assert.equal(settings(`postgres://keeper@db/app?passfile=${encodeURIComponent(file)}`).password, 'a:b\\c', 'the passfile parameter');
    assert.equal(
      settings('postgres://keeper@db/app', { PGPASSFILE: file, PGPASSWORD: 'from-env' }).password,
      'from-env',
      'PGPASSWORD beats the file',
    );
    assert.equal(settings('postgres://keeper:from-url@db/app', { PGPASSFILE: file }).password, 'from-url', 'the URL beats both');
    await chmod(file, 0o644);
    assert.equal(
      settings('postgres://keeper@db/app', { PGPASSFILE: file }).password,
      null,
      'a file others can read is ignored, as libpq does',
    );
  });
});
