// deploy/kustomize: the component adds the keeper to any existing Deployment. `kustomize build` of the
// example overlay (and of the component on another Deployment) is valid Kubernetes 1.34 and wires what
// the chart wires; the overlay's pod, run for real, loses no write.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { validateObjects } from '../support/charts/k8s-schema.js';
import { LocalPod } from '../support/charts/local-pod.js';
import { cliEnvNames } from '../support/charts/names.js';
import { container, resolveEnv, workloadPodSpec } from '../support/charts/pod.js';
import { kustomizeBuild, only, parseManifests, type K8sObject } from '../support/charts/render.js';
import { CHURN_BOT, REPO } from '../../harness/paths.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';

const KUSTOMIZE = path.join(REPO, 'deploy', 'kustomize');
const OVERLAY = path.join(KUSTOMIZE, 'examples', 'overlay');
// The label that marks a Deployment for the component (its patches' target.labelSelector).
const INJECT = 'baileys-keeper.io/inject';
const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

/** The Secret the user creates next to the overlay (not in git): DATABASE_URL. */
function userSecret(databaseUrl: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'baileys-keeper' },
    data: { DATABASE_URL: Buffer.from(databaseUrl).toString('base64') },
  } as K8sObject;
}

describe('kustomize: the example overlay', () => {
  it('builds, and every object is valid Kubernetes 1.34', async () => {
    const objects = await kustomizeBuild(OVERLAY);
    assert.deepEqual(objects.map((object) => object.kind).sort(), ['ConfigMap', 'Deployment']);
    assert.deepEqual(await validateObjects(objects), []);
  });

  it('adds restore, then the native sidecar, to the bot, which mounts the shared volume at its own path', async () => {
    const objects = await kustomizeBuild(OVERLAY);
    const deployment = only(objects, 'Deployment') as K8sObject & { spec: { replicas: number; strategy: Record<string, unknown> } };
    assert.equal(deployment.spec.replicas, 1);
    assert.deepEqual(deployment.spec.strategy, { type: 'Recreate' }, 'the base rollingUpdate settings are gone');
    const spec = workloadPodSpec(objects);
    assert.deepEqual(
      spec.initContainers!.map((c) => c.name),
      ['baileys-keeper-restore', 'baileys-keeper-sidecar'],
    );
    assert.equal(container(spec, 'baileys-keeper-sidecar').restartPolicy, 'Always');
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['bot'],
    );
    assert.deepEqual(container(spec, 'bot').volumeMounts, [{ name: 'baileys-keeper-auth', mountPath: '/app/auth_info' }]);
    assert.ok(spec.volumes!.find((volume) => volume.name === 'baileys-keeper-auth')?.emptyDir);
    const known = await cliEnvNames();
    for (const name of ['baileys-keeper-restore', 'baileys-keeper-sidecar']) {
      const keeper = container(spec, name);
      assert.equal(keeper.command, undefined);
      assert.equal(keeper.image, `ghcr.io/baileys-keeper/baileys-keeper-${name.endsWith('restore') ? 'init' : 'sidecar'}:${pkg.version}`);
      const env = resolveEnv(keeper, [...objects, userSecret('postgres://x')]);
      for (const variable of Object.keys(env)) assert.ok(known.has(variable), `${name} sets ${variable}, which the CLI does not read`);
      assert.equal(env['KEEPER_SESSION_ID'], 'my-bot', 'the overlay set the session id');
      assert.equal(keeper.volumeMounts!.find((mount) => mount.name === 'baileys-keeper-auth')!.mountPath, env['KEEPER_DIR']);
      assert.equal(keeper.securityContext!['readOnlyRootFilesystem'], true);
      assert.equal(keeper.securityContext!['runAsNonRoot'], true);
    }
    // restore writes 0600 files as the keeper's user: the bot must be that user to read them.
    const uid = (name: string) => container(spec, name).securityContext?.['runAsUser'] ?? spec.securityContext?.['runAsUser'];
    assert.ok(uid('baileys-keeper-restore') !== undefined);
    assert.equal(uid('bot'), uid('baileys-keeper-restore'), "the bot runs as the keeper's UID");
    // A Deployment replaces an evicted pod while it still stops: restore waits out its grace and lease.
    const restoreEnv = resolveEnv(container(spec, 'baileys-keeper-restore'), [...objects, userSecret('postgres://x')]);
    const sidecarEnv = resolveEnv(container(spec, 'baileys-keeper-sidecar'), [...objects, userSecret('postgres://x')]);
    assert.ok(
      Number(restoreEnv['KEEPER_LEASE_WAIT_SECONDS']) >=
        spec.terminationGracePeriodSeconds! + Number(sidecarEnv['KEEPER_LEASE_TTL_MS']) / 1000,
    );
    const sidecar = container(spec, 'baileys-keeper-sidecar');
    assert.equal(sidecar.startupProbe?.httpGet?.path, '/readyz');
    assert.equal(sidecar.livenessProbe?.httpGet?.path, '/healthz');
  });

  it('the component fits any other Deployment too (another name, container and strategy)', async () => {
    const dir = await tempDir('kustomize-other');
    await mkdir(path.join(dir, 'other'));
    const base = parseManifests(await readFile(path.join(KUSTOMIZE, 'examples', 'bot-base', 'deployment.yaml'), 'utf8'))[0]!;
    const other = JSON.parse(JSON.stringify(base).replaceAll('my-bot', 'worker-7').replace('"name":"bot"', '"name":"main"')) as K8sObject;
    other.metadata.labels = { ...other.metadata.labels, [INJECT]: 'true' };
    await writeFile(path.join(dir, 'other', 'deployment.yaml'), stringify(other));
    // kustomize refuses absolute component paths: name it relative to the temp overlay.
    const component = path.relative(path.join(dir, 'other'), path.join(KUSTOMIZE, 'components', 'baileys-keeper'));
    await writeFile(path.join(dir, 'other', 'kustomization.yaml'), stringify({ resources: ['deployment.yaml'], components: [component] }));
    const objects = await kustomizeBuild(path.join(dir, 'other'));
    assert.deepEqual(await validateObjects(objects), []);
    const spec = workloadPodSpec(objects);
    assert.equal(only(objects, 'Deployment').metadata.name, 'worker-7');
    assert.deepEqual(
      spec.initContainers!.map((c) => c.name),
      ['baileys-keeper-restore', 'baileys-keeper-sidecar'],
    );
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['main'],
    );
    // No session id of its own: an overlay that names none gets none (two overlays never share one).
    const env = resolveEnv(container(spec, 'baileys-keeper-restore'), [...objects, userSecret('postgres://x')]);
    assert.equal(env['KEEPER_SESSION_ID'], undefined);
  });
});

