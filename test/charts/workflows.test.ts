// The GitHub workflows: ci.yml runs what .ci/run runs, so both must pin the same tool versions (else
// GitHub would test with other tools than the machine CI), and release.yml publishes only what CI has
// passed, with the least each job needs. actionlint (in .ci/run) checks their syntax; this checks intent.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO } from '../../harness/paths.js';

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

interface Job {
  permissions?: Record<string, string>;
  needs?: string | string[];
  uses?: string;
  strategy?: { matrix?: Record<string, unknown[]> };
  steps?: Step[];
}

interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

async function workflow(name: string): Promise<Workflow> {
  return parse(await readFile(path.join(REPO, '.github', 'workflows', name), 'utf8')) as Workflow;
}

/** The `NAME=value` assignments at the start of .ci/run's lines; NODE_VERSIONS as its list. */
async function ciRunPins(): Promise<{ nodeVersions: string[]; versions: Map<string, string> }> {
  const text = await readFile(path.join(REPO, '.ci', 'run'), 'utf8');
  const nodeVersions = /^NODE_VERSIONS=\(([^)]*)\)/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
  const versions = new Map([...text.matchAll(/^([A-Z_]+_VERSION)=(\S+)/gm)].map((match) => [match[1]!, match[2]!]));
  return { nodeVersions, versions };
}

function needs(job: Job): string[] {
  return typeof job.needs === 'string' ? [job.needs] : (job.needs ?? []);
}

function step(job: Job, uses: string): Step {
  const found = (job.steps ?? []).find((each) => each.uses?.startsWith(`${uses}@`));
  assert.ok(found, `a step uses ${uses}`);
  return found;
}

describe('GitHub workflows', () => {
  it('ci.yml tests on the Node versions and with the tool versions .ci/run pins', async () => {
    const { nodeVersions, versions } = await ciRunPins();
    assert.equal(nodeVersions.length, 2, `.ci/run's NODE_VERSIONS: ${nodeVersions.join(' ')}`);
    const ci = await workflow('ci.yml');
    assert.deepEqual(ci.jobs['test']!.strategy!.matrix!['node'], nodeVersions, 'npm test on every Node version .ci/run tests');
    assert.equal(ci.env!['NODE_NEWEST'], nodeVersions[0], 'the other suites on the newest, as .ci/run runs them');
    for (const name of ['HELM_VERSION', 'KUSTOMIZE_VERSION', 'HADOLINT_VERSION', 'SCHEMATHESIS_VERSION', 'ACTIONLINT_VERSION']) {
      assert.ok(versions.has(name), `.ci/run pins ${name}`);
      assert.equal(ci.env![name], versions.get(name), `ci.yml's ${name}`);
    }
    const release = await workflow('release.yml');
    assert.equal(release.env!['NODE_VERSION'], nodeVersions[0], 'the release builds with the newest tested Node');
    assert.equal(release.env!['HELM_VERSION'], versions.get('HELM_VERSION'), 'the chart is packaged by the helm that tested it');
    assert.equal(release.env!['GO_VERSION'], ci.env!['GO_VERSION']);
  });

  it('no workflow grants permissions by default; every job asks for its own, and only publishing jobs may write', async () => {
    const writers: Record<string, Record<string, string>> = {
      'release.yml/images': { packages: 'write' },
      'release.yml/npm': { 'id-token': 'write' },
      'release.yml/chart': { packages: 'write' },
      'release.yml/github-release': { contents: 'write' },
    };
    for (const name of ['ci.yml', 'release.yml']) {
      const flow = await workflow(name);
      assert.deepEqual(flow.permissions, {}, `${name}: top-level permissions {}`);
      for (const [id, job] of Object.entries(flow.jobs)) {
        assert.ok(job.permissions, `${name}/${id} declares its permissions`);
        const writes = Object.fromEntries(Object.entries(job.permissions).filter(([, level]) => level === 'write'));
        assert.deepEqual(writes, writers[`${name}/${id}`] ?? {}, `${name}/${id} writes only what it publishes`);
      }
    }
  });

  it('every action is pinned to a release (a version tag or a commit), never a branch', async () => {
    for (const name of ['ci.yml', 'release.yml']) {
      for (const [id, job] of Object.entries((await workflow(name)).jobs)) {
        const uses = [job.uses, ...(job.steps ?? []).map((each) => each.uses)].filter((each): each is string => each !== undefined);
        for (const action of uses) {
          if (action.startsWith('./')) continue;
          assert.match(action, /@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/, `${name}/${id}: ${action}`);
        }
      }
    }
  });

  it('release.yml publishes on a v* tag, only after CI and the version check, what the release promises', async () => {
    const release = await workflow('release.yml');
    assert.deepEqual(release.on, { push: { tags: ['v*'] } });
    assert.equal(release.jobs['ci']!.uses, './.github/workflows/ci.yml');
    const ci = await workflow('ci.yml');
    assert.ok('workflow_call' in ci.on, 'ci.yml can be called by the release');
    for (const id of ['images', 'npm', 'chart']) {
      assert.deepEqual(needs(release.jobs[id]!).sort(), ['ci', 'versions'], `${id} waits for CI and the version check`);
    }
    const last = needs(release.jobs['github-release']!).sort();
    assert.deepEqual(last, ['chart', 'images', 'npm', 'versions'], 'the GitHub release comes last');

    const images = release.jobs['images']!;
    assert.deepEqual(images.strategy!.matrix!['image'], ['init', 'sidecar']);
    const build = step(images, 'docker/build-push-action').with!;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a template literal
    assert.equal(build['file'], 'Dockerfile.${{ matrix.image }}');
    assert.equal(build['platforms'], 'linux/amd64,linux/arm64');
    assert.equal(build['sbom'], true);
    assert.equal(build['provenance'], 'mode=max');
    assert.equal(build['push'], true);

    const publish = (release.jobs['npm']!.steps ?? []).map((each) => each.run ?? '').join('\n');
    assert.match(publish, /npm publish --provenance --access public/);
    const chart = (release.jobs['chart']!.steps ?? []).map((each) => each.run ?? '').join('\n');
    assert.match(chart, /push .*"oci:\/\/ghcr\.io\/\$OWNER\/charts"/);
    const github = (release.jobs['github-release']!.steps ?? []).map((each) => each.run ?? '').join('\n');
    assert.match(github, /npm run bundle/);
    assert.match(github, /sha256sum baileys-keeper\.mjs .*> SHA256SUMS/);
    assert.match(github, /gh release create/);
  });
});
