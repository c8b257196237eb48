// The Helm chart, rendered for every supported shape (ci/*-values.yaml) with helm for Kubernetes 1.34
// (classic mode also for 1.25, the oldest Chart.yaml allows): lint, offline schema validation of every
// object, and the fields the keeper's guarantees depend on.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import * as defaults from '../../src/config.js';
import { SETTINGS } from '../../src/options.js';
import type { Parser } from '../../src/setting-parsers.js';
import { OLDEST_SCHEMA, validateObjects } from '../support/charts/k8s-schema.js';
import { cliEnvNames, exposedMetricNames, metricNamesIn } from '../support/charts/names.js';
import { allContainers, container, workloadPodSpec, type Container, type PodSpec } from '../support/charts/pod.js';
import {
  CHART,
  helmTemplate,
  helmTemplateError,
  only,
  parseManifests,
  renderChart,
  renderChartError,
  valuesFile,
  type K8sObject,
} from '../support/charts/render.js';
import { findTool, KUBE_VERSION, tool } from '../support/charts/tools.js';
import { REPO } from '../../harness/paths.js';

const values = (name: string) => path.join(CHART, 'ci', `${name}-values.yaml`);
const SHAPES = ['native', 'classic', 'existing-secret', 'monitoring-on', 'sessions-dir'];
// The pod-name matcher of every alert for release `bot` (PromQL regexes are anchored at both ends).
const POD_REGEX = 'bot-baileys-keeper-([0-9]+|[a-z0-9]{1,10}-[a-z0-9]{5})';
/** Durations around the keeper's bounds (the shortest, 24 days: a Node.js timer's limit) and malformed ones. */
const DURATION_SAMPLES = [
  '0s',
  '0ms',
  '1ms',
  '99ms',
  '100ms',
  '999ms',
  '1000ms',
  '1s',
  '30s',
  '5m',
  '1h',
  '7d',
  '24d',
  '25d',
  '99999d',
  '576h',
  '577h',
  '34560m',
  '34561m',
  '2073600s',
  '2073601s',
  '2073600000ms',
  '2073600001ms',
  '1.5s',
  '1h30m',
  '5',
  '5x',
  '',
];
const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

function envOf(spec: Container): Map<string, NonNullable<Container['env']>[number]> {
  return new Map((spec.env ?? []).map((variable) => [variable.name, variable]));
}

function envValue(spec: Container, name: string): string | undefined {
  return envOf(spec).get(name)?.value;
}

interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
}

function keepers(spec: PodSpec): Container[] {
  return [container(spec, 'restore'), container(spec, 'sidecar')];
}