describe('kustomize: the component patches only the Deployments labelled for it', () => {
  /** An overlay of the example bot plus `others` (Deployments), with the keeper component. */
  async function overlayWith(others: K8sObject[], components: string[]): Promise<K8sObject[]> {
    const dir = path.join(await tempDir('kustomize-label'), 'overlay');
    await mkdir(dir);
    await writeFile(path.join(dir, 'others.yaml'), others.map((each) => stringify(each)).join('---\n'));
    const relative = (target: string) => path.relative(dir, target);
    await writeFile(
      path.join(dir, 'kustomization.yaml'),
      stringify({
        resources: [relative(path.join(KUSTOMIZE, 'examples', 'bot-base')), 'others.yaml'],
        components: components.map(relative),
      }),
    );
    return kustomizeBuild(dir);
  }
  const KEEPER = path.join(KUSTOMIZE, 'components', 'baileys-keeper');
  const LABEL_BOT = path.join(KUSTOMIZE, 'examples', 'label-bot');

  async function web(labels: Record<string, string>): Promise<K8sObject> {
    const base = parseManifests(await readFile(path.join(KUSTOMIZE, 'examples', 'bot-base', 'deployment.yaml'), 'utf8'))[0]!;
    const copy = JSON.parse(JSON.stringify(base).replaceAll('my-bot', 'web').replace('"name":"bot"', '"name":"web"')) as K8sObject;
    copy.metadata.labels = labels;
    return copy;
  }

  it('an unlabelled Deployment in the same overlay is left exactly as it was; the labelled bot gets the keeper', async () => {
    const unlabelled = await web({ app: 'web' });
    const offLabel = await web({ app: 'web', [INJECT]: 'false' });
    offLabel.metadata.name = 'web-2';
    const objects = await overlayWith([unlabelled, offLabel], [LABEL_BOT, KEEPER]);
    assert.deepEqual(only(objects, 'Deployment', 'web'), unlabelled, 'untouched: no keeper, no Recreate, its own grace period');
    assert.deepEqual(only(objects, 'Deployment', 'web-2'), offLabel, 'a label other than "true" selects nothing either');
    const bot = only(objects, 'Deployment', 'my-bot') as K8sObject & {
      spec: { template: { spec: { initContainers?: { name: string }[] } } };
    };
    assert.equal(bot.metadata.labels![INJECT], 'true');
    assert.deepEqual(
      bot.spec.template.spec.initContainers!.map((each) => each.name),
      ['baileys-keeper-restore', 'baileys-keeper-sidecar'],
    );
    assert.deepEqual(await validateObjects(objects), []);
  });

  it('without the label nothing is patched (the selector is what chooses; it can fail)', async () => {
    const objects = await overlayWith([await web({ app: 'web' })], [KEEPER]);
    for (const deployment of objects.filter((object) => object.kind === 'Deployment')) {
      const spec = (deployment['spec'] as { template: { spec: { initContainers?: unknown[] } } }).template.spec;
      assert.equal(spec.initContainers, undefined, `${deployment.metadata.name} is not labelled`);
    }
  });

  it('the example overlays label only their bot, with the key the components select', async () => {
    for (const component of ['baileys-keeper', 'sessions-dir']) {
      const text = await readFile(path.join(KUSTOMIZE, 'components', component, 'kustomization.yaml'), 'utf8');
      const patches = (parse(text) as { patches: { target?: { kind: string; labelSelector?: string } }[] }).patches;
      for (const patch of patches.filter((each) => each.target?.kind === 'Deployment')) {
        assert.equal(patch.target!.labelSelector, `${INJECT}=true`, `${component}: every Deployment patch selects by the label`);
      }
    }
    const sessions = await kustomizeBuild(path.join(KUSTOMIZE, 'examples', 'sessions-overlay'));
    assert.equal(only(sessions, 'Deployment').metadata.labels![INJECT], 'true');
  });
});

