// Webhook and heartbeat settings (SPEC "Session lifecycle") in the Helm chart, the kustomize component and
// the Compose file: each form (plain value, created Secret, existing Secret) reaches the sidecar, and only
// the sidecar, as exactly the env entries and files expected; conflicting forms and bad values are refused.
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { validateObjects, OLDEST_SCHEMA } from '../support/charts/k8s-schema.js';
import {
  container,
  hostPath,
  materialiseVolumes,
  resolveEnv,
  workloadPodSpec,
  type Container,
  type EnvVar,
  type PodSpec,
} from '../support/charts/pod.js';
import { CHART, helmTemplate, helmTemplateError, kustomizeBuild, only, valuesFile, type K8sObject } from '../support/charts/render.js';
import { findTool, tool } from '../support/charts/tools.js';
import { tempDir } from '../support/fs.js';
import { REPO } from '../../harness/paths.js';

const values = (name: string) => path.join(CHART, 'ci', `${name}-values.yaml`);
const NOTIFY_ENV = [
  'KEEPER_WEBHOOK_URL',
  'KEEPER_WEBHOOK_SECRET',
  'KEEPER_WEBHOOK_SECRET_FILE',
  'KEEPER_HEARTBEAT_URL',
  'KEEPER_HEARTBEAT_INTERVAL',
];
const WEBHOOK = 'https://hooks.example.com/services/T000/B000/XXXX';
const HEARTBEAT = 'https://hc-ping.com/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab';

type TestPod = K8sObject & { spec: { containers: Container[]; volumes: PodSpec['volumes'] } };

/** The env entries of `after` that `before` does not have (by name), in order. */
function added(before: Container, after: Container): EnvVar[] {
  const names = new Set((before.env ?? []).map((variable) => variable.name));
  return (after.env ?? []).filter((variable) => !names.has(variable.name));
}

function notifyEnv(spec: Container): string[] {
  return (spec.env ?? []).map((variable) => variable.name).filter((name) => NOTIFY_ENV.includes(name));
}

function testPod(objects: K8sObject[]): TestPod {
  return objects.find((object) => object.kind === 'Pod') as TestPod;
}

