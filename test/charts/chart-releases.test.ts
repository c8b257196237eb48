// Two releases of the chart side by side, as a platform with several bots runs them, each bot its own
// release in one namespace: their alerts must stay two alerts.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { container, workloadPodSpec } from '../support/charts/pod.js';
import { CHART, only, renderChart, renderChartError, valuesFile, type K8sObject } from '../support/charts/render.js';

const MONITORING = path.join(CHART, 'ci', 'monitoring-on-values.yaml');

interface Rule {
  alert: string;
  expr: string;
  labels: Record<string, string>;
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

describe('chart: two releases side by side', () => {
  it('every alert carries the session label, so two releases in one namespace never fire the same alert', async () => {
    const releases = await Promise.all(['bot', 'shop-bot'].map((release) => renderChart({ values: [MONITORING], release })));
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
    assert.equal(seen.size, 14, 'seven alerts per release, fourteen distinct');
  });

  it('the session label follows session.id, and alertLabels cannot override it (the render says why)', async () => {
    const named = rules(await renderChart({ values: [MONITORING], setString: { 'session.id': 'shop-42' } }));
    assert.ok(named.every((rule) => rule.labels['session'] === 'shop-42'));
    const override = await valuesFile({ monitoring: { prometheusRule: { alertLabels: { session: 'other' } } } });
    const refused = await renderChartError({ values: [MONITORING, override] });
    assert.match(refused, /alertLabels\.session: the chart sets every alert's session label to the session id; set session\.id instead/);
  });
});
