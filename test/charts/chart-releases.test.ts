// Two releases of the chart side by side, as a platform with several bots runs them: in one namespace
// (each bot its own release) and under one release name in two namespaces. Their alerts must stay two
// alerts and their Grafana dashboards two dashboards; neither may take over the other's.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { container, workloadPodSpec } from '../support/charts/pod.js';
import { CHART, only, renderChart, renderChartError, valuesFile, type K8sObject } from '../support/charts/render.js';

const MONITORING = path.join(CHART, 'ci', 'monitoring-on-values.yaml');
// Grafana's limit on a dashboard uid, and the characters it accepts in one.
const GRAFANA_UID = /^[A-Za-z0-9_-]{1,40}$/;

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
}

interface Variable {
  name: string;
  regex?: string;
  allValue?: string;
  current?: { text?: string; value?: string };
}

interface Dashboard {
  uid: string;
  title: string;
  templating: { list: Variable[] };
  [field: string]: unknown;
}

function rules(objects: K8sObject[]): Rule[] {
  const rule = only(objects, 'PrometheusRule') as K8sObject & { spec: { groups: { rules: Rule[] }[] } };
  return rule.spec.groups.flatMap((group) => group.rules);
}

/** What identifies a firing alert to Prometheus and Alertmanager: its name and labels (namespace from the expression). */
function identity(rule: Rule, namespace: string): string {
  const labels = { ...rule.labels, alertname: rule.alert, namespace };
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function dashboardOf(objects: K8sObject[]): { file: string; dashboard: Dashboard } {
  const configMap = only(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> };
  const files = Object.keys(configMap.data);
  assert.equal(files.length, 1, `one dashboard file: ${files.join(', ')}`);
  return { file: files[0]!, dashboard: JSON.parse(configMap.data[files[0]!]!) as Dashboard };
}

function variable(dashboard: Dashboard, name: string): Variable {
  const found = dashboard.templating.list.find((each) => each.name === name);
  assert.ok(found, `the dashboard has a ${name} variable`);
  return found;
}

describe('chart: two releases side by side', () => {
  it('every alert carries the session label, so two releases in one namespace never fire the same alert', async () => {
    // Each release keeps its own session (session.id is required; two releases must not share one).
    const releases = await Promise.all(
      ['bot', 'shop-bot'].map((release) => renderChart({ values: [MONITORING], release, setString: { 'session.id': release } })),
    );
    const seen = new Map<string, string>();
    for (const [index, objects] of releases.entries()) {
      const session = container(workloadPodSpec(objects), 'sidecar').env!.find((each) => each.name === 'KEEPER_SESSION_ID')!.value!;
      for (const rule of rules(objects)) {
        assert.equal(rule.labels['session'], session, `${rule.alert}: the session this release keeps`);
        const key = identity(rule, 'bots');
        assert.equal(seen.get(key), undefined, `${rule.alert} of release ${index} has the label set of ${seen.get(key)}`);
        seen.set(key, `${rule.alert} of release ${index}`);
      }
    }
    assert.equal(seen.size, 20, 'ten alerts per release, twenty distinct');
  });

  it('the session label follows session.id, and alertLabels cannot override it (the render says why)', async () => {
    const named = rules(await renderChart({ values: [MONITORING], setString: { 'session.id': 'shop-42' } }));
    assert.ok(named.every((rule) => rule.labels['session'] === 'shop-42'));
    const override = await valuesFile({ monitoring: { prometheusRule: { alertLabels: { session: 'other' } } } });
    const refused = await renderChartError({ values: [MONITORING, override] });
    assert.match(refused, /alertLabels\.session: the chart sets every alert's session label to the session id; set session\.id instead/);
  });

  it("the Grafana dashboard's uid, title and file name are the release's own, and the uid fits Grafana's 40 characters", async () => {
    const render = async (release: string, namespace: string) =>
      dashboardOf(await renderChart({ values: [MONITORING], release, namespace }));
    // A release name may be 53 characters long (helm's limit); the full name adds the chart's name.
    const longName = 'a-whatsapp-bot-with-a-release-name-as-long-as-helm-ok';
    assert.equal(longName.length, 53);
    const all = [
      await render('bot', 'bots'),
      await render('shop-bot', 'bots'),
      await render('bot', 'shop'),
      await render(longName, 'bots'),
    ];
    for (const { dashboard } of all) assert.match(dashboard.uid, GRAFANA_UID);
    for (const field of ['uid', 'title', 'file'] as const) {
      const values = all.map(({ file, dashboard }) => (field === 'file' ? file : dashboard[field]));
      assert.equal(new Set(values).size, all.length, `every ${field} differs: ${values.join(', ')}`);
    }
    const again = await render('bot', 'bots');
    assert.equal(again.dashboard.uid, all[0]!.dashboard.uid, 'the same release keeps its uid (links and stars survive an upgrade)');
    assert.ok(all[0]!.dashboard.uid.startsWith('bot-baileys-keeper-'), `readable: ${all[0]!.dashboard.uid}`);
    assert.equal(all[0]!.dashboard.title, 'baileys-keeper: bots/bot-baileys-keeper');
  });

  it("the dashboard opens on the release's namespace and pods, and is otherwise the file the chart ships", async () => {
    const { dashboard } = dashboardOf(await renderChart({ values: [MONITORING], release: 'bot', namespace: 'bots' }));
    assert.deepEqual(variable(dashboard, 'namespace').current, { text: 'bots', value: 'bots' });
    const pod = variable(dashboard, 'pod');
    const options = new RegExp(pod.regex!.slice(1, -1));
    assert.ok(options.test('bot-baileys-keeper-5d8f7c9b4-x2k9q') && options.test('bot-baileys-keeper-0'), pod.regex);
    assert.equal(options.test('bot-baileys-keeper-canary-0'), false, 'not the pods of a release whose name extends this one');
    assert.equal(options.test('shop-bot-baileys-keeper-0'), false);
    // "All" goes into the queries' pod=~"$pod" as it stands: this release's pods, not every pod (.*).
    assert.equal(`/^${pod.allValue}$/`, pod.regex);

    const shipped = JSON.parse(await readFile(path.join(CHART, 'files', 'dashboard.json'), 'utf8')) as Dashboard;
    const restored = structuredClone(dashboard);
    restored.uid = shipped.uid;
    restored.title = shipped.title;
    for (const name of ['namespace', 'pod']) {
      const [mine, theirs] = [variable(restored, name), variable(shipped, name)];
      for (const key of ['current', 'regex', 'allValue'] as const) {
        if (key in theirs) mine[key] = theirs[key] as never;
        else delete mine[key];
      }
    }
    assert.deepEqual(restored, shipped, 'nothing else changed on the way through the template (the escaping of <, > and & included)');
  });

  it('a release name with dots: the pod regex escapes them, once for the dashboard and twice inside a PromQL string', async () => {
    const objects = await renderChart({ values: [MONITORING], release: 'shop.bot' });
    const pod = variable(dashboardOf(objects).dashboard, 'pod');
    assert.ok(pod.regex!.startsWith('/^shop\\.bot-baileys-keeper-'), pod.regex);
    assert.ok(pod.allValue!.startsWith('shop\\\\.bot-baileys-keeper-'), pod.allValue);
    assert.ok(rules(objects).every((rule) => rule.expr.includes('pod=~"shop\\\\.bot-baileys-keeper-')));
    assert.match(dashboardOf(objects).dashboard.uid, GRAFANA_UID);
  });
});
