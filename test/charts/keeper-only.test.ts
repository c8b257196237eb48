// The keeper added to a bot chart of the user's own (keeperOnly): deploy/helm/my-bot depends on this
// chart and includes its named templates (templates/_keeper.tpl) in its own Deployment. Rendered and
// validated as the chart's own shapes are; the bot's container, security context and Service stay the
// bot chart's; the alerts, dashboard, Service and PodMonitor select the user's pods; and the rendered
// pod runs for real: restore before the bot, the sidecar backing up its churn, the next pod restored.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { readFile } from 'node:fs/promises';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { readTree } from '../../harness/fs.js';
import { OLDEST_SCHEMA, validateObjects } from '../support/charts/k8s-schema.js';
import { LocalPod } from '../support/charts/local-pod.js';
import { cliEnvNames } from '../support/charts/names.js';
import { allContainers, container, resolveEnv, workloadPodSpec, type Container } from '../support/charts/pod.js';
import {
  BOT_CHART,
  botChartCopy,
  CHART,
  only,
  renderBotChart,
  renderChart,
  renderChartError,
  valuesFile,
  type K8sObject,
  type RenderOptions,
} from '../support/charts/render.js';
import { findTool, KUBE_VERSION, tool } from '../support/charts/tools.js';
import { CHURN_BOT } from '../../harness/paths.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';

const MODES = ['native', 'classic'] as const;
// The PromQL pod matcher of release `shop`'s alerts: the bot chart's Deployment, shop-my-bot.
const POD_REGEX = 'shop-my-bot-([0-9]+|[a-z0-9]{1,10}-[a-z0-9]{5})';

interface BotValues {
  securityContext: Record<string, unknown>;
  'baileys-keeper': { session: { id: string } };
}

/** The bot chart with a Secret created by the keeper's chart (instead of the example's existing one). */
function withCreatedSecret(mode: string, databaseUrl = 'postgres://keeper:secret@postgres:5432/keeper', more: Record<string, string> = {}) {
  return {
    setString: {
      'baileys-keeper.sidecar.mode': mode,
      'baileys-keeper.secret.existingSecret': '',
      'baileys-keeper.secret.create.databaseUrl': databaseUrl,
      ...more,
    },
  } satisfies RenderOptions;
}