describe('chart: notifications', () => {
  it('off by default in every shape: no webhook or heartbeat variable in any container, no webhook-secret file', async () => {
    for (const shape of ['native', 'classic', 'existing-secret', 'monitoring-on', 'sessions-dir']) {
      const objects = await helmTemplate([values(shape)]);
      const spec = workloadPodSpec(objects);
      for (const each of [container(spec, 'restore'), container(spec, 'sidecar'), ...testPod(objects).spec.containers])
        assert.deepEqual(notifyEnv(each), [], `${shape}: ${each.name}`);
      const items = spec.volumes!.flatMap((volume) => volume.secret?.items ?? []);
      assert.equal(
        items.some((item) => item.path === 'webhook-secret'),
        false,
        shape,
      );
    }
  });

  it('plain URLs: exactly the webhook URL, heartbeat URL and interval in the sidecar; restore, volumes and Secret unchanged', async () => {
    for (const shape of ['native', 'classic']) {
      const base = await helmTemplate([values(shape)]);
      const objects = await helmTemplate([
        values(shape),
        await valuesFile({ notifications: { webhook: { url: WEBHOOK }, heartbeat: { url: HEARTBEAT, interval: '30s' } } }),
      ]);
      const [before, after] = [workloadPodSpec(base), workloadPodSpec(objects)];
      assert.deepEqual(added(container(before, 'sidecar'), container(after, 'sidecar')), [
        { name: 'KEEPER_WEBHOOK_URL', value: WEBHOOK },
        { name: 'KEEPER_HEARTBEAT_URL', value: HEARTBEAT },
        { name: 'KEEPER_HEARTBEAT_INTERVAL', value: '30s' },
      ]);
      assert.deepEqual(container(after, 'restore'), container(before, 'restore'), `${shape}: restore does not run the loop`);
      assert.deepEqual(after.volumes, before.volumes, 'no file to mount');
      assert.deepEqual(only(objects, 'Secret')['stringData'], only(base, 'Secret')['stringData'], 'plain values stay out of the Secret');
      assert.deepEqual(testPod(objects).spec, testPod(base).spec, 'the helm test pod (doctor) runs no loop');
      assert.deepEqual(await validateObjects(objects), []);
    }
  });

  it('the interval is passed only with a heartbeat URL, default 5m; the webhook alone adds only its URL', async () => {
    const base = workloadPodSpec(await helmTemplate([values('native')]));
    const heartbeat = workloadPodSpec(await helmTemplate([values('native')], { 'notifications.heartbeat.url': HEARTBEAT }));
    assert.deepEqual(added(container(base, 'sidecar'), container(heartbeat, 'sidecar')), [
      { name: 'KEEPER_HEARTBEAT_URL', value: HEARTBEAT },
      { name: 'KEEPER_HEARTBEAT_INTERVAL', value: '5m' },
    ]);
    const webhook = workloadPodSpec(await helmTemplate([values('native')], { 'notifications.webhook.url': WEBHOOK }));
    assert.deepEqual(added(container(base, 'sidecar'), container(webhook, 'sidecar')), [{ name: 'KEEPER_WEBHOOK_URL', value: WEBHOOK }]);
    const intervalOnly = workloadPodSpec(await helmTemplate([values('native')], { 'notifications.heartbeat.interval': '1h' }));
    assert.deepEqual(notifyEnv(container(intervalOnly, 'sidecar')), [], 'no heartbeat, no interval');
  });

  it('created Secret: URLs by secretKeyRef, the signing secret as a file only the sidecar mounts, and the file holds it', async () => {
    const base = await helmTemplate([values('native')]);
    const objects = await helmTemplate([
      values('native'),
      await valuesFile({ secret: { create: { webhookSecret: 'whsec-not-real', webhookUrl: WEBHOOK, heartbeatUrl: HEARTBEAT } } }),
    ]);
    const secret = only(objects, 'Secret') as K8sObject & { stringData: Record<string, string> };
    assert.deepEqual(secret.stringData, {
      DATABASE_URL: 'postgres://keeper:secret@postgres:5432/keeper',
      'webhook-secret': 'whsec-not-real',
      'webhook-url': WEBHOOK,
      'heartbeat-url': HEARTBEAT,
    });
    const [before, spec] = [workloadPodSpec(base), workloadPodSpec(objects)];
    const sidecar = container(spec, 'sidecar');
    const ref = (key: string) => ({ secretKeyRef: { name: 'bot-baileys-keeper', key } });
    assert.deepEqual(added(container(before, 'sidecar'), sidecar), [
      { name: 'KEEPER_WEBHOOK_URL', valueFrom: ref('webhook-url') },
      { name: 'KEEPER_WEBHOOK_SECRET_FILE', value: '/var/run/secrets/baileys-keeper/webhook-secret' },
      { name: 'KEEPER_HEARTBEAT_URL', valueFrom: ref('heartbeat-url') },
      { name: 'KEEPER_HEARTBEAT_INTERVAL', value: '5m' },
    ]);
    const files = spec.volumes!.find((volume) => volume.name === 'keeper-secret-files')!;
    assert.deepEqual(files.secret, {
      secretName: 'bot-baileys-keeper',
      defaultMode: 0o440,
      items: [{ key: 'webhook-secret', path: 'webhook-secret' }],
    });
    assert.deepEqual(
      sidecar.volumeMounts!.find((mount) => mount.name === 'keeper-secret-files'),
      { name: 'keeper-secret-files', mountPath: '/var/run/secrets/baileys-keeper', readOnly: true },
    );
    assert.deepEqual(container(spec, 'restore'), container(before, 'restore'), 'restore: no variable, no mount');
    assert.equal(
      container(spec, 'bot').volumeMounts!.some((mount) => mount.name === 'keeper-secret-files'),
      false,
    );
    assert.deepEqual(testPod(objects).spec, testPod(base).spec, 'the helm test pod gets neither');
    // What the kubelet would give the sidecar: the URLs resolved from the Secret, the file at the path named.
    const env = resolveEnv(sidecar, objects);
    assert.equal(env['KEEPER_WEBHOOK_URL'], WEBHOOK);
    assert.equal(env['KEEPER_HEARTBEAT_URL'], HEARTBEAT);
    const volumes = await materialiseVolumes(spec, objects, await tempDir('chart-webhook-secret'));
    const file = hostPath(sidecar, volumes, env['KEEPER_WEBHOOK_SECRET_FILE']!);
    assert.ok(file);
    assert.equal(await readFile(file, 'utf8'), 'whsec-not-real');
    assert.deepEqual(await validateObjects(objects), []);
  });

  it('existing Secret: the keys named, next to the API token and encryption key files', async () => {
    const objects = await helmTemplate([values('existing-secret')], {
      'secret.webhookSecretKey': 'webhook-signing',
      'secret.webhookUrlKey': 'webhook-url',
      'secret.heartbeatUrlKey': 'heartbeat-url',
      'notifications.heartbeat.interval': '90s',
    });
    const spec = workloadPodSpec(objects);
    const sidecar = container(spec, 'sidecar');
    const ref = (key: string) => ({ secretKeyRef: { name: 'my-bot-keeper', key } });
    assert.deepEqual(
      (sidecar.env ?? []).filter((variable) => NOTIFY_ENV.includes(variable.name)),
      [
        { name: 'KEEPER_WEBHOOK_URL', valueFrom: ref('webhook-url') },
        { name: 'KEEPER_WEBHOOK_SECRET_FILE', value: '/var/run/secrets/baileys-keeper/webhook-secret' },
        { name: 'KEEPER_HEARTBEAT_URL', valueFrom: ref('heartbeat-url') },
        { name: 'KEEPER_HEARTBEAT_INTERVAL', value: '90s' },
      ],
    );
    assert.deepEqual(spec.volumes!.find((volume) => volume.name === 'keeper-secret-files')!.secret!.items, [
      { key: 'api-token', path: 'api-token' },
      { key: 'encryption-key', path: 'encryption-key' },
      { key: 'webhook-signing', path: 'webhook-secret' },
    ]);
    assert.deepEqual(notifyEnv(container(spec, 'restore')), []);
    // The test pod mounts the API token and encryption key for doctor, not the webhook secret.
    assert.deepEqual(
      testPod(objects)
        .spec.volumes!.find((volume) => volume.name === 'keeper-secret-files')!
        .secret!.items!.map((item) => item.path),
      ['api-token', 'encryption-key'],
    );
    assert.equal(
      objects.some((object) => object.kind === 'Secret'),
      false,
    );
    assert.deepEqual(await validateObjects(objects), []);
    const old = await helmTemplate(
      [values('existing-secret')],
      { 'sidecar.mode': 'classic', 'secret.webhookSecretKey': 'w', 'secret.webhookUrlKey': 'u' },
      OLDEST_SCHEMA.kubeVersion,
    );
    assert.deepEqual(await validateObjects(old, OLDEST_SCHEMA), [], `valid Kubernetes ${OLDEST_SCHEMA.kubeVersion} too`);
  });

  it('a URL given both as a value and from the Secret fails the render and says which two', async () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      [
        'native',
        { 'notifications.webhook.url': WEBHOOK, 'secret.create.webhookUrl': WEBHOOK },
        /notifications\.webhook\.url and secret\.create\.webhookUrl both set the same URL: keep one/,
      ],
      [
        'native',
        { 'notifications.heartbeat.url': HEARTBEAT, 'secret.create.heartbeatUrl': HEARTBEAT },
        /notifications\.heartbeat\.url and secret\.create\.heartbeatUrl both set the same URL/,
      ],
      [
        'existing-secret',
        { 'notifications.webhook.url': WEBHOOK, 'secret.webhookUrlKey': 'webhook-url' },
        /notifications\.webhook\.url and secret\.webhookUrlKey both set the same URL/,
      ],
      [
        'existing-secret',
        { 'notifications.heartbeat.url': HEARTBEAT, 'secret.heartbeatUrlKey': 'heartbeat-url' },
        /notifications\.heartbeat\.url and secret\.heartbeatUrlKey both set the same URL/,
      ],
    ];
    for (const [shape, set, message] of cases) assert.match(await helmTemplateError([values(shape)], set), message);
    // The created Secret's keys are ignored with an existing Secret: no conflict there.
    const existing = workloadPodSpec(
      await helmTemplate([values('existing-secret')], {
        'notifications.webhook.url': WEBHOOK,
        'secret.create.webhookUrl': 'https://other.example',
      }),
    );
    assert.equal((container(existing, 'sidecar').env ?? []).find((variable) => variable.name === 'KEEPER_WEBHOOK_URL')?.value, WEBHOOK);
  });

  it('a signing secret without a webhook URL, or the settings in keeper.extraEnv, fail the render with what to set', async () => {
    assert.match(
      await helmTemplateError([values('native')], { 'secret.create.webhookSecret': 'x' }),
      /webhook signing secret is set .* but no webhook URL: set notifications\.webhook\.url/,
    );
    for (const name of ['KEEPER_WEBHOOK_URL', 'KEEPER_HEARTBEAT_INTERVAL', 'KEEPER_WEBHOOK_SECRET']) {
      const extra = await valuesFile({ keeper: { extraEnv: [{ name, value: 'x' }] } });
      assert.match(
        await helmTemplateError([values('native'), extra]),
        new RegExp(`keeper\\.extraEnv: ${name} is the chart's to set; use notifications`),
      );
    }
  });

  it('the schema takes durations of at least 1s with a unit, and http(s) URLs; it refuses the rest', async () => {
    for (const interval of ['30s', '5m', '1h', '7d', '1000ms', '1s']) {
      const spec = workloadPodSpec(
        await helmTemplate([values('native')], { 'notifications.heartbeat.url': HEARTBEAT, 'notifications.heartbeat.interval': interval }),
      );
      assert.equal(
        (container(spec, 'sidecar').env ?? []).find((variable) => variable.name === 'KEEPER_HEARTBEAT_INTERVAL')?.value,
        interval,
      );
    }
    // A bare number has no unit (SPEC: new duration settings take one); under 1 s is below the keeper's minimum.
    for (const interval of ['5 minutes', '300', '5M', 'm', '0s', '999ms', '-5m', '1.5h']) {
      assert.match(
        await helmTemplateError([values('native')], { 'notifications.heartbeat.interval': interval }),
        /notifications\/heartbeat\/interval/,
        interval,
      );
    }
    assert.match(
      await helmTemplateError([values('native'), await valuesFile({ notifications: { heartbeat: { interval: 300 } } })]),
      /interval/,
    );
    for (const [key, url] of [
      ['notifications.webhook.url', 'hooks.example.com/x'],
      ['notifications.heartbeat.url', 'ftp://hc-ping.com/x'],
      ['secret.create.webhookUrl', 'https://a b'],
      ['secret.create.heartbeatUrl', 'hc-ping.com'],
    ] as const) {
      assert.match(await helmTemplateError([values('native')], { [key]: url }), new RegExp(key.replaceAll('.', '/')), `${key}=${url}`);
    }
    assert.match(await helmTemplateError([values('native')], { 'notifications.webhook.secret': 'x' }), /secret/, 'no unknown keys');
  });

  it('helm lint --strict passes with every notification setting on', async () => {
    const helm = await findTool('helm', 'HELM');
    const on = await valuesFile({
      notifications: { webhook: { url: WEBHOOK }, heartbeat: { interval: '1m' } },
      secret: { create: { webhookSecret: 'x', heartbeatUrl: HEARTBEAT } },
    });
    await tool(helm, ['lint', '--strict', CHART, '--values', values('native'), '--values', on]);
  });

  it('NOTES.txt says which notifications are on (never the URLs), or how to turn them on', async () => {
    const helm = await findTool('helm', 'HELM');
    const notes = async (set: string[]) => {
      const output = await tool(helm, ['install', 'bot', CHART, '--dry-run=client', '--values', values('native'), ...set]);
      return output.slice(output.indexOf('NOTES:'));
    };
    assert.match(await notes([]), /Notifications: set notifications\.webhook\.url/);
    const both = await notes(['--set', `secret.create.webhookUrl=${WEBHOOK}`, '--set', `notifications.heartbeat.url=${HEARTBEAT}`]);
    assert.match(both, /session events go to the webhook; the heartbeat pings every 5m/);
    assert.doesNotMatch(both, /hooks\.example\.com|hc-ping\.com/, 'a URL may carry a token');
  });
});

