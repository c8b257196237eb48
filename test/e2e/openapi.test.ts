// The live server answers as docs/openapi.yaml says: every answer's status is documented for its
// operation and its body matches the documented schema. (CI also fuzzes it with schemathesis.)
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv } from '../../harness/cli.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { REPO } from '../../harness/paths.js';
import { startService, waitFor } from '../../harness/sidecar.js';

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, { schema: object }> }> }>>;
  components: Record<string, Record<string, unknown>>;
};

describe('OpenAPI document', async () => {
  const doc = parse(await readFile(path.join(REPO, 'docs', 'openapi.yaml'), 'utf8')) as Doc;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  ajv.addSchema({ $id: 'doc', components: doc.components });

  /** Checks one live answer against the document; returns the parsed body. */
  function conforms(method: string, route: string, status: number, contentType: string, text: string): unknown {
    const operation = doc.paths[route]?.[method.toLowerCase()];
    assert.ok(operation, `${method} ${route} is documented`);
    let response = operation.responses[String(status)];
    assert.ok(response, `${method} ${route} documents status ${status}`);
    if (response.$ref) response = doc.components['responses']![response.$ref.split('/').pop()!] as typeof response;
    const mediaType = contentType.split(';')[0]!.trim();
    const media = response.content?.[mediaType];
    assert.ok(media, `${method} ${route} ${status} documents ${mediaType}`);
    if (mediaType !== 'application/json') return text;
    const body = JSON.parse(text) as unknown;
    const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', '"doc#/components/'));
    const validate = ajv.compile(schema);
    assert.ok(validate(body), `${method} ${route} ${status}: ${ajv.errorsText(validate.errors)} in ${text}`);
    return body;
  }

  const token = 'openapi-test-token-abcdefghijklmnop';
  const env = cliEnv(await freshDatabase('openapi'), { KEEPER_API_TOKEN: token });
  const dir = await tempDir('openapi');
  await writeSession(dir, { preKeys: 3 });

  it('documents every answer of a session lifecycle, errors included', async () => {
    const service = await startService(['sidecar', '--dir', dir, '--session', 'default', '--shutdown-quiet', '100'], env);
    try {
      await waitFor(async () => ((await service.get('/readyz')).status === 200 ? true : null), 10_000);
      const exchange = async (method: string, route: string, query = '', body?: string, auth: string | null = token) => {
        const response = await fetch(`http://127.0.0.1:${service.port}${route}${query}`, {
          method,
          headers: auth ? { authorization: `Bearer ${auth}` } : {},
          body,
        });
        return {
          status: response.status,
          body: conforms(method, route, response.status, response.headers.get('content-type') ?? '', await response.text()),
        };
      };
      const cases: [string, string, string, string | undefined, string | null, number][] = [
        ['GET', '/healthz', '', undefined, null, 200],
        ['GET', '/readyz', '', undefined, null, 200],
        ['GET', '/metrics', '', undefined, null, 200],
        ['GET', '/', '', undefined, null, 200],
        ['GET', '/api/overview', '', undefined, null, 200],
        ['GET', '/api/session/status', '', undefined, token, 200],
        ['GET', '/api/session/status', '', undefined, null, 401],
        ['GET', '/api/session/restore', '?session_id=default', undefined, token, 200],
        ['GET', '/api/session/restore', '?session_id=nobody', undefined, token, 404],
        ['GET', '/api/session/restore', '?session_id=bad%20id', undefined, token, 400],
        ['POST', '/api/session/backup', '', '{}', token, 200],
        ['POST', '/api/session/backup', '', JSON.stringify({ session_id: 'other', session_data: { 'notes.txt': 'hello' } }), token, 200],
        ['POST', '/api/session/backup', '', '{"session_data": 5}', token, 400],
        ['POST', '/api/session/backup', '', 'not json', token, 400],
        ['DELETE', '/api/session/delete', '?session_id=other', undefined, token, 200],
        ['DELETE', '/api/session/delete', '?session_id=other', undefined, token, 404],
        ['DELETE', '/api/session/delete', '', undefined, token, 400],
        ['GET', '/api/session/history', '', undefined, token, 200],
        ['GET', '/api/session/history', '?session_id=default&limit=1', undefined, token, 200],
        ['GET', '/api/session/history', '?session_id=nobody', undefined, token, 404],
        ['GET', '/api/session/history', '?limit=0', undefined, token, 400],
        ['GET', '/api/session/history', '?limit=100001', undefined, token, 400],
        ['GET', '/api/session/history', '', undefined, null, 401],
        ['GET', '/api/session/events', '', undefined, token, 200],
        ['GET', '/api/session/events', '', undefined, 'wrong-token', 401],
      ];
      for (const [method, route, query, body, auth, expected] of cases) {
        const answer = await exchange(method, route, query, body, auth);
        assert.equal(answer.status, expected, `${method} ${route}${query}`);
      }
    } finally {
      assert.equal((await service.stop()).code, 0);
    }
  });

  it('documents the 403 of a keeper without a token', async () => {
    const service = await startService(['sidecar', '--dir', dir, '--session', 'default', '--shutdown-quiet', '100'], {
      ...env,
      KEEPER_API_TOKEN: undefined,
    });
    try {
      const response = await fetch(`http://127.0.0.1:${service.port}/api/session/status`);
      assert.equal(response.status, 403);
      conforms('GET', '/api/session/status', 403, response.headers.get('content-type') ?? '', await response.text());
    } finally {
      await service.stop();
    }
  });
});