describe('kustomize: the overlay pod, run for real', async () => {
  const url = await freshDatabase('kustomize_pod');

  it('restores before the bot, backs up its churn, and stores its last writes after the bot stopped', async () => {
    const objects = [...(await kustomizeBuild(OVERLAY)), userSecret(url)];
    const pod = await LocalPod.create(objects, await tempDir('kustomize-pod'));
    let out = '';
    await pod.start((each, hostDir) => {
      const child = spawn(process.execPath, [CHURN_BOT, hostDir(each.volumeMounts![0]!.mountPath), '--rate', '20', '--seed', '9'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      return child;
    });
    await waitFor(() => (out.includes('ready') ? true : null), 30_000);
    const sidecar = pod.service('baileys-keeper-sidecar');
    await waitFor(
      async () => ((await sidecar.metric('baileys_keeper_backups_total{result="success"}')) >= 2 ? true : null),
      60_000,
      () => sidecar.output.join('\n'),
    );
    const ends = await pod.terminate();
    assert.equal(ends.get('bot')!.code, 0);
    assert.equal(ends.get('baileys-keeper-sidecar')!.code, 0, sidecar.output.join('\n'));
    const events = pod.events;
    assert.ok(events.indexOf('baileys-keeper-restore exited 0') < events.indexOf('bot started'), events.join(', '));
    assert.ok(events.indexOf('bot exited 0') < events.indexOf('baileys-keeper-sidecar SIGTERM'), events.join(', '));
    const dir = await readTree(pod.hostPath('bot', '/app/auth_info'));
    assert.deepEqual(diffTrees(await storedHead(url, 'my-bot'), dir), []);
  });
});