describe('kustomize: notifications', () => {
  /** A copy of deploy/kustomize with the component's commented notification entries uncommented. */
  async function uncommented(): Promise<string> {
    const dir = await tempDir('kustomize-notify');
    await cp(path.join(REPO, 'deploy', 'kustomize'), dir, { recursive: true });
    const file = path.join(dir, 'components', 'baileys-keeper', 'kustomization.yaml');
    const text = await readFile(file, 'utf8');
    const on = text.replace(/^(\s*)# (- KEEPER_(?:WEBHOOK|HEARTBEAT)_[A-Z]+=)/gm, '$1$2');
    assert.equal((on.match(/^\s*- KEEPER_(WEBHOOK|HEARTBEAT)_/gm) ?? []).length, 3, 'three commented entries');
    await writeFile(file, on);
    return dir;
  }

  const secret = (data: Record<string, string>): K8sObject =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'baileys-keeper' },
      data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
    }) as K8sObject;

  it('the commented ConfigMap entries, uncommented, render and reach the keepers', async () => {
    const objects = await kustomizeBuild(path.join(await uncommented(), 'examples', 'overlay'));
    const data = (only(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> }).data;
    assert.equal(data['KEEPER_WEBHOOK_URL'], 'https://hooks.example.com/baileys-keeper');
    assert.equal(data['KEEPER_HEARTBEAT_URL'], 'https://hc-ping.com/your-check-uuid');
    assert.equal(data['KEEPER_HEARTBEAT_INTERVAL'], '5m');
    assert.deepEqual(await validateObjects(objects), []);
    const env = resolveEnv(container(workloadPodSpec(objects), 'baileys-keeper-sidecar'), [
      ...objects,
      secret({ DATABASE_URL: 'postgres://x' }),
    ]);
    assert.equal(env['KEEPER_WEBHOOK_URL'], 'https://hooks.example.com/baileys-keeper');
    assert.equal(env['KEEPER_HEARTBEAT_INTERVAL'], '5m');
    assert.equal(env['KEEPER_WEBHOOK_SECRET'], undefined, 'no signing secret unless the Secret has one');
  });

  it('as committed: nothing set; the Secret keys reach the sidecar only, and win over the ConfigMap', async () => {
    const objects = await kustomizeBuild(path.join(REPO, 'deploy', 'kustomize', 'examples', 'overlay'));
    const data = (only(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> }).data;
    assert.deepEqual(
      Object.keys(data).filter((name) => NOTIFY_ENV.includes(name)),
      [],
    );
    const spec = workloadPodSpec(objects);
    const sidecar = container(spec, 'baileys-keeper-sidecar');
    const restore = container(spec, 'baileys-keeper-restore');
    const bare = secret({ DATABASE_URL: 'postgres://x' });
    assert.deepEqual(
      Object.keys(resolveEnv(sidecar, [...objects, bare])).filter((name) => NOTIFY_ENV.includes(name)),
      [],
      'optional keys missing: no variable at all',
    );
    const full = secret({
      DATABASE_URL: 'postgres://x',
      KEEPER_WEBHOOK_SECRET: 'whsec-not-real',
      KEEPER_WEBHOOK_URL: WEBHOOK,
      KEEPER_HEARTBEAT_URL: HEARTBEAT,
    });
    const env = resolveEnv(sidecar, [...objects, full]);
    assert.equal(env['KEEPER_WEBHOOK_SECRET'], 'whsec-not-real');
    assert.equal(env['KEEPER_WEBHOOK_URL'], WEBHOOK);
    assert.equal(env['KEEPER_HEARTBEAT_URL'], HEARTBEAT);
    assert.deepEqual(notifyEnv(restore), [], 'restore reads none of them from the Secret');
    const withConfig = await kustomizeBuild(path.join(await uncommented(), 'examples', 'overlay'));
    const winner = resolveEnv(container(workloadPodSpec(withConfig), 'baileys-keeper-sidecar'), [...withConfig, full]);
    assert.equal(winner['KEEPER_WEBHOOK_URL'], WEBHOOK, "the Secret's URL wins over the ConfigMap's");
  });
});