describe('chart: lint and schema', () => {
  it('has a ci values file for each supported shape', async () => {
    const files = (await readdir(path.join(CHART, 'ci'))).filter((name) => name.endsWith('-values.yaml'));
    for (const shape of SHAPES) assert.ok(files.includes(`${shape}-values.yaml`), `ci/${shape}-values.yaml exists`);
  });

  for (const shape of SHAPES) {
    it(`${shape}: helm lint --strict passes and every rendered object is valid Kubernetes ${KUBE_VERSION}`, async () => {
      const helm = await findTool('helm', 'HELM');
      await tool(helm, ['lint', '--strict', CHART, '--values', values(shape), '--kube-version', KUBE_VERSION]);
      const objects = await helmTemplate([values(shape)]);
      assert.ok(objects.length >= 4, 'workload, service, secret or service account, test pod');
      assert.deepEqual(await validateObjects(objects), []);
    });
  }

  // Classic mode is what clusters before 1.29 run, down to Chart.yaml's kubeVersion: every shape in
  // classic mode, rendered for that version, must be valid there (no field added since).
  for (const shape of SHAPES.filter((name) => name !== 'native')) {
    it(`${shape} in classic mode: lint passes and every rendered object is valid Kubernetes ${OLDEST_SCHEMA.kubeVersion}`, async () => {
      const chart = parse(await readFile(path.join(CHART, 'Chart.yaml'), 'utf8')) as { kubeVersion: string };
      assert.equal(
        chart.kubeVersion,
        `>=${OLDEST_SCHEMA.kubeVersion}-0`,
        'the oldest schema checked is the oldest version Chart.yaml allows',
      );
      const classic = { 'sidecar.mode': 'classic' };
      const helm = await findTool('helm', 'HELM');
      await tool(helm, [
        'lint',
        '--strict',
        CHART,
        '--values',
        values(shape),
        '--set',
        'sidecar.mode=classic',
        '--kube-version',
        OLDEST_SCHEMA.kubeVersion,
      ]);
      const objects = await helmTemplate([values(shape)], classic, OLDEST_SCHEMA.kubeVersion);
      assert.deepEqual(
        workloadPodSpec(objects).containers.map((c) => c.name),
        ['bot', 'sidecar'],
      );
      assert.deepEqual(await validateObjects(objects, OLDEST_SCHEMA), []);
    });
  }

  it(
    `the ${OLDEST_SCHEMA.kubeVersion} validator rejects a native ` +
      `sidecar's restartPolicy, which that version does not have (it can fail)`,
    async () => {
      const objects = await helmTemplate([values('native')]);
      assert.equal(workloadPodSpec(objects).initContainers?.find((c) => c.name === 'sidecar')?.restartPolicy, 'Always');
      assert.deepEqual(await validateObjects(objects), [], 'valid for the current version');
      assert.match((await validateObjects(objects, OLDEST_SCHEMA)).join('\n'), /restartPolicy/);
    },
  );

  it('the validator rejects an unknown field, a wrong type and a bad enum (it can fail)', async () => {
    const objects = await helmTemplate([values('native')]);
    const broken = structuredClone(objects);
    const spec = workloadPodSpec(broken);
    (spec.containers[0] as unknown as Record<string, unknown>)['imagePullPolicyy'] = 'Always';
    (spec.initContainers![1]!.ports![0] as unknown as Record<string, unknown>)['containerPort'] = 'http';
    (only(broken, 'Service')['spec'] as Record<string, unknown>)['type'] = 'Balancer';
    const problems = (await validateObjects(broken)).join('\n');
    assert.match(problems, /imagePullPolicyy/);
    assert.match(problems, /containerPort must be integer/);
    assert.match(problems, /Service\/.*type must be equal to one of the allowed values/);
  });

  it('values.yaml starts with the schema modeline and every chart key has a comment', async () => {
    const text = await readFile(path.join(CHART, 'values.yaml'), 'utf8');
    const lines = text.split('\n');
    assert.equal(lines[0], '# yaml-language-server: $schema=values.schema.json');
    const schema = JSON.parse(await readFile(path.join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
    // A chart key is one the schema spells out; what lies below a key typed by a shared definition
    // (a Kubernetes object, resources) is that key's default value, not a key of its own.
    const stack: { indent: number; node: SchemaNode | null }[] = [{ indent: -1, node: schema }];
    const undocumented: string[] = [];
    lines.forEach((line, index) => {
      const match = /^(\s*)([A-Za-z_][\w]*):/.exec(line);
      if (!match) return;
      const indent = match[1]!.length;
      while (stack.at(-1)!.indent >= indent) stack.pop();
      const parent = stack.at(-1)!.node;
      const node = parent && !parent.$ref ? (parent.properties?.[match[2]!] ?? null) : null;
      stack.push({ indent, node });
      if (!node) return;
      let previous = index - 1;
      while (previous > 0 && lines[previous]!.trim() === '') previous--;
      const above = lines[previous]!.trim();
      if (!above.startsWith('#')) undocumented.push(`line ${index + 1}: ${line.trim()}`);
    });
    assert.deepEqual(undocumented, []);
  });

  it('values.schema.json is strict and describes every property', async () => {
    const schema = JSON.parse(await readFile(path.join(CHART, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
    const missing: string[] = [];
    const walk = (node: Record<string, unknown>, where: string) => {
      if (node['type'] === 'object' && node['properties']) {
        assert.equal(node['additionalProperties'], false, `${where} forbids unknown keys`);
        for (const [key, child] of Object.entries(node['properties'] as Record<string, Record<string, unknown>>)) {
          if (typeof child['description'] !== 'string' || child['description'] === '') missing.push(`${where}.${key}`);
          walk(child, `${where}.${key}`);
        }
      }
    };
    walk(schema, 'values');
    assert.deepEqual(missing, []);
    // Every key of values.yaml is in the schema (the schema rejects unknown keys, so helm lint would fail too).
    const defaultsYaml = parse(await readFile(path.join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    assert.ok(Object.keys(defaultsYaml).every((key) => key in (schema['properties'] as object)));
  });

  it("every duration value's bounds lie within what the keeper takes for its variable", async () => {
    const schema = JSON.parse(await readFile(path.join(CHART, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
    const parsers = new Map(
      Object.values(SETTINGS).flatMap((s) => (s.env && s.parse.duration ? [[s.env, s.parse as Parser<unknown>] as const] : [])),
    );
    const found: string[] = [];
    const wrong: string[] = [];
    const walk = (node: Record<string, unknown>, where: string) => {
      for (const [key, child] of Object.entries((node['properties'] ?? {}) as Record<string, Record<string, unknown>>)) {
        const variable = /\((KEEPER_[A-Z_]+)\)/.exec(String(child['description'] ?? ''))?.[1];
        const parser = variable ? parsers.get(variable) : undefined;
        const rule = parser?.duration;
        if (rule && variable && child['type'] === 'string') {
          // Written with its unit: every sample the schema's pattern lets through, the keeper must take.
          found.push(variable);
          const pattern = new RegExp(String(child['pattern'] ?? ''));
          for (const sample of DURATION_SAMPLES) {
            if (!pattern.test(sample)) continue;
            try {
              parser!(sample, variable);
            } catch {
              wrong.push(`${where}.${key} (${variable}): the schema takes ${sample}, the keeper does not`);
            }
          }
        } else if (rule && variable) {
          // A bare number in the variable keeps the unit its name says; the chart writes the value bare.
          const unit = variable.endsWith('_MS') ? 1 : 1000;
          const min = Number(child['minimum'] ?? Number.NEGATIVE_INFINITY) * unit;
          const max = Number(child['maximum'] ?? Number.POSITIVE_INFINITY) * unit;
          found.push(variable);
          if (min < rule.minMs || max > rule.maxMs)
            wrong.push(`${where}.${key} (${variable}): ${min}..${max} ms, keeper ${rule.minMs}..${rule.maxMs}`);
        }
        walk(child, `${where}.${key}`);
      }
    };
    walk(schema, 'values');
    assert.ok(found.length >= 9, `duration values found: ${found.join(', ')}`);
    assert.deepEqual(wrong, [], 'helm accepts a value the keeper refuses at start (a crash loop instead of a render error)');
  });

  it('the schema rejects typos, a second replica, a bad session id and an unknown mode, with helm saying why', async () => {
    assert.match(await helmTemplateError([values('native')], { 'bot.imag': 'x' }), /additional properties 'imag' not allowed|imag/);
    assert.match(await helmTemplateError([values('native')], { 'sidecar.mode': 'sidecar' }), /mode/);
    assert.match(await helmTemplateError([values('native')], { 'session.id': 'my bot!' }), /session|id/);
    assert.match(await helmTemplateError([values('native'), await valuesFile({ replicas: 2 })]), /replicas/);
    assert.equal(
      workloadPodSpec(await helmTemplate([values('native'), await valuesFile({ replicas: 0 })])).containers.length,
      1,
      'replicas 0 (stopped) is allowed',
    );
    // As a subchart, the parent's `global` values reach this chart too.
    assert.equal(
      workloadPodSpec(await helmTemplate([values('native'), await valuesFile({ global: { imageRegistry: 'mirror.example.com' } })]))
        .containers.length,
      1,
      'global is allowed',
    );
  });

  it('without a bot image or a database URL the render fails and says what to set', async () => {
    assert.match(await helmTemplateError([], { 'secret.create.databaseUrl': 'postgres://x' }), /bot\.image\.repository is required/);
    assert.match(await helmTemplateError([], { 'bot.image.repository': 'my-bot' }), /secret\.existingSecret.*secret\.create\.databaseUrl/);
  });
});

describe('chart: the pod', () => {
  it('native: restore, then the sidecar as an init container with restartPolicy Always, then the bot', async () => {
    const spec = workloadPodSpec(await helmTemplate([values('native')]));
    assert.deepEqual(
      spec.initContainers!.map((c) => c.name),
      ['restore', 'sidecar'],
    );
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['bot'],
    );
    assert.equal(container(spec, 'restore').restartPolicy, undefined, 'restore runs to completion once');
    assert.equal(container(spec, 'sidecar').restartPolicy, 'Always');
  });

  it('classic: restore as the only init container, bot and sidecar side by side', async () => {
    const spec = workloadPodSpec(await helmTemplate([values('classic')]));
    assert.deepEqual(
      spec.initContainers!.map((c) => c.name),
      ['restore'],
    );
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['bot', 'sidecar'],
    );
    assert.equal(container(spec, 'sidecar').restartPolicy, undefined);
    assert.equal(envValue(container(spec, 'sidecar'), 'KEEPER_SHUTDOWN_QUIET_MS'), '5000');
  });

  it("classic: the sidecar's preStop hook holds its SIGTERM back for the bot's stop time; native needs none", async () => {
    const classic = workloadPodSpec(await helmTemplate([values('classic'), await valuesFile({ bot: { stopSeconds: 12 } })]));
    const [node, flag, script] = container(classic, 'sidecar').lifecycle!.preStop!.exec!.command;
    assert.deepEqual([node, flag], ['node', '-e'], 'the sidecar image has node, and no shell');
    assert.equal(script, 'setTimeout(() => {}, 12000)');
    assert.equal(container(classic, 'bot').lifecycle, undefined);
    const native = workloadPodSpec(await helmTemplate([values('native')]));
    assert.equal(container(native, 'sidecar').lifecycle, undefined, 'native: Kubernetes stops the sidecar after the bot');
  });

  it('native mode refuses a cluster before 1.29 and says to use classic; classic renders there', async () => {
    assert.match(
      await helmTemplateError([values('native')], {}, '1.28.9'),
      /sidecar\.mode=native needs Kubernetes 1\.29.*set sidecar\.mode=classic/,
    );
    const spec = workloadPodSpec(await helmTemplate([values('classic')], {}, '1.28.9'));
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['bot', 'sidecar'],
    );
  });

  it('one pod at a time: replicas 1, Recreate for a Deployment, a StatefulSet when asked', async () => {
    const deployment = only(await helmTemplate([values('native')]), 'Deployment');
    const spec = deployment['spec'] as { replicas: number; strategy: { type: string } };
    assert.equal(spec.replicas, 1);
    assert.deepEqual(spec.strategy, { type: 'Recreate' });
    const objects = await helmTemplate([values('existing-secret')]);
    const statefulSet = only(objects, 'StatefulSet');
    assert.equal((statefulSet['spec'] as { replicas: number }).replicas, 1);
    // Its governing Service must be headless (Kubernetes' requirement for the pod's DNS records).
    const governing = only(objects, 'Service', (statefulSet['spec'] as { serviceName: string }).serviceName) as K8sObject & {
      spec: { clusterIP?: string; selector: Record<string, string> };
    };
    assert.equal(governing.spec.clusterIP, 'None');
    const podLabels = (statefulSet['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const [key, value] of Object.entries(governing.spec.selector)) assert.equal(podLabels[key], value);
  });

  it("restore waits for the old pod's whole termination and a killed pod's lease (a Deployment replaces an evicted pod at once)", async () => {
    for (const shape of SHAPES) {
      const spec = workloadPodSpec(await helmTemplate([values(shape)]));
      const leaseTtlSeconds = Number(envValue(container(spec, 'sidecar'), 'KEEPER_LEASE_TTL_MS')) / 1000;
      const leaseWait = Number(envValue(container(spec, 'restore'), 'KEEPER_LEASE_WAIT_SECONDS'));
      assert.ok(
        leaseWait >= spec.terminationGracePeriodSeconds! + leaseTtlSeconds,
        `${shape}: lease wait ${leaseWait} s >= grace ${spec.terminationGracePeriodSeconds} s + lease TTL ${leaseTtlSeconds} s`,
      );
    }
    const pinnedGrace = workloadPodSpec(
      await helmTemplate([values('native'), await valuesFile({ workload: { terminationGracePeriodSeconds: 200 } })]),
    );
    assert.ok(Number(envValue(container(pinnedGrace, 'restore'), 'KEEPER_LEASE_WAIT_SECONDS')) >= 230, 'follows a pinned grace period');
    const pinned = workloadPodSpec(await helmTemplate([values('native'), await valuesFile({ restore: { leaseWaitSeconds: 45 } })]));
    assert.equal(envValue(container(pinned, 'restore'), 'KEEPER_LEASE_WAIT_SECONDS'), '45', 'an explicit value is kept');
    // A grace period that long computes a wait the keeper would refuse: it stops at the keeper's 24 days.
    const endless = workloadPodSpec(await helmTemplate([values('native'), await valuesFile({ bot: { stopSeconds: 2_073_600 } })]));
    const computed = envValue(container(endless, 'restore'), 'KEEPER_LEASE_WAIT_SECONDS')!;
    assert.equal(computed, '2073600');
    assert.doesNotThrow(() => SETTINGS['lease-wait'].parse(computed, 'KEEPER_LEASE_WAIT_SECONDS'));
  });

  for (const shape of SHAPES) {
    it(`${shape}: the auth volume is shared, and every env name is one the CLI reads`, async () => {
      const objects = await helmTemplate([values(shape)]);
      const spec = workloadPodSpec(objects);
      const auth = spec.volumes!.find((volume) => volume.name === 'auth');
      assert.ok(auth?.emptyDir, 'the auth directory is an emptyDir: a fresh pod starts empty and is restored');
      const bot = container(spec, 'bot');
      const botValues = parse(await readFile(values(shape), 'utf8')) as {
        bot: { authDir?: string; sessionsDir?: string };
        keeper?: { sessionsDir?: { enabled?: boolean } };
      };
      // With a sessions directory the bot sees the volume at its sessions directory, not its auth directory.
      const many = botValues.keeper?.sessionsDir?.enabled === true;
      const botPath = many ? botValues.bot.sessionsDir : (botValues.bot.authDir ?? '/app/auth_info');
      assert.deepEqual(bot.volumeMounts!.find((mount) => mount.name === 'auth')?.mountPath, botPath);
      const known = await cliEnvNames();
      for (const keeper of keepers(spec)) {
        assert.equal(keeper.command, undefined, `${keeper.name} keeps the image's ENTRYPOINT (tini + the CLI)`);
        const dir = envValue(keeper, many ? 'KEEPER_SESSIONS_DIR' : 'KEEPER_DIR');
        assert.ok(dir, `${keeper.name} is told where the volume is`);
        assert.equal(
          keeper.volumeMounts!.find((mount) => mount.name === 'auth')?.mountPath,
          dir,
          `${keeper.name} mounts the auth volume at ${many ? 'KEEPER_SESSIONS_DIR' : 'KEEPER_DIR'}`,
        );
        for (const name of envOf(keeper).keys()) assert.ok(known.has(name), `${keeper.name} sets ${name}, which the CLI does not read`);
        assert.equal(envValue(keeper, 'KEEPER_SESSION_ID'), envValue(container(spec, 'restore'), 'KEEPER_SESSION_ID'));
        assert.ok(envOf(keeper).get('DATABASE_URL')?.valueFrom?.secretKeyRef, 'DATABASE_URL comes from a Secret');
      }
      assert.deepEqual(container(spec, 'restore').args, ['restore']);
      assert.deepEqual(container(spec, 'sidecar').args, ['sidecar']);
    });

    it(`${shape}: hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp, resources`, async () => {
      const spec = workloadPodSpec(await helmTemplate([values(shape)]));
      assert.equal(spec.securityContext!['runAsNonRoot'], true);
      assert.equal(spec.securityContext!['runAsUser'], 1000, "the images' node user");
      assert.equal(spec.securityContext!['fsGroup'], 1000, 'every container can write the shared emptyDir');
      assert.deepEqual(spec.securityContext!['seccompProfile'], { type: 'RuntimeDefault' });
      assert.equal(spec.automountServiceAccountToken, false);
      for (const each of allContainers(spec)) {
        assert.equal(each.securityContext!['readOnlyRootFilesystem'], true, `${each.name} read-only root`);
        assert.equal(each.securityContext!['allowPrivilegeEscalation'], false, `${each.name} no privilege escalation`);
        assert.deepEqual(each.securityContext!['capabilities'], { drop: ['ALL'] }, `${each.name} drops all capabilities`);
        assert.ok(each.resources?.requests?.['memory'] && each.resources.limits?.['memory'], `${each.name} has memory requests and limits`);
      }
    });
  }

  it("the sidecar's memory request covers its measured idle RSS with a large session (~120 MiB), with room for backups", async () => {
    const mebibytes = (quantity: string) => {
      const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
      assert.ok(match, `a Mi/Gi quantity: ${quantity}`);
      return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
    };
    const sidecar = container(workloadPodSpec(await helmTemplate([values('native')])), 'sidecar');
    assert.ok(mebibytes(sidecar.resources!.requests!['memory']!) >= 160, `request ${sidecar.resources!.requests!['memory']}`);
    assert.ok(mebibytes(sidecar.resources!.limits!['memory']!) >= 384, `limit ${sidecar.resources!.limits!['memory']}`);
    const component = parseManifests(
      await readFile(path.join(REPO, 'deploy', 'kustomize', 'components', 'baileys-keeper', 'keeper.yaml'), 'utf8'),
    );
    const componentSidecar = (component[0]!['spec'] as { template: { spec: PodSpec } }).template.spec.initContainers!.find(
      (each) => each.name === 'baileys-keeper-sidecar',
    )!;
    assert.deepEqual(componentSidecar.resources, sidecar.resources, 'the kustomize component asks the same');
  });

  it('sidecar probes: startup and readiness on /readyz, liveness on /healthz, on the port it listens on', async () => {
    const spec = workloadPodSpec(await helmTemplate([values('native')]));
    const sidecar = container(spec, 'sidecar');
    assert.equal(sidecar.startupProbe?.httpGet?.path, '/readyz');
    assert.equal(sidecar.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(sidecar.livenessProbe?.httpGet?.path, '/healthz');
    const port = sidecar.ports!.find((candidate) => candidate.name === sidecar.startupProbe!.httpGet!.port)!.containerPort;
    assert.equal(envValue(sidecar, 'KEEPER_LISTEN'), `0.0.0.0:${port}`);
    assert.equal(container(spec, 'restore').startupProbe, undefined);
  });

  it('the grace period covers the bot stopping (the classic preStop hook), the quiet period and the whole final backup', async () => {
    for (const shape of ['native', 'classic']) {
      for (const stopSeconds of [30, 75]) {
        const spec = workloadPodSpec(await helmTemplate([values(shape), await valuesFile({ bot: { stopSeconds } })]));
        const sidecar = container(spec, 'sidecar');
        const needed =
          stopSeconds +
          (Number(envValue(sidecar, 'KEEPER_SHUTDOWN_QUIET_MS')) + Number(envValue(sidecar, 'KEEPER_SHUTDOWN_TIMEOUT_MS'))) / 1000;
        assert.ok(
          spec.terminationGracePeriodSeconds! > needed,
          `${shape}, bot.stopSeconds ${stopSeconds}: ${spec.terminationGracePeriodSeconds} s > ${needed} s`,
        );
      }
    }
    const pinned = workloadPodSpec(
      await helmTemplate([values('native'), await valuesFile({ workload: { terminationGracePeriodSeconds: 90 } })]),
    );
    assert.equal(pinned.terminationGracePeriodSeconds, 90);
  });

  it('the chart defaults are the CLI defaults, and the images are the package version', async () => {
    const spec = workloadPodSpec(await helmTemplate([values('native')]));
    const sidecar = container(spec, 'sidecar');
    const restore = container(spec, 'restore');
    assert.equal(envValue(sidecar, 'KEEPER_DEBOUNCE_MS'), String(defaults.DEFAULT_DEBOUNCE_MS));
    assert.equal(envValue(sidecar, 'KEEPER_MAX_DELAY_MS'), String(defaults.DEFAULT_MAX_DELAY_MS));
    assert.equal(envValue(sidecar, 'KEEPER_INTERVAL_MS'), String(defaults.DEFAULT_INTERVAL_MS));
    assert.equal(envValue(sidecar, 'KEEPER_LEASE_TTL_MS'), String(defaults.DEFAULT_LEASE_TTL_MS));
    assert.equal(envValue(sidecar, 'KEEPER_KEEP_GENERATIONS'), String(defaults.DEFAULT_KEEP_GENERATIONS));
    assert.equal(envValue(sidecar, 'KEEPER_SHUTDOWN_QUIET_MS'), String(defaults.DEFAULT_SHUTDOWN_QUIET_MS));
    assert.equal(envValue(sidecar, 'KEEPER_SHUTDOWN_TIMEOUT_MS'), String(defaults.DEFAULT_SHUTDOWN_TIMEOUT_MS));
    assert.equal(envValue(sidecar, 'KEEPER_LISTEN'), defaults.DEFAULT_LISTEN);
    assert.equal(envValue(restore, 'KEEPER_WAIT_SECONDS'), String(defaults.DEFAULT_WAIT_MS / 1000));
    // Not KEEPER_LEASE_WAIT_SECONDS: the chart computes it from the grace period (see above).
    assert.equal(envValue(restore, 'KEEPER_SCHEMA'), defaults.DEFAULT_SCHEMA);
    assert.equal(restore.image, `ghcr.io/baileys-keeper/baileys-keeper-init:${pkg.version}`);
    assert.equal(sidecar.image, `ghcr.io/baileys-keeper/baileys-keeper-sidecar:${pkg.version}`);
    const chart = parse(await readFile(path.join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    assert.equal(chart.appVersion, pkg.version);
  });
});

describe("chart: the bot's own volumes", () => {
  const config = {
    bot: {
      extraVolumes: [
        { name: 'config', configMap: { name: 'my-bot-config' } },
        { name: 'media', emptyDir: { sizeLimit: '1Gi' } },
      ],
      extraVolumeMounts: [
        { name: 'config', mountPath: '/app/config', readOnly: true },
        { name: 'media', mountPath: '/app/media' },
      ],
    },
  };

  it('bot.extraVolumes are volumes of the pod that only the bot mounts; lint and both Kubernetes schemas pass', async () => {
    const extra = await valuesFile(config);
    for (const shape of ['native', 'classic']) {
      const helm = await findTool('helm', 'HELM');
      await tool(helm, ['lint', '--strict', CHART, '--values', values(shape), '--values', extra, '--kube-version', KUBE_VERSION]);
      const objects = await helmTemplate([values(shape), extra]);
      assert.deepEqual(await validateObjects(objects), [], shape);
      const spec = workloadPodSpec(objects);
      const volumes = new Map(spec.volumes!.map((volume) => [volume.name, volume as unknown]));
      assert.deepEqual(volumes.get('config'), config.bot.extraVolumes[0], `${shape}: passed through as written`);
      assert.deepEqual(volumes.get('media'), config.bot.extraVolumes[1]);
      assert.ok(volumes.has('auth'), "next to the chart's own volumes");
      const mounts = container(spec, 'bot').volumeMounts!.map((mount) => mount.name);
      assert.deepEqual(
        mounts.filter((name) => name === 'config' || name === 'media'),
        ['config', 'media'],
      );
      for (const keeper of keepers(spec)) {
        const extraMounts = keeper.volumeMounts!.filter((mount) => mount.name === 'config' || mount.name === 'media');
        assert.deepEqual(extraMounts, [], `${keeper.name} mounts none of them`);
      }
    }
    const classicOld = await helmTemplate([values('classic'), extra], {}, OLDEST_SCHEMA.kubeVersion);
    assert.deepEqual(await validateObjects(classicOld, OLDEST_SCHEMA), [], `valid Kubernetes ${OLDEST_SCHEMA.kubeVersion} too`);
  });

  it("bot.extraVolumes cannot reuse the name of one of the chart's own volumes (Kubernetes would refuse the pod)", async () => {
    for (const name of ['auth', 'bot-tmp', 'keeper-secret-files']) {
      const clash = await valuesFile({ bot: { extraVolumes: [{ name, emptyDir: {} }] } });
      const refused = await helmTemplateError([values('existing-secret'), clash]);
      assert.match(refused, new RegExp(`bot\\.extraVolumes: "${name}" is the name of one of the chart's own volumes`));
    }
  });
});

describe('chart: image tags', () => {
  const images = (objects: K8sObject[]) => allContainers(workloadPodSpec(objects)).map((each) => [each.name, each.image]);

  it('a tag given as a number on the command line (--set bot.image.tag=42, --set image.tag=42) renders as 42', async () => {
    const objects = await renderChart({ values: [values('native')], set: { 'bot.image.tag': '42', 'image.tag': '42' } });
    assert.deepEqual(images(objects), [
      ['restore', 'ghcr.io/baileys-keeper/baileys-keeper-init:42'],
      ['sidecar', 'ghcr.io/baileys-keeper/baileys-keeper-sidecar:42'],
      ['bot', 'registry.example.com/my-bot:42'],
    ]);
    const testPod = objects.find((object) => object.kind === 'Pod') as K8sObject & { spec: { containers: Container[] } };
    assert.equal(testPod.spec.containers[0]!.image, 'ghcr.io/baileys-keeper/baileys-keeper-sidecar:42', 'the helm test pod too');
    const helm = await findTool('helm', 'HELM');
    await tool(helm, ['lint', '--strict', CHART, '--values', values('native'), '--set', 'bot.image.tag=42', '--set', 'image.tag=42']);
    // A client-only dry run renders NOTES.txt without a cluster.
    const notes = await tool(helm, ['install', 'bot', CHART, '--dry-run=client', '--values', values('native'), '--set', 'bot.image.tag=7']);
    assert.match(notes, /for the bot registry\.example\.com\/my-bot:7\./);
  });

  it('a whole-number tag in a values file renders as its digits, not in exponent form; a decimal number is refused', async () => {
    // YAML reads 20240101 as a number, which helm holds as a float: plain toString would write 2.0240101e+07.
    const dated = await valuesFile({ bot: { image: { tag: 20240101 } }, image: { tag: 7 } });
    assert.deepEqual(images(await helmTemplate([values('native'), dated])), [
      ['restore', 'ghcr.io/baileys-keeper/baileys-keeper-init:7'],
      ['sidecar', 'ghcr.io/baileys-keeper/baileys-keeper-sidecar:7'],
      ['bot', 'registry.example.com/my-bot:20240101'],
    ]);
    // `tag: 1.10` is the number 1.1 to YAML: refused, rather than pulling the wrong image.
    assert.match(await helmTemplateError([values('native'), await valuesFile({ bot: { image: { tag: 1.1 } } })]), /bot\/image\/tag/);
    assert.match(await renderChartError({ values: [values('native')], set: { 'image.tag': '-1' } }), /image\/tag/);
  });
});

describe('chart: secrets', () => {
  it('created Secret: DATABASE_URL from it; no API token or encryption key unless given', async () => {
    const objects = await helmTemplate([values('native')]);
    const secret = only(objects, 'Secret') as K8sObject & { stringData: Record<string, string> };
    assert.deepEqual(Object.keys(secret.stringData), ['DATABASE_URL']);
    const spec = workloadPodSpec(objects);
    for (const keeper of keepers(spec)) {
      assert.deepEqual(envOf(keeper).get('DATABASE_URL')!.valueFrom!.secretKeyRef, { name: secret.metadata.name, key: 'DATABASE_URL' });
      assert.equal(envOf(keeper).has('KEEPER_API_TOKEN_FILE'), false);
      assert.equal(envOf(keeper).has('KEEPER_ENCRYPTION_KEY_FILE'), false);
    }
    assert.equal(
      spec.volumes!.some((volume) => volume.secret),
      false,
    );
  });

  it('existingSecret: no Secret rendered; DATABASE_URL, the API token and the encryption key read from its keys', async () => {
    const objects = await helmTemplate([values('existing-secret')]);
    assert.equal(
      objects.some((object) => object.kind === 'Secret'),
      false,
    );
    const spec = workloadPodSpec(objects);
    const files = spec.volumes!.find((volume) => volume.secret)!;
    assert.equal(files.secret!.secretName, 'my-bot-keeper');
    assert.equal(files.secret!.defaultMode, 0o440, 'readable by the group (fsGroup): the files belong to root');
    assert.deepEqual(files.secret!.items, [
      { key: 'api-token', path: 'api-token' },
      { key: 'encryption-key', path: 'encryption-key' },
    ]);
    const fileOf = (keeper: Container, name: string) => {
      const mount = keeper.volumeMounts!.find((candidate) => candidate.name === files.name)!;
      return `${mount.mountPath}/${name}`;
    };
    for (const keeper of keepers(spec)) {
      assert.deepEqual(envOf(keeper).get('DATABASE_URL')!.valueFrom!.secretKeyRef, { name: 'my-bot-keeper', key: 'database-url' });
      assert.equal(
        envValue(keeper, 'KEEPER_ENCRYPTION_KEY_FILE'),
        fileOf(keeper, 'encryption-key'),
        `${keeper.name} reads the encryption key file`,
      );
    }
    const sidecar = container(spec, 'sidecar');
    assert.equal(envValue(sidecar, 'KEEPER_API_TOKEN_FILE'), fileOf(sidecar, 'api-token'));
    assert.equal(envOf(container(spec, 'restore')).has('KEEPER_API_TOKEN_FILE'), false, 'only the sidecar serves the API');
    assert.equal(
      container(spec, 'bot').volumeMounts!.some((mount) => mount.name === files.name),
      false,
      'the bot does not see the keeper secrets',
    );
  });
});

describe('chart: requiring encryption', () => {
  it('keeper.requireEncryption sets KEEPER_REQUIRE_ENCRYPTION on both keepers, and fails the render without an encryption key', async () => {
    const off = workloadPodSpec(await helmTemplate([values('existing-secret')]));
    for (const keeper of keepers(off)) assert.equal(envOf(keeper).has('KEEPER_REQUIRE_ENCRYPTION'), false, 'off by default');
    const required = await valuesFile({ keeper: { requireEncryption: true } });
    const on = workloadPodSpec(await helmTemplate([values('existing-secret'), required]));
    for (const keeper of keepers(on)) {
      assert.equal(envValue(keeper, 'KEEPER_REQUIRE_ENCRYPTION'), 'true', keeper.name);
      assert.ok(envValue(keeper, 'KEEPER_ENCRYPTION_KEY_FILE'), `${keeper.name} has the key it needs`);
    }
    assert.equal(envOf(container(on, 'bot')).has('KEEPER_REQUIRE_ENCRYPTION'), false);
    assert.match(
      await helmTemplateError([values('native'), required]),
      /keeper\.requireEncryption needs an encryption key: set secret\.encryptionKeyKey/,
    );
    // Keys given as extra env (several keys during a rotation, from a Secret of the user's) count too.
    const rotating = await valuesFile({
      keeper: {
        requireEncryption: true,
        extraEnv: [{ name: 'KEEPER_ENCRYPTION_KEYS', valueFrom: { secretKeyRef: { name: 'keeper-keys', key: 'keys' } } }],
      },
    });
    const rotated = workloadPodSpec(await helmTemplate([values('native'), rotating]));
    for (const keeper of keepers(rotated)) assert.equal(envValue(keeper, 'KEEPER_REQUIRE_ENCRYPTION'), 'true', keeper.name);
  });
});

describe('chart: monitoring', () => {
  it('off by default: no ServiceMonitor, PodMonitor, PrometheusRule or dashboard', async () => {
    const kinds = (await helmTemplate([values('native')])).map((object) => object.kind);
    for (const kind of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap']) assert.equal(kinds.includes(kind), false, kind);
  });

  it('the Service targets the sidecar port by number (a named port of a native sidecar resolves only from Kubernetes 1.32)', async () => {
    for (const shape of ['native', 'classic']) {
      const objects = await helmTemplate([values(shape)]);
      const service = only(objects, 'Service') as K8sObject & { spec: { ports: { name: string; targetPort: unknown }[] } };
      const sidecar = container(workloadPodSpec(objects), 'sidecar');
      const port = sidecar.ports!.find((candidate) => candidate.name === 'http')!.containerPort;
      assert.deepEqual(
        service.spec.ports.map((each) => [each.name, each.targetPort]),
        [['http', port]],
        `${shape}: numeric targetPort`,
      );
    }
  });

  it('ServiceMonitor and PodMonitor scrape the sidecar port, with the extra labels, and select this release', async () => {
    const objects = await helmTemplate([
      values('monitoring-on'),
      await valuesFile({
        monitoring: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } }, podMonitor: { enabled: false } },
      }),
    ]);
    const service = only(objects, 'Service') as K8sObject & { spec: { selector: Record<string, string> } };
    const serviceMonitor = only(objects, 'ServiceMonitor') as K8sObject & {
      spec: { endpoints: { port: string; path: string }[]; selector: { matchLabels: Record<string, string> } };
    };
    assert.equal(serviceMonitor.metadata.labels!['release'], 'kube-prometheus-stack');
    // A ServiceMonitor endpoint's `port` is the Service port's name.
    assert.deepEqual(
      serviceMonitor.spec.endpoints.map((endpoint) => [endpoint.port, endpoint.path]),
      [['http', '/metrics']],
    );
    for (const [key, value] of Object.entries(serviceMonitor.spec.selector.matchLabels)) assert.equal(service.metadata.labels![key], value);

    const withPodMonitor = await helmTemplate([values('monitoring-on')]);
    assert.equal(
      withPodMonitor.some((object) => object.kind === 'ServiceMonitor'),
      false,
      'monitoring-on scrapes once, with the PodMonitor',
    );
    const podMonitor = only(withPodMonitor, 'PodMonitor') as K8sObject & {
      spec: { podMetricsEndpoints: { port: string }[]; selector: { matchLabels: Record<string, string> } };
    };
    assert.equal(podMonitor.metadata.labels!['release'], 'kube-prometheus-stack');
    const workload = withPodMonitor.find((object) => object.kind === 'Deployment' || object.kind === 'StatefulSet')!;
    const podLabels = (workload['spec'] as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    const sidecar = container(workloadPodSpec(withPodMonitor), 'sidecar');
    assert.ok(sidecar.ports!.some((port) => port.name === podMonitor.spec.podMetricsEndpoints[0]!.port));
    // The PodMonitor selects pods: its labels must be on the pod template (not just on the Service).
    for (const [key, value] of Object.entries(podMonitor.spec.selector.matchLabels))
      assert.equal(podLabels[key], value, `pod label ${key}`);
  });

  it('with a StatefulSet, the ServiceMonitor selects one Service (not the headless one too: no double scrape)', async () => {
    const objects = await helmTemplate([
      values('existing-secret'),
      await valuesFile({ monitoring: { serviceMonitor: { enabled: true } } }),
    ]);
    const serviceMonitor = only(objects, 'ServiceMonitor') as K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } };
    const services = objects.filter((object) => object.kind === 'Service');
    assert.equal(services.length, 2, 'the Service and the headless governing Service');
    const selected = services.filter((service) =>
      Object.entries(serviceMonitor.spec.selector.matchLabels).every(([key, value]) => service.metadata.labels?.[key] === value),
    );
    assert.deepEqual(
      selected.map((service) => service.metadata.name),
      ['bot-baileys-keeper'],
    );
  });

  it('the schema refuses a ServiceMonitor and a PodMonitor at once (every series would be scraped twice)', async () => {
    const both = await valuesFile({ monitoring: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } } });
    assert.match(await helmTemplateError([values('native'), both]), /monitoring|serviceMonitor|podMonitor/);
  });

  it('PrometheusRule: the five alerts the issue names, on metric names the sidecar really exposes', async () => {
    const rule = only(await helmTemplate([values('monitoring-on')]), 'PrometheusRule') as K8sObject & {
      spec: { groups: { rules: { alert: string; expr: string; labels: Record<string, string> }[] }[] };
    };
    const rules = rule.spec.groups.flatMap((group) => group.rules);
    const byName = new Map(rules.map((each) => [each.alert, each]));
    assert.match(byName.get('BaileysKeeperBackupLagging')!.expr, /baileys_keeper_backup_lag_seconds\{.*\}\) > 60$/);
    assert.match(byName.get('BaileysKeeperBackupFailures')!.expr, /baileys_keeper_backups_total\{.*result="failure"/);
    assert.match(byName.get('BaileysKeeperNoLeaseHeld')!.expr, /baileys_keeper_lease_held/);
    assert.match(byName.get('BaileysKeeperTornReadsPilingUp')!.expr, /baileys_keeper_torn_reads_total/);
    assert.match(byName.get('BaileysKeeperSessionNotRegistered')!.expr, /baileys_keeper_session_registered/);
    assert.match(byName.get('BaileysKeeperUnprotected')!.expr, /baileys_keeper_protected\{.*\}\) == 0$/);
    assert.match(byName.get('BaileysKeeperFilesHeldBack')!.expr, /baileys_keeper_held_back_files\{.*reason=~"unreadable\|too_large"\}/);
    const exposed = await exposedMetricNames();
    for (const each of rules) {
      assert.ok(metricNamesIn(each.expr).length > 0, `${each.alert} uses a keeper metric`);
      for (const name of metricNamesIn(each.expr))
        assert.ok(exposed.has(name), `${each.alert} uses ${name}, which the sidecar does not expose`);
      assert.ok(each.expr.includes(`namespace="bots", pod=~"${POD_REGEX}"`), `${each.alert} is scoped to this release: ${each.expr}`);
      assert.doesNotMatch(each.expr, /container=/, `${each.alert}: no container matcher (native sidecars' series may lack it)`);
      assert.equal(each.labels['team'], 'bots');
      assert.ok(each.labels['severity']);
    }
  });

  it('PrometheusRule: aggregations keep the namespace label, every alert waits `for`, alertLabels.severity replaces the default', async () => {
    type Rule = { alert: string; expr: string; for: string; labels: Record<string, string> };
    const rulesOf = (objects: K8sObject[]) =>
      (only(objects, 'PrometheusRule') as K8sObject & { spec: { groups: { rules: Rule[] }[] } }).spec.groups.flatMap(
        (group) => group.rules,
      );
    // parseManifests refuses duplicate keys, so a second `severity` would fail the render here.
    const rules = rulesOf(
      await helmTemplate([
        values('monitoring-on'),
        await valuesFile({ monitoring: { prometheusRule: { for: '7m', alertLabels: { severity: 'page', team: 'bots' } } } }),
      ]),
    );
    for (const each of rules) {
      assert.equal(each.for, '7m', `${each.alert} uses monitoring.prometheusRule.for`);
      assert.equal(each.labels['severity'], 'page', `${each.alert}: alertLabels.severity wins`);
      // An aggregation without `by (namespace)` or a bare vector(0) drops the labels alerts are routed on.
      for (const aggregation of each.expr.matchAll(/\b(max|min|sum|avg|count)\s*(by\s*\(([^)]*)\))?\s*\(/g)) {
        assert.ok(aggregation[3]?.includes('namespace'), `${each.alert}: ${aggregation[0]} keeps namespace`);
      }
      assert.doesNotMatch(each.expr, /vector\(/, `${each.alert}: no label-less vector()`);
    }
    const failures = rules.find((each) => each.alert === 'BaileysKeeperBackupFailures')!;
    assert.match(failures.expr, /\) > [1-9]\d*$/, 'a single failure that the retry fixed does not fire');
    const lease = async (replicas: number) =>
      rulesOf(await helmTemplate([values('monitoring-on'), await valuesFile({ replicas })])).find(
        (each) => each.alert === 'BaileysKeeperNoLeaseHeld',
      )!.expr;
    assert.match(await lease(1), /absent\(baileys_keeper_lease_held\{namespace="bots"/, 'running: no scraped sidecar at all fires too');
    assert.doesNotMatch(await lease(0), /absent/, 'replicas 0 (stopped) does not fire for the missing sidecar');
  });

  it("the alerts' pod matcher takes this release's pods and not those of a release whose name extends it", () => {
    const matches = (pod: string) => new RegExp(`^(?:${POD_REGEX})$`).test(pod);
    assert.ok(matches('bot-baileys-keeper-0'), 'StatefulSet pod');
    assert.ok(matches('bot-baileys-keeper-5d8f7c9b4-x2k9q'), 'Deployment pod');
    assert.equal(matches('bot-baileys-keeper-canary-0'), false);
    assert.equal(matches('bot-baileys-keeper-canary-5d8f7c9b4-x2k9q'), false);
  });

  it('Grafana dashboard: a ConfigMap with the sidecar label, valid JSON, only real metric names', async () => {
    const objects = await helmTemplate([values('monitoring-on')]);
    const configMap = only(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> };
    assert.equal(configMap.metadata.labels!['grafana_dashboard'], '1');
    assert.equal(configMap.metadata.annotations!['grafana_folder'], 'WhatsApp');
    assert.deepEqual(Object.keys(configMap.data), ['bots-bot-baileys-keeper.json'], 'one dashboard file, named for the release');
    type Panels = { panels: { title: string; targets: { expr: string }[] }[] };
    const dashboard = JSON.parse(configMap.data['bots-bot-baileys-keeper.json']!) as Panels;
    const exposed = await exposedMetricNames();
    const used = new Set<string>();
    for (const panel of dashboard.panels) {
      assert.ok(panel.targets.length > 0, `${panel.title} has a query`);
      for (const target of panel.targets) {
        assert.doesNotMatch(target.expr, /container=/, `${panel.title}: no container matcher (native sidecars' series may lack it)`);
        for (const name of metricNamesIn(target.expr)) used.add(name);
      }
    }
    for (const name of used) assert.ok(exposed.has(name), `the dashboard uses ${name}, which the sidecar does not expose`);
    for (const name of [
      'baileys_keeper_backup_lag_seconds',
      'baileys_keeper_backups_total',
      'baileys_keeper_lease_held',
      'baileys_keeper_session_registered',
    ]) {
      assert.ok(used.has(name), `the dashboard shows ${name}`);
    }
    // Only `run` counts restores; the chart's restore is an init container that exits before any scrape.
    assert.equal(used.has('baileys_keeper_restores_total'), false, 'no panel that is always 0 in this chart');
    // Before the first backup the timestamp is 0: `time() - 0` would show ~56 years.
    const since = dashboard.panels.find((panel) => panel.title === 'Since last successful backup')!;
    assert.match(
      since.targets[0]!.expr,
      /^time\(\) - min\(max by \(session\) \(baileys_keeper_last_backup_success_timestamp_seconds\{[^}]*\}\) > 0\)$/,
    );
  });

  it('the metric-name check can fail: a made-up name is not exposed', async () => {
    const exposed = await exposedMetricNames();
    assert.equal(exposed.has('baileys_keeper_backup_lag'), false);
    assert.ok(exposed.has('baileys_keeper_backup_duration_seconds_bucket'));
  });
});

describe('chart: NOTES.txt', () => {
  it('tells the session, how to reach the sidecar and how to run helm test; classic mode explains its shutdown', async () => {
    const helm = await findTool('helm', 'HELM');
    // A client-only dry run renders NOTES.txt without a cluster.
    const notes = async (shape: string) => {
      const output = await tool(helm, ['install', 'bot', CHART, '--namespace', 'bots', '--dry-run=client', '--values', values(shape)]);
      return output.slice(output.indexOf('NOTES:'));
    };
    const native = await notes('native');
    assert.match(native, /WhatsApp session "my-bot"/);
    assert.match(native, /port-forward svc\/bot-baileys-keeper 9464/);
    assert.match(native, /open http:\/\/localhost:9464\/ \(whether every login is stored/, 'the status page');
    assert.match(native, /helm test bot --namespace bots/);
    assert.match(native, /session API is off/);
    assert.doesNotMatch(native, /Classic mode/);
    const classic = await notes('classic');
    assert.match(classic, /Classic mode: .*preStop hook holds its SIGTERM back for bot\.stopSeconds\n\(30 s\).*\n5000 ms/);
    assert.match(await notes('existing-secret'), /logs statefulset\/bot-baileys-keeper -c restore/);
  });
});

describe('chart: helm test', () => {
  it('a test-hook pod that asks the Service for /readyz with the sidecar image', async () => {
    const objects = await helmTemplate([values('native')]);
    const pod = objects.find((object) => object.kind === 'Pod')! as K8sObject & {
      spec: { containers: Container[]; restartPolicy: string };
    };
    assert.equal(pod.metadata.annotations!['helm.sh/hook'], 'test');
    assert.equal(pod.spec.restartPolicy, 'Never');
    const check = pod.spec.containers[0]!;
    assert.equal(check.image, container(workloadPodSpec(objects), 'sidecar').image);
    assert.equal(check.command![0], 'node');
    const service = only(objects, 'Service') as K8sObject & { spec: { ports: { port: number }[] } };
    assert.equal(envValue(check, 'READYZ_URL'), `http://${service.metadata.name}.bots.svc:${service.spec.ports[0]!.port}/readyz`);
  });

  it("a doctor beside it: the sidecar image, the keepers' settings and Secret files, its own empty auth directory", async () => {
    const objects = await helmTemplate([values('native')], { 'secret.create.encryptionKey': 'a'.repeat(44) });
    const pod = objects.find((object) => object.kind === 'Pod')! as K8sObject & {
      spec: { containers: Container[]; volumes: Array<{ name: string; emptyDir?: object; secret?: { secretName: string } }> };
    };
    const doctor = pod.spec.containers.find((candidate) => candidate.name === 'doctor')!;
    const sidecar = container(workloadPodSpec(objects), 'sidecar');
    assert.equal(doctor.image, sidecar.image);
    assert.deepEqual(doctor.args, ['doctor']);
    const names = (each: Container) => (each.env ?? []).map((variable) => variable.name);
    for (const name of ['DATABASE_URL', 'KEEPER_SESSION_ID', 'KEEPER_SCHEMA', 'KEEPER_ENCRYPTION_KEY_FILE']) {
      assert.ok(names(doctor).includes(name), `${name} as the keepers have it`);
    }
    assert.deepEqual(
      pod.spec.volumes.map((volume) => [volume.name, volume.emptyDir ? 'emptyDir' : volume.secret ? 'secret' : '?']),
      [
        ['auth', 'emptyDir'],
        ['keeper-secret-files', 'secret'],
      ],
    );
    assert.deepEqual(await validateObjects([pod]), []);
  });
});