function podLabels(objects: K8sObject[]): Record<string, string> {
  return (only(objects, 'Deployment')['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

describe('keeper only: a bot chart of its own with the keeper as a dependency', () => {
  for (const mode of MODES) {
    it(`${mode}: helm lint --strict passes and every object is valid Kubernetes ${KUBE_VERSION}`, async () => {
      const helm = await findTool('helm', 'HELM');
      const copy = await botChartCopy();
      await tool(helm, ['lint', '--strict', copy, '--set', `baileys-keeper.sidecar.mode=${mode}`, '--kube-version', KUBE_VERSION]);
      const objects = await renderBotChart({ setString: { 'baileys-keeper.sidecar.mode': mode } });
      assert.deepEqual(await validateObjects(objects), []);
      const created = await renderBotChart(
        withCreatedSecret(mode, undefined, {
          'baileys-keeper.secret.create.apiToken': 't',
          'baileys-keeper.secret.create.encryptionKey': 'k',
        }),
      );
      assert.deepEqual(await validateObjects(created), []);
    });
  }

  it(`classic: valid Kubernetes ${OLDEST_SCHEMA.kubeVersion} too`, async () => {
    const objects = await renderBotChart({
      setString: { 'baileys-keeper.sidecar.mode': 'classic' },
      kubeVersion: OLDEST_SCHEMA.kubeVersion,
    });
    assert.deepEqual(await validateObjects(objects, OLDEST_SCHEMA), []);
  });

  it("the bot stays the bot chart's: one workload (its own), its container and security context as written, its Service", async () => {
    const values = parse(await readFile(path.join(BOT_CHART, 'values.yaml'), 'utf8')) as BotValues;
    const objects = await renderBotChart();
    assert.deepEqual(
      objects.map((object) => `${object.kind}/${object.metadata.name}`).sort(),
      ['Deployment/shop-my-bot', 'Pod/shop-baileys-keeper-test-readyz', 'Service/shop-baileys-keeper', 'Service/shop-my-bot'],
      "no workload, ServiceAccount or headless Service of the keeper's chart (existingSecret: no Secret either)",
    );
    const spec = workloadPodSpec(objects);
    const bot = container(spec, 'bot');
    assert.deepEqual(bot.securityContext, values.securityContext, "the bot's security context is not forced: root, writable root");
    assert.deepEqual(spec.securityContext, {}, "the pod's security context is the bot chart's");
    assert.equal(bot.image, 'registry.example.com/my-bot:1.4.2');
    assert.deepEqual(bot.volumeMounts, [{ name: 'baileys-keeper-auth', mountPath: '/app/auth_info' }]);
    // Names unique within the pod: the bot's own `http` port and volumes are not the keeper's.
    const ports = allContainers(spec).flatMap((each) => (each.ports ?? []).map((port) => port.name));
    assert.deepEqual(ports.sort(), ['http', 'keeper-http']);
    assert.deepEqual(
      spec.volumes!.map((volume) => volume.name),
      ['baileys-keeper-auth'],
    );
    const botService = only(objects, 'Service', 'shop-my-bot') as K8sObject & { spec: { selector: Record<string, string> } };
    assert.ok(selects(botService.spec.selector, podLabels(objects)), "the bot's own Service selects its pod");
  });

  for (const mode of MODES) {
    it(`${mode}: restore first, the sidecar where the mode puts it, every env name one the CLI reads`, async () => {
      const objects = await renderBotChart({ setString: { 'baileys-keeper.sidecar.mode': mode } });
      const spec = workloadPodSpec(objects);
      assert.deepEqual(
        spec.initContainers!.map((each) => each.name),
        mode === 'native' ? ['restore', 'sidecar'] : ['restore'],
      );
      assert.deepEqual(
        spec.containers.map((each) => each.name),
        mode === 'native' ? ['bot'] : ['bot', 'sidecar'],
      );
      const known = await cliEnvNames();
      for (const keeper of [container(spec, 'restore'), container(spec, 'sidecar')]) {
        const env = resolveEnv(keeper, [...objects, secret('postgres://x')]);
        for (const name of Object.keys(env)) assert.ok(known.has(name), `${keeper.name} sets ${name}, which the CLI does not read`);
        assert.equal(env['KEEPER_SESSION_ID'], 'my-bot');
        assert.equal(keeper.volumeMounts!.find((mount) => mount.name === 'baileys-keeper-auth')!.mountPath, env['KEEPER_DIR']);
        assert.equal(keeper.securityContext!['runAsUser'], 0, "the keepers run as the bot's UID, as the example sets");
      }
      const sidecar = container(spec, 'sidecar');
      assert.equal(sidecar.startupProbe!.httpGet!.port, 'keeper-http');
      assert.equal(spec.terminationGracePeriodSeconds, 57, "the keeper's computed grace period");
      if (mode === 'classic') assert.deepEqual(sidecar.lifecycle!.preStop!.exec!.command.slice(0, 2), ['node', '-e']);
    });
  }

  it("the Service, PodMonitor, alerts and dashboard find the bot chart's pods", async () => {
    const objects = await renderBotChart({
      set: {
        'baileys-keeper.monitoring.podMonitor.enabled': 'true',
        'baileys-keeper.monitoring.prometheusRule.enabled': 'true',
        'baileys-keeper.monitoring.grafanaDashboard.enabled': 'true',
      },
    });
    const labels = podLabels(objects);
    const service = only(objects, 'Service', 'shop-baileys-keeper') as K8sObject & {
      spec: { selector: Record<string, string>; ports: { targetPort: number }[] };
    };
    assert.ok(selects(service.spec.selector, labels), `the sidecar's Service selects the pod: ${JSON.stringify(service.spec.selector)}`);
    const sidecar = container(workloadPodSpec(objects), 'sidecar');
    assert.equal(service.spec.ports[0]!.targetPort, sidecar.ports![0]!.containerPort);
    const podMonitor = only(objects, 'PodMonitor') as K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string }[] };
    };
    assert.ok(selects(podMonitor.spec.selector.matchLabels, labels), 'the PodMonitor selects the pod');
    assert.equal(podMonitor.spec.podMetricsEndpoints[0]!.port, 'keeper-http', "the sidecar's port, by its name");
    const rule = only(objects, 'PrometheusRule') as K8sObject & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
    for (const each of rule.spec.groups.flatMap((group) => group.rules)) {
      assert.ok(each.expr.includes(`namespace="bots", pod=~"${POD_REGEX}"`), `${each.alert}: ${each.expr}`);
    }
    const matches = (pod: string) => new RegExp(`^(?:${POD_REGEX})$`).test(pod);
    assert.ok(matches('shop-my-bot-5d8f7c9b4-x2k9q'), "the bot chart's Deployment pod");
    assert.equal(matches('shop-baileys-keeper-5d8f7c9b4-x2k9q'), false);
    const dashboard = only(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> };
    const pod = (
      JSON.parse(Object.values(dashboard.data)[0]!) as { templating: { list: { name: string; regex?: string }[] } }
    ).templating.list.find((variable) => variable.name === 'pod')!;
    assert.equal(pod.regex, `/^${POD_REGEX}$/`);
    assert.deepEqual(await validateObjects(objects), []);
  });
});

