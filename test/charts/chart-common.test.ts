// The chart's Bitnami-style common values: image digests, commonLabels and commonAnnotations on every
// object, extraDeploy, and a bot image that must be pinned (no default tag, never `latest`).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validateObjects } from '../support/charts/k8s-schema.js';
import { allContainers, workloadPodSpec, type Container } from '../support/charts/pod.js';
import { CHART, helmTemplate, helmTemplateError, only, valuesFile, type K8sObject } from '../support/charts/render.js';
import { findTool, KUBE_VERSION, tool } from '../support/charts/tools.js';

const values = (name: string) => path.join(CHART, 'ci', `${name}-values.yaml`);
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const INIT_DIGEST = `sha256:${'1'.repeat(64)}`;
const SIDECAR_DIGEST = `sha256:${'2'.repeat(64)}`;

/** Every object with everything on: StatefulSet (two Services), monitoring, a created Secret, the test pod. */
async function everything(extra: Record<string, unknown>): Promise<K8sObject[]> {
  return helmTemplate([
    values('monitoring-on'),
    await valuesFile({
      workload: { kind: 'StatefulSet' },
      monitoring: { podMonitor: { enabled: false }, serviceMonitor: { enabled: true, labels: { release: 'prom' } } },
      ...extra,
    }),
  ]);
}

function podTemplate(objects: K8sObject[]): { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } {
  const workload = objects.find((object) => object.kind === 'Deployment' || object.kind === 'StatefulSet')!;
  return (workload['spec'] as { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } })
    .template;
}

describe('chart: image digests', () => {
  it('a digest replaces the tag: repository@digest for the bot, the init and the sidecar image (and the helm test pod)', async () => {
    const objects = await helmTemplate([
      values('native'),
      await valuesFile({
        bot: { image: { digest: DIGEST } },
        image: { initDigest: INIT_DIGEST, sidecarDigest: SIDECAR_DIGEST, tag: '9.9.9' },
      }),
    ]);
    const images = Object.fromEntries(allContainers(workloadPodSpec(objects)).map((each) => [each.name, each.image]));
    assert.deepEqual(images, {
      restore: `ghcr.io/baileys-keeper/baileys-keeper-init@${INIT_DIGEST}`,
      sidecar: `ghcr.io/baileys-keeper/baileys-keeper-sidecar@${SIDECAR_DIGEST}`,
      bot: `registry.example.com/my-bot@${DIGEST}`,
    });
    const testPod = only(objects, 'Pod') as K8sObject & { spec: { containers: Container[] } };
    assert.deepEqual(
      testPod.spec.containers.map((each) => each.image),
      [images['sidecar'], images['sidecar']],
    );
    assert.deepEqual(await validateObjects(objects), []);
    // One image pinned, the other by tag; a registry of "" gives a bare repository.
    const mixed = await helmTemplate([values('native'), await valuesFile({ image: { registry: '', sidecarDigest: SIDECAR_DIGEST } })]);
    const spec = workloadPodSpec(mixed);
    assert.match(spec.initContainers![0]!.image, /^baileys-keeper\/baileys-keeper-init:\d+\.\d+\.\d+/);
    assert.equal(spec.initContainers![1]!.image, `baileys-keeper/baileys-keeper-sidecar@${SIDECAR_DIGEST}`);
  });

  it('the schema refuses a digest that is not algorithm:hex', async () => {
    for (const [key, bad] of [
      ['bot.image.digest', '0123abcd'],
      ['image.initDigest', 'sha256:xyz'],
      ['image.sidecarDigest', `@sha256:${'2'.repeat(64)}`],
    ] as const) {
      assert.match(await helmTemplateError([values('native')], { [key]: bad }), new RegExp(key.replaceAll('.', '/')), key);
    }
  });

  it("NOTES.txt names the bot's image by its digest", async () => {
    const helm = await findTool('helm', 'HELM');
    const output = await tool(helm, [
      'install',
      'bot',
      CHART,
      '--dry-run=client',
      '--values',
      values('native'),
      '--set',
      `bot.image.digest=${DIGEST}`,
    ]);
    assert.match(output.slice(output.indexOf('NOTES:')), new RegExp(`for the bot registry\\.example\\.com/my-bot@${DIGEST}\\.`));
  });
});

describe('chart: the bot image is pinned', () => {
  it('values.yaml has no default bot tag (never latest); without a tag or digest the render says what to set', async () => {
    const defaults = parse(await readFile(path.join(CHART, 'values.yaml'), 'utf8')) as { bot: { image: { tag: unknown } } };
    assert.equal(defaults.bot.image.tag, '');
    const refused = await helmTemplateError([values('existing-secret')], { 'bot.image.tag': '' });
    assert.match(refused, /bot\.image\.tag is required \(or bot\.image\.digest\).*--set bot\.image\.tag=1\.4\.2/);
    const pinned = workloadPodSpec(await helmTemplate([values('existing-secret')], { 'bot.image.tag': '', 'bot.image.digest': DIGEST }));
    assert.equal(pinned.containers.find((each) => each.name === 'bot')!.image, `registry.example.com/my-bot@${DIGEST}`);
  });
});

