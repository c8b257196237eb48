// `npm run test:api-fuzz`: schemathesis fuzzes the live HTTP API from docs/openapi.yaml and fails on any
// 5xx, schema violation or crash. Starts its own PostgreSQL (embedded, unless DATABASE_URL is set) and
// a sidecar whose auth directory holds a session written by the real Baileys writer.
// SCHEMATHESIS names the schemathesis executable (default: `schemathesis` on PATH).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded } from '../../src/embedded-postgres.js';
import { writeSession } from '../../harness/baileys.js';
import { REPO } from '../../harness/paths.js';
import { startService, waitFor } from '../../harness/sidecar.js';
import { testLog } from '../support/log.js';

const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'unsupported_method',
  'allow_header_conformance',
  'ignored_auth',
].join(',');

const work = await mkdtemp(path.join(os.tmpdir(), 'bk-fuzz-'));
await chmod(work, 0o755);
const server = process.env['DATABASE_URL'] ? null : await startEmbedded(path.join(work, 'pg'), testLog);
const token = randomBytes(24).toString('base64url');
const dir = path.join(work, 'auth_info');
await writeSession(dir, { preKeys: 10 });
const env = {
  ...process.env,
  DATABASE_URL: server?.url ?? process.env['DATABASE_URL'],
  KEEPER_API_TOKEN: token,
  KEEPER_MAX_BODY_BYTES: String(1024 * 1024),
  KEEPER_LOG_LEVEL: 'info',
};
const service = await startService(['sidecar', '--dir', dir, '--session', 'default', '--shutdown-quiet', '100'], env);
let code = 1;
try {
  await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 30_000);
  const args = [
    'run',
    path.join(REPO, 'docs', 'openapi.yaml'),
    '--url',
    `http://127.0.0.1:${service.port}`,
    '--header',
    `Authorization: Bearer ${token}`,
    '--checks',
    CHECKS,
    '--max-examples',
    process.env['FUZZ_EXAMPLES'] ?? '200',
    '--seed',
    process.env['FUZZ_SEED'] ?? '20261129',
    '--generation-database',
    'none',
    '--request-timeout',
    '20',
    '--no-color',
  ];
  const child = spawn(process.env['SCHEMATHESIS'] ?? 'schemathesis', args, { stdio: 'inherit' });
  code = await new Promise<number>((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`cannot run schemathesis (${error.message}): install it with pip install schemathesis, or set SCHEMATHESIS\n`);
      resolve(1);
    });
    child.once('close', (status) => resolve(status ?? 1));
  });
  if ((await service.get('/healthz')).status !== 200) {
    process.stderr.write('the keeper did not survive the fuzzing\n');
    code = 1;
  }
} finally {
  const ended = await service.stop();
  if (ended.code !== 0) {
    process.stderr.write(`the keeper did not stop cleanly (exit ${ended.code}):\n${service.output.slice(-20).join('\n')}\n`);
    code = 1;
  }
  await server?.stop();
  await rm(work, { recursive: true, force: true });
}
process.exitCode = code;
