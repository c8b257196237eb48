// The chart with a sessions directory (keeper.sessionsDir, docs/many-sessions.md): what the keepers and
// the bot are given, the settings it refuses together, per-session alerts and the dashboard's session
// variable, the kustomize component for the same; and the rendered pod run for real: its restore and
// sidecar as `node dist/cli.js` processes with their rendered args and env against PostgreSQL, the
// sessions written by the real Baileys writer, over two pods in a row.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { collect, runCli } from '../../harness/cli.js';
import { readTree } from '../../harness/fs.js';
import { CHURN_BOT, REPO } from '../../harness/paths.js';
import { diffTrees, storedHead, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { OLDEST_SCHEMA, validateObjects } from '../support/charts/k8s-schema.js';
import { LocalPod } from '../support/charts/local-pod.js';
import { cliEnvNames, exposedMetricNames, metricNamesIn } from '../support/charts/names.js';
import { container, resolveEnv, workloadPodSpec, type Container } from '../support/charts/pod.js';
import {
  CHART,
  helmTemplate,
  helmTemplateError,
  kustomizeBuild,
  only,
  renderChart,
  valuesFile,
  type K8sObject,
} from '../support/charts/render.js';
import { findTool, KUBE_VERSION, tool } from '../support/charts/tools.js';

const SESSIONS = path.join(CHART, 'ci', 'sessions-dir-values.yaml');
const NATIVE = path.join(CHART, 'ci', 'native-values.yaml');
const KUSTOMIZE = path.join(REPO, 'deploy', 'kustomize');
// Baileys' writer as the compiled harness has it, for the bot process below.
const BAILEYS_HARNESS = pathToFileURL(path.join(path.dirname(CHURN_BOT), 'baileys.js')).href;

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function rules(objects: K8sObject[]): Rule[] {
  return (only(objects, 'PrometheusRule') as K8sObject & { spec: { groups: { rules: Rule[] }[] } }).spec.groups.flatMap(
    (group) => group.rules,
  );
}

function env(each: Container): Map<string, string | undefined> {
  return new Map((each.env ?? []).map((variable) => [variable.name, variable.value]));
}

describe('chart: a sessions directory', () => {
  it('lint --strict passes; every object is valid Kubernetes 1.34, and in classic mode 1.25', async () => {
    const helm = await findTool('helm', 'HELM');
    await tool(helm, ['lint', '--strict', CHART, '--values', SESSIONS, '--kube-version', KUBE_VERSION]);
    assert.deepEqual(await validateObjects(await helmTemplate([SESSIONS])), []);
    const classic = await helmTemplate([SESSIONS], { 'sidecar.mode': 'classic' }, OLDEST_SCHEMA.kubeVersion);
    assert.deepEqual(await validateObjects(classic, OLDEST_SCHEMA), []);
  });

  it('the keepers get KEEPER_SESSIONS_DIR and the prefix instead of KEEPER_SESSION_ID and KEEPER_DIR; the bot sees the volume at bot.sessionsDir', async () => {
    const known = await cliEnvNames();
    for (const mode of ['native', 'classic']) {
      const spec = workloadPodSpec(await helmTemplate([SESSIONS], { 'sidecar.mode': mode }));
      for (const name of ['restore', 'sidecar']) {
        const keeper = container(spec, name);
        const vars = env(keeper);
        assert.equal(vars.get('KEEPER_SESSIONS_DIR'), '/var/lib/baileys-keeper/sessions', `${mode} ${name}`);
        assert.equal(vars.get('KEEPER_SESSION_PREFIX'), 'tenant-');
        // The CLI refuses KEEPER_SESSION_ID with a sessions directory (exit 64); KEEPER_DIR would be unused.
        assert.equal(vars.has('KEEPER_SESSION_ID'), false, `${mode} ${name}: no session id`);
        assert.equal(vars.has('KEEPER_DIR'), false, `${mode} ${name}: no KEEPER_DIR`);
        assert.deepEqual(keeper.args, [name], 'the role only: the settings are in the env');
        for (const variable of vars.keys()) assert.ok(known.has(variable), `${name} sets ${variable}, which the CLI does not read`);
        assert.equal(keeper.volumeMounts!.find((mount) => mount.name === 'auth')?.mountPath, vars.get('KEEPER_SESSIONS_DIR'));
      }
      assert.deepEqual(
        container(spec, 'bot').volumeMounts!.filter((mount) => mount.name === 'auth'),
        [{ name: 'auth', mountPath: '/app/sessions' }],
        `${mode}: the bot's sessions directory, and not its auth directory`,
      );
      assert.equal(spec.volumes!.find((volume) => volume.name === 'auth')?.emptyDir?.sizeLimit, '2Gi');
    }
    // No prefix: no KEEPER_SESSION_PREFIX at all (an empty one is the CLI's default).
    const plain = workloadPodSpec(await helmTemplate([SESSIONS], { 'keeper.sessionsDir.prefix': '' }));
    assert.equal(env(container(plain, 'sidecar')).has('KEEPER_SESSION_PREFIX'), false);
  });

  it('settings that exclude each other fail the render and say what to change; the schema checks the prefix and paths', async () => {
    const enabled = await valuesFile({ keeper: { sessionsDir: { enabled: true } } });
    assert.match(
      await helmTemplateError([NATIVE, enabled]),
      /session\.id \("my-bot"\) names one session, but keeper\.sessionsDir\.enabled keeps every sub-directory as its own session .*unset session\.id/,
    );
    assert.match(
      await helmTemplateError([NATIVE], { 'keeper.sessionsDir.prefix': 'tenant-' }),
      /keeper\.sessionsDir\.prefix \("tenant-"\) only applies with keeper\.sessionsDir\.enabled/,
    );
    const sessionEnv = await valuesFile({ keeper: { extraEnv: [{ name: 'KEEPER_SESSION_ID', value: 'x' }] } });
    assert.match(await helmTemplateError([SESSIONS, sessionEnv]), /keeper\.extraEnv: KEEPER_SESSION_ID is the chart's to set/);
    const dirEnv = await valuesFile({ keeper: { extraEnv: [{ name: 'KEEPER_SESSIONS_DIR', value: '/x' }] } });
    assert.match(await helmTemplateError([NATIVE, dirEnv]), /keeper\.extraEnv: KEEPER_SESSIONS_DIR is the chart's to set/);
    for (const label of ['session', 'keeper']) {
      const labels = await valuesFile({ monitoring: { prometheusRule: { alertLabels: { [label]: 'x' } } } });
      assert.match(await helmTemplateError([SESSIONS, labels]), new RegExp(`alertLabels\\.${label}: with keeper\\.sessionsDir\\.enabled`));
    }
    assert.match(await helmTemplateError([SESSIONS], { 'keeper.sessionsDir.prefix': 'a/b' }), /prefix/);
    assert.match(await helmTemplateError([SESSIONS], { 'keeper.sessionsDir.path': 'sessions' }), /path/);
    assert.match(await helmTemplateError([SESSIONS], { 'bot.sessionsDir': 'sessions' }), /sessionsDir/);
  });

  it('alerts: one per session (aggregated by namespace and session, no rule label over it), on metrics a sessions-directory sidecar exposes', async () => {
    const exposed = await exposedMetricNames({ manySessions: true });
    const [bot, shop] = await Promise.all(['bot', 'shop-bot'].map((release) => renderChart({ values: [SESSIONS], release })));
    const seen = new Set<string>();
    for (const [release, objects] of [
      ['bot', bot!],
      ['shop-bot', shop!],
    ] as const) {
      for (const rule of rules(objects)) {
        for (const name of metricNamesIn(rule.expr)) assert.ok(exposed.has(name), `${rule.alert} uses ${name}, which is not exposed`);
        // A rule label `session` would replace the series' own: every session's alert would be one.
        assert.equal(rule.labels['session'], undefined, `${rule.alert}: session comes from the series`);
        assert.equal(rule.labels['keeper'], `${release}-baileys-keeper`, `${rule.alert}: the release's keeper`);
        for (const aggregation of rule.expr.matchAll(/\b(max|min|sum|avg|count)\s*by\s*\(([^)]*)\)/g)) {
          const processWide = /database_errors/.test(rule.expr);
          assert.equal(aggregation[2], processWide ? 'namespace' : 'namespace, session', `${rule.alert}: ${aggregation[0]}`);
        }
        if (!/database_errors/.test(rule.expr))
          assert.match(rule.annotations['summary']!, /\{\{ \$labels\.session \}\}/, `${rule.alert} names the session`);
        // What identifies a firing alert of the whole keeper (no session): two releases must differ.
        const identity = JSON.stringify({ alert: rule.alert, ...rule.labels });
        assert.equal(seen.has(identity), false, `${rule.alert} of ${release} has another release's labels`);
        seen.add(identity);
      }
    }
    const lease = rules(bot!).find((rule) => rule.alert === 'BaileysKeeperNoLeaseHeld')!;
    // A keeper of no session yet has no lease series: "nothing scraped" is the sessions gauge's absence.
    assert.match(lease.expr, /or absent\(baileys_keeper_sessions\{namespace="bots", pod=~/);
  });

  it('dashboard: the session variable is shown with many sessions and hidden with one; every per-session query takes it', async () => {
    type Dashboard = {
      templating: { list: { name: string; hide?: number; current?: unknown }[] };
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const dashboardOf = (objects: K8sObject[]) => {
      const data = (only(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> }).data;
      return JSON.parse(Object.values(data)[0]!) as Dashboard;
    };
    const many = dashboardOf(await helmTemplate([SESSIONS]));
    const one = dashboardOf(await helmTemplate([path.join(CHART, 'ci', 'monitoring-on-values.yaml')]));
    const variable = (dashboard: Dashboard) => dashboard.templating.list.find((each) => each.name === 'session')!;
    assert.equal(variable(many).hide, 0);
    assert.deepEqual(variable(many).current, { text: 'All', value: '$__all' });
    assert.equal(variable(one).hide, 2, 'one session: its series have no session label to choose by');
    const single = await exposedMetricNames();
    const perSession = [...(await exposedMetricNames({ manySessions: true }))].filter(
      (name) => !/duration|database_errors|build_info|process_|nodejs_|_sessions$/.test(name) && single.has(name),
    );
    for (const panel of many.panels) {
      for (const target of panel.targets) {
        for (const name of metricNamesIn(target.expr)) {
          if (!perSession.includes(name)) continue;
          assert.match(target.expr, new RegExp(`${name}\\{[^}]*session=~"\\$session"`), `${panel.title}: ${name} by $session`);
        }
      }
    }
  });

  it('NOTES and the helm test pod speak of every session', async () => {
    const helm = await findTool('helm', 'HELM');
    const output = await tool(helm, ['install', 'bot', CHART, '--namespace', 'bots', '--dry-run=client', '--values', SESSIONS]);
    assert.match(
      output.slice(output.indexOf('NOTES:')),
      /every WhatsApp session in \/app\/sessions\/<name>\/ \(session id "tenant-<name>"\)/,
    );
    const objects = await helmTemplate([SESSIONS]);
    const testPod = only(objects, 'Pod') as K8sObject & { spec: { containers: Container[] } };
    assert.equal(env(testPod.spec.containers[0]!).get('MANY_SESSIONS'), 'true');
    assert.deepEqual(
      testPod.spec.containers.map((each) => each.name),
      ['readyz', 'doctor'],
    );
    const doctor = testPod.spec.containers[1]!;
    assert.deepEqual(doctor.args, ['doctor']);
    assert.equal(env(doctor).get('KEEPER_SESSIONS_DIR'), '/var/lib/baileys-keeper/sessions');
    assert.ok(!env(doctor).has('KEEPER_SESSION_ID'), 'no one-session setting beside the sessions directory');
  });
});

describe('kustomize: the sessions-directory component', () => {
  it('the example overlay builds, is valid Kubernetes 1.34, and gives the keepers a sessions directory instead of one session', async () => {
    const objects = await kustomizeBuild(path.join(KUSTOMIZE, 'examples', 'sessions-overlay'));
    assert.deepEqual(await validateObjects(objects), []);
    const spec = workloadPodSpec(objects);
    const known = await cliEnvNames();
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'baileys-keeper' }, data: { DATABASE_URL: 'eA==' } } as K8sObject;
    for (const name of ['baileys-keeper-restore', 'baileys-keeper-sidecar']) {
      const keeper = container(spec, name);
      const vars = resolveEnv(keeper, [...objects, secret]);
      for (const variable of Object.keys(vars)) assert.ok(known.has(variable), `${name} sets ${variable}, which the CLI does not read`);
      assert.equal(vars['KEEPER_SESSIONS_DIR'], '/var/lib/baileys-keeper/sessions');
      assert.equal(vars['KEEPER_SESSION_PREFIX'], 'tenant-');
      assert.equal(vars['KEEPER_SESSION_ID'], undefined, `${name}: the CLI refuses a session id with a sessions directory`);
      assert.equal(vars['KEEPER_DIR'], undefined);
      assert.deepEqual(
        keeper.volumeMounts,
        [{ name: 'baileys-keeper-auth', mountPath: '/var/lib/baileys-keeper/sessions' }],
        `${name}: the one-session mount replaced`,
      );
    }
    assert.deepEqual(container(spec, 'bot').volumeMounts, [{ name: 'baileys-keeper-auth', mountPath: '/app/sessions' }]);
    assert.equal(spec.volumes!.find((volume) => volume.name === 'baileys-keeper-auth')?.emptyDir?.sizeLimit, '2Gi');
  });
});

/** The bot: writes sessions `names` under `dir` with Baileys' own writer, says `ready`, then idles until SIGTERM. */
function sessionsBot(dir: string, names: string[]): { child: ChildProcess; out: () => string } {
  const script = [
    "import path from 'node:path';",
    `import { writeSession } from ${JSON.stringify(BAILEYS_HARNESS)};`,
    'const [dir, ...names] = process.argv.slice(1);',
    'for (const name of names) await writeSession(path.join(dir, name), { preKeys: 5 });',
    "console.log('ready');",
    "process.on('SIGTERM', () => process.exit(0));",
    'setInterval(() => {}, 60_000);',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir, ...names], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return { child, out: () => out };
}

/** Each session sub-directory of `dir` as name → (file → content), read synchronously (before the bot runs). */
function sessionsNow(dir: string): Map<string, Map<string, string>> {
  const sessions = new Map<string, Map<string, string>>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const files = readdirSync(path.join(dir, entry.name), { withFileTypes: true }).filter(
      (file) => file.isFile() && !file.name.startsWith('.'),
    );
    sessions.set(entry.name, new Map(files.map((file) => [file.name, readFileSync(path.join(dir, entry.name, file.name), 'utf8')])));
  }
  return sessions;
}

describe('pod run: a sessions directory', async () => {
  const url = await freshDatabase('pod_sessions');
  const idOf = (name: string) => `tenant-${name}`;

  /** One pod: restore, the native sidecar, then the bot writing `names`; stops once every session is stored. */
  async function livePod(label: string, names: string[], onRunning?: (pod: LocalPod, objects: K8sObject[]) => Promise<void>) {
    // The sidecar's shutdown budget (and so the grace period) short enough for a test.
    const short = path.join(await tempDir('pod-sessions-values'), 'values.json');
    await writeFile(short, JSON.stringify({ bot: { stopSeconds: 2 }, sidecar: { shutdownTimeoutMs: 6000 } }));
    const objects = await helmTemplate([SESSIONS, short], { 'secret.create.databaseUrl': url });
    const pod = await LocalPod.create(objects, await tempDir(`pod-sessions-${label}`));
    const mountPath = (each: Container) => each.volumeMounts!.find((mount) => mount.name === 'auth')!.mountPath;
    const botDir = pod.hostPath('bot', mountPath(pod.container('bot')));
    let atBotStart = new Map<string, Map<string, string>>();
    let bot: ReturnType<typeof sessionsBot> | null = null;
    try {
      await pod.start((each, hostDir) => {
        atBotStart = sessionsNow(hostDir(mountPath(each)));
        bot = sessionsBot(hostDir(mountPath(each)), names);
        return bot.child;
      });
      await waitFor(
        () => (bot!.out().includes('ready') ? true : null),
        30_000,
        () => `the bot did not write its sessions: ${bot!.out()}`,
      );
      // Every session directory in the volume (restored ones and new ones) stored exactly.
      const sidecar = pod.service('sidecar');
      let problems: string[] = [];
      await waitFor(
        async () => {
          problems = [];
          for (const [name, files] of sessionsNow(botDir))
            problems.push(...diffTrees(await storedHead(url, idOf(name)), files).map((line) => `${idOf(name)}: ${line}`));
          return problems.length === 0 ? true : null;
        },
        30_000,
        () => `${problems.join('\n')}\n${sidecar.output.slice(-20).join('\n')}`,
      );
      await onRunning?.(pod, objects);
      const ends = await pod.terminate();
      return { pod, botDir, atBotStart, ends, sidecarOutput: sidecar.output, objects };
    } catch (error) {
      pod.kill();
      throw error;
    }
  }

  it('restore brings back every session before the bot starts; the sidecar stores each one, new ones too, over two pods', async () => {
    // Pod 1: nothing stored yet. The bot writes three customers' sessions; the sidecar picks each up.
    const first = await livePod('1', ['alice', 'bob', 'carol'], async (pod, objects) => {
      const sidecar = pod.service('sidecar');
      assert.equal(await sidecar.metric('baileys_keeper_sessions'), 3);
      for (const name of ['alice', 'bob', 'carol'])
        assert.equal(await sidecar.metric(`baileys_keeper_lease_held{session="${idOf(name)}"}`), 1, `${name}: the writer`);
      // The helm test pod's script against this sidecar: every session's lease is held.
      const testPod = only(objects, 'Pod') as K8sObject & {
        spec: { containers: Container[] };
      };
      const readyz = testPod.spec.containers[0]!;
      const [, ...script] = readyz.command!;
      const helmTest = await collect(
        spawn(process.execPath, script, {
          env: { ...resolveEnv(readyz, []), READYZ_URL: `http://127.0.0.1:${sidecar.port}/readyz`, TIMEOUT_SECONDS: '20' },
        }),
      );
      assert.equal(helmTest.code, 0, helmTest.stderr);
      assert.match(helmTest.stdout, /the sidecar holds the lease of every session \(3\)/);
      // The test pod's doctor, as a real process with the rendered args and env, on its own empty sessions directory.
      const doctorContainer = testPod.spec.containers.find((candidate) => candidate.name === 'doctor')!;
      const doctorDir = path.join(await tempDir('sessions-doctor'), 'sessions');
      await mkdir(doctorDir);
      const doctor = await runCli(doctorContainer.args!, {
        env: { ...resolveEnv(doctorContainer, objects), DATABASE_URL: url, KEEPER_SESSIONS_DIR: doctorDir },
      });
      assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
      assert.match(doctor.stdout, /^OK +stored rows: \d+ stored file versions of all 3 stored sessions with the prefix verified/m);
      assert.match(doctor.stdout, /^OK +lease: 3 of 3 sessions held, by 1 keeper$/m);
    });
    assert.equal(first.ends.get('sidecar')!.code, 0, first.sidecarOutput.join('\n'));
    assert.equal(first.atBotStart.size, 0, 'nothing to restore in a new database');
    const events = first.pod.events;
    assert.ok(events.indexOf('restore exited 0') < events.indexOf('bot started'), events.join(', '));
    assert.ok(events.indexOf('bot exited 0') < events.indexOf('sidecar SIGTERM'), events.join(', '));
    const left = sessionsNow(first.botDir);
    assert.deepEqual([...left.keys()].sort(), ['alice', 'bob', 'carol']);
    for (const [name, files] of left) assert.deepEqual(diffTrees(await storedHead(url, idOf(name)), files), [], `${name} after pod 1`);

    // Pod 2, on a new empty volume: restore puts every session back before the bot starts; a new
    // customer's directory is stored too.
    const second = await livePod('2', ['dave']);
    assert.equal(second.ends.get('sidecar')!.code, 0, second.sidecarOutput.join('\n'));
    assert.deepEqual([...second.atBotStart.keys()].sort(), ['alice', 'bob', 'carol'], 'restored before the bot started');
    for (const [name, files] of left)
      assert.deepEqual(diffTrees(second.atBotStart.get(name)!, files), [], `${name}: the bot started on what pod 1 left`);
    const dave = await readTree(path.join(second.botDir, 'dave'));
    assert.ok(dave.has('creds.json'));
    assert.deepEqual(diffTrees(await storedHead(url, idOf('dave')), dave), [], 'the new session is stored');
  });
});