describe('chart: commonLabels and commonAnnotations', () => {
  it('are on every object and the pod; the chart\u2019s own labels and each object\u2019s own annotations win; selectors unchanged', async () => {
    const plain = await everything({});
    const objects = await everything({
      commonLabels: { team: 'bots', 'app.kubernetes.io/name': 'not-the-chart', release: 'ignored-by-the-monitor' },
      commonAnnotations: { owner: 'platform', grafana_folder: 'Other' },
      service: { annotations: { owner: 'service-team' } },
    });
    assert.deepEqual(
      objects.map((object) => `${object.kind}/${object.metadata.name}`),
      plain.map((object) => `${object.kind}/${object.metadata.name}`),
    );
    assert.ok(objects.length >= 9, objects.map((object) => object.kind).join(', '));
    for (const object of objects) {
      const where = `${object.kind}/${object.metadata.name}`;
      assert.equal(object.metadata.labels?.['team'], 'bots', `${where} has commonLabels`);
      assert.equal(object.metadata.labels?.['app.kubernetes.io/name'], 'baileys-keeper', `${where}: the chart's own label wins`);
      assert.ok(object.metadata.annotations?.['owner'], `${where} has commonAnnotations`);
    }
    assert.equal(only(objects, 'Service', 'bot-baileys-keeper').metadata.annotations!['owner'], 'service-team', "the Service's own wins");
    assert.equal(only(objects, 'Pod').metadata.annotations!['helm.sh/hook'], 'test', 'the test pod keeps its hook annotations');
    assert.equal(only(objects, 'ConfigMap').metadata.annotations!['grafana_folder'], 'WhatsApp', "the dashboard's own wins");
    assert.equal(only(objects, 'ServiceMonitor').metadata.labels!['release'], 'prom', "the monitor's own labels win");
    // The pod carries commonLabels (not commonAnnotations: that is workload.podAnnotations' job).
    const pod = podTemplate(objects);
    assert.equal(pod.metadata.labels['team'], 'bots');
    assert.equal(pod.metadata.annotations?.['owner'], undefined);
    // Selectors are what they were: a label in commonLabels never changes what selects the pod.
    const selectorOf = (all: K8sObject[]) =>
      JSON.stringify([
        (all.find((object) => object.kind === 'StatefulSet')!['spec'] as { selector: unknown }).selector,
        ...all.filter((object) => object.kind === 'Service').map((service) => (service['spec'] as { selector: unknown }).selector),
      ]);
    assert.equal(selectorOf(objects), selectorOf(plain));
    assert.deepEqual(await validateObjects(objects), []);
    const helm = await findTool('helm', 'HELM');
    const extra = await valuesFile({ commonLabels: { team: 'bots' }, commonAnnotations: { owner: 'platform' } });
    await tool(helm, ['lint', '--strict', CHART, '--values', values('monitoring-on'), '--values', extra, '--kube-version', KUBE_VERSION]);
  });

  it('workload.podLabels still reach the pod and the workload, next to commonLabels', async () => {
    const objects = await helmTemplate([
      values('native'),
      await valuesFile({ commonLabels: { team: 'bots', tier: 'common' }, workload: { podLabels: { tier: 'bot' } } }),
    ]);
    assert.deepEqual(
      [podTemplate(objects).metadata.labels['team'], podTemplate(objects).metadata.labels['tier']],
      ['bots', 'bot'],
      'workload.podLabels win over commonLabels',
    );
    assert.equal(only(objects, 'Deployment').metadata.labels!['tier'], 'bot');
  });
});

describe('chart: extraDeploy', () => {
  it('renders extra objects given as maps or strings, through tpl, valid Kubernetes', async () => {
    const objects = await helmTemplate([
      values('native'),
      await valuesFile({
        extraDeploy: [
          {
            apiVersion: 'networking.k8s.io/v1',
            kind: 'NetworkPolicy',
            metadata: { name: '{{ include "baileys-keeper.fullname" . }}-egress', namespace: '{{ .Release.Namespace }}' },
            spec: { podSelector: { matchLabels: { 'app.kubernetes.io/instance': '{{ .Release.Name }}' } }, policyTypes: ['Egress'] },
          },
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-notes\ndata:\n  session: {{ .Values.session.id | quote }}\n',
        ],
      }),
    ]);
    const policy = only(objects, 'NetworkPolicy') as K8sObject & { spec: { podSelector: { matchLabels: Record<string, string> } } };
    assert.equal(policy.metadata.name, 'bot-baileys-keeper-egress');
    assert.equal((policy.metadata as { namespace?: string }).namespace, 'bots');
    assert.deepEqual(policy.spec.podSelector.matchLabels, { 'app.kubernetes.io/instance': 'bot' });
    const notes = only(objects, 'ConfigMap', 'bot-notes') as K8sObject & { data: Record<string, string> };
    assert.deepEqual(notes.data, { session: 'my-bot' });
    assert.deepEqual(await validateObjects([policy, notes]), []);
    assert.equal(
      (await helmTemplate([values('native')])).some((object) => object.kind === 'NetworkPolicy'),
      false,
      'none by default',
    );
  });
});