describe('keeper only: what the render refuses', () => {
  it('the named templates fail without keeperOnly.enabled: the chart would run a bot pod of its own beside', async () => {
    const helm = await findTool('helm', 'HELM');
    const copy = await botChartCopy();
    const refused = tool(helm, [
      'template',
      'shop',
      copy,
      '--set',
      'baileys-keeper.keeperOnly.enabled=false',
      '--set',
      'baileys-keeper.bot.image.repository=x',
      '--set',
      'baileys-keeper.bot.image.tag=1',
    ]);
    await assert.rejects(refused, /need keeperOnly\.enabled=true.*a second writer of the same session/);
  });

  it('keeperOnly needs the workload name and the pod selector, and says so; it needs no bot image', async () => {
    const base = { 'secret.create.databaseUrl': 'postgres://x', 'session.id': 'my-bot' };
    const on = { 'keeperOnly.enabled': 'true' };
    assert.match(await renderChartError({ setString: base, set: on }), /keeperOnly\.workloadName is required with keeperOnly\.enabled/);
    assert.match(
      await renderChartError({ setString: { ...base, 'keeperOnly.workloadName': 'my-bot' }, set: on }),
      /keeperOnly\.podSelector is required with keeperOnly\.enabled/,
    );
    // Standalone (no parent), it renders only the keeper's own objects: no workload to run a bot in.
    const objects = await renderChart({
      values: [await valuesFile({ keeperOnly: { enabled: true, workloadName: 'my-bot', podSelector: { app: 'my-bot' } } })],
      setString: { 'secret.create.databaseUrl': 'postgres://x', 'session.id': 'my-bot' },
    });
    assert.deepEqual(objects.map((object) => object.kind).sort(), ['Pod', 'Secret', 'Service']);
    // NOTES.txt speaks of the user's workload and finds its pods by their labels.
    const helm = await findTool('helm', 'HELM');
    const output = await tool(helm, [
      ...['install', 'shop', CHART, '--dry-run=client', '--namespace', 'bots', '--set', 'keeperOnly.enabled=true'],
      ...['--set-string', 'keeperOnly.workloadName=shop-my-bot,keeperOnly.podSelector.app=my-bot'],
      ...['--set-string', 'secret.create.databaseUrl=postgres://x,session.id=my-bot'],
    ]);
    const notes = output.slice(output.indexOf('NOTES:'));
    assert.match(notes, /^Pod: the pods of shop-my-bot /m);
    assert.match(notes, /logs -l app=my-bot -c restore/);
    assert.deepEqual((only(objects, 'Service')['spec'] as { selector: unknown }).selector, { app: 'my-bot' });
  });
});