describe('compose: notifications', () => {
  it('the sidecar has the four settings commented next to the API token, valid once uncommented', async () => {
    const text = await readFile(path.join(REPO, 'deploy', 'compose', 'docker-compose.yml'), 'utf8');
    const on = text.replace(/^(\s*)# ((?:KEEPER_WEBHOOK|KEEPER_HEARTBEAT)_[A-Z_]+:)/gm, '$1$2');
    const sidecar = (parse(on, { merge: true }) as { services: Record<string, { environment: Record<string, string> }> }).services[
      'sidecar'
    ]!;
    assert.deepEqual(
      Object.keys(sidecar.environment).filter((name) => NOTIFY_ENV.includes(name)),
      ['KEEPER_WEBHOOK_URL', 'KEEPER_WEBHOOK_SECRET', 'KEEPER_HEARTBEAT_URL', 'KEEPER_HEARTBEAT_INTERVAL'],
    );
    assert.equal(sidecar.environment['KEEPER_HEARTBEAT_INTERVAL'], '5m');
    const restore = (parse(on, { merge: true }) as { services: Record<string, { environment: Record<string, string> }> }).services[
      'restore'
    ]!;
    assert.deepEqual(
      Object.keys(restore.environment).filter((name) => NOTIFY_ENV.includes(name)),
      [],
    );
  });
});