/** The Secret the example's values name (secret.existingSecret: my-bot-keeper), which the user creates. */
function secret(databaseUrl: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'my-bot-keeper' },
    data: { DATABASE_URL: Buffer.from(databaseUrl).toString('base64') },
  } as K8sObject;
}

/** One pod's life: start, let the bot churn until the sidecar stored a few generations, terminate. */
async function livePod(objects: K8sObject[], label: string, seed: number) {
  const pod = await LocalPod.create(objects, await tempDir(label));
  let out = '';
  let atStart = new Map<string, string>();
  try {
    await pod.start((each: Container, hostDir) => {
      const dir = hostDir(each.volumeMounts!.find((mount) => mount.name === 'baileys-keeper-auth')!.mountPath);
      // What the bot finds when it starts, read before its process exists.
      atStart = new Map(
        readdirSync(dir, { withFileTypes: true })
          .filter((entry) => entry.isFile() && !entry.name.startsWith('.'))
          .map((entry) => [entry.name, readFileSync(path.join(dir, entry.name), 'utf8')]),
      );
      const child = spawn(process.execPath, [CHURN_BOT, dir, '--rate', '20', '--seed', String(seed)], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      return child;
    });
    await waitFor(
      () => (out.includes('ready') ? true : null),
      30_000,
      () => `the bot did not start: ${out}`,
    );
    const sidecar = pod.service('sidecar');
    await waitFor(
      async () => ((await sidecar.metric('baileys_keeper_backups_total{result="success"}')) >= 2 ? true : null),
      60_000,
      () => sidecar.output.join('\n'),
    );
    const ends = await pod.terminate();
    return { pod, ends, atStart, sidecarOutput: sidecar.output };
  } catch (error) {
    pod.kill();
    throw error;
  }
}

for (const mode of MODES) {
  describe(`keeper only: the bot chart's pod, run for real (${mode})`, async () => {
    const url = await freshDatabase(`keeper_only_${mode}`);

    it("restores before the bot, backs up its churn, stores its last writes; the next pod starts on the first's login", async () => {
      // Short stop times for a test: the classic preStop hook sleeps bot.stopSeconds.
      const objects = [
        ...(await renderBotChart({
          setString: { 'baileys-keeper.sidecar.mode': mode },
          set: { 'baileys-keeper.bot.stopSeconds': '2', 'baileys-keeper.sidecar.shutdownTimeoutMs': '6000' },
        })),
        secret(url),
      ];
      const first = await livePod(objects, `keeper-only-${mode}-1`, 3);
      assert.equal(first.ends.get('bot')!.code, 0);
      assert.equal(first.ends.get('sidecar')!.code, 0, first.sidecarOutput.join('\n'));
      const events = first.pod.events;
      assert.ok(events.indexOf('restore exited 0') < events.indexOf('bot started'), events.join(', '));
      assert.ok(events.indexOf('bot exited 0') < events.indexOf('sidecar SIGTERM'), events.join(', '));
      const left = await readTree(first.pod.hostPath('bot', '/app/auth_info'));
      assert.deepEqual(diffTrees(await storedHead(url, 'my-bot'), left), [], 'the stored head is what the bot left');

      const second = await livePod(objects, `keeper-only-${mode}-2`, 4);
      assert.deepEqual(diffTrees(second.atStart, left), [], 'the next pod restored it');
      assert.equal(second.ends.get('sidecar')!.code, 0, second.sidecarOutput.join('\n'));
    });
  });
}
