// deploy/monitoring/: the chart's alerts as a Prometheus rule file and as a PrometheusRule, and its
// Grafana dashboard, for people without the chart. They are generated from the chart (scripts/monitoring.ts,
// `npm run monitoring`): here they must be exactly what the generator writes from the chart as it is now,
// the rule file must be a valid Prometheus rule file (its structure by a JSON schema, its expressions'
// brackets, quotes and durations, its metric names those the sidecar exposes), and the PrometheusRule a
// valid object of the Prometheus Operator's schema.
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { CHART, MONITORING, monitoringFiles, type AlertRule } from '../../scripts/monitoring.js';
import { validateObjects } from '../support/charts/k8s-schema.js';
import { exposedMetricNames, metricNamesIn } from '../support/charts/names.js';
import { only, renderChart, type K8sObject } from '../support/charts/render.js';
import { tempDir } from '../support/fs.js';

const STALE = 'run `npm run monitoring` to regenerate deploy/monitoring/ from the chart';
// Prometheus's duration: units from ms to y, largest first, e.g. 1h30m.
const DURATION = '^((\\d+)y)?((\\d+)w)?((\\d+)d)?((\\d+)h)?((\\d+)m)?((\\d+)s)?((\\d+)ms)?$';

/** Prometheus's rule-file format (https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/), alerting rules only. */
const RULE_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['groups'],
  properties: {
    groups: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'rules'],
        properties: {
          name: { type: 'string', minLength: 1 },
          interval: { type: 'string', pattern: DURATION },
          rules: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['alert', 'expr'],
              properties: {
                alert: { type: 'string', pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' },
                expr: { type: 'string', minLength: 1 },
                for: { type: 'string', pattern: DURATION },
                keep_firing_for: { type: 'string', pattern: DURATION },
                labels: {
                  type: 'object',
                  additionalProperties: { type: 'string' },
                  propertyNames: { pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' },
                },
                annotations: { type: 'object', additionalProperties: { type: 'string' } },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** What is wrong with a PromQL expression's lexical structure (brackets, quotes, range durations). */
function promqlProblems(expr: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (let index = 0; index < expr.length; index++) {
    const char = expr[index]!;
    if (char === '"') {
      const close = expr.indexOf('"', index + 1);
      if (close < 0) return [...problems, `unterminated string at ${index}`];
      index = close;
    } else if ('([{'.includes(char)) stack.push(char);
    else if (char in pairs && stack.pop() !== pairs[char]) problems.push(`unbalanced ${char} at ${index}`);
  }
  if (stack.length > 0) problems.push(`unclosed ${stack.join('')}`);
  for (const range of expr.matchAll(/\[([^\]]*)\]/g)) {
    if (!new RegExp(DURATION).test(range[1]!) || range[1] === '') problems.push(`range [${range[1]}] is no duration`);
  }
  return problems;
}

/** Go-template actions of an annotation are closed (Prometheus expands them with text/template). */
function templateBalanced(text: string): boolean {
  return (text.match(/\{\{/g) ?? []).length === (text.match(/\}\}/g) ?? []).length;
}

async function committed(name: string): Promise<string> {
  return readFile(path.join(MONITORING, name), 'utf8');
}

function rulesOf(text: string): AlertRule[] {
  return (parse(text) as { groups: { rules: AlertRule[] }[] }).groups.flatMap((group) => group.rules);
}

describe('deploy/monitoring: generated from the chart', () => {
  it('every file is exactly what `npm run monitoring` writes from the chart as it is now', async () => {
    const files = await monitoringFiles();
    assert.deepEqual([...files.keys()].sort(), ['alerts.yaml', 'dashboard.json', 'prometheusrule.yaml']);
    for (const [name, content] of files) assert.equal(await committed(name), content, `deploy/monitoring/${name} differs: ${STALE}`);
  });

  it('the check can fail: a changed threshold or dashboard in the chart changes the files', async () => {
    const chart = path.join(await tempDir('monitoring-chart'), 'baileys-keeper');
    await cp(CHART, chart, { recursive: true });
    const values = path.join(chart, 'values.yaml');
    await writeFile(values, (await readFile(values, 'utf8')).replace('backupLagSeconds: 60', 'backupLagSeconds: 61'));
    const dashboard = path.join(chart, 'files', 'dashboard.json');
    await writeFile(dashboard, (await readFile(dashboard, 'utf8')).replace('"refresh": "30s"', '"refresh": "1m"'));
    const files = await monitoringFiles(chart);
    assert.match(files.get('alerts.yaml')!, /baileys_keeper_backup_lag_seconds > 61$/m);
    assert.notEqual(files.get('alerts.yaml'), await committed('alerts.yaml'));
    assert.notEqual(files.get('prometheusrule.yaml'), await committed('prometheusrule.yaml'));
    assert.notEqual(files.get('dashboard.json'), await committed('dashboard.json'));
  });

  it("the rules are the chart's: the same alerts, `for`, severities, thresholds and text, per series", async () => {
    const chartRule = only(
      await renderChart({ values: [path.join(CHART, 'ci', 'monitoring-on-values.yaml')] }),
      'PrometheusRule',
    ) as K8sObject & {
      spec: { groups: { rules: AlertRule[] }[] };
    };
    const fromChart = chartRule.spec.groups.flatMap((group) => group.rules);
    const plain = rulesOf(await committed('alerts.yaml'));
    assert.deepEqual(
      plain.map((rule) => rule.alert),
      fromChart.map((rule) => rule.alert),
    );
    for (const [index, rule] of plain.entries()) {
      const original = fromChart[index]!;
      assert.equal(rule.for, original.for, rule.alert);
      assert.equal(rule.labels['severity'], original.labels['severity'], rule.alert);
      assert.deepEqual(
        rule.expr.match(/[<>=!]=? ?\d+(\.\d+)?$/)?.[0],
        original.expr.match(/[<>=!]=? ?\d+(\.\d+)?$/)?.[0],
        `${rule.alert}: threshold`,
      );
      assert.deepEqual(metricNamesIn(rule.expr), metricNamesIn(original.expr), `${rule.alert}: metrics`);
      // Per series: no release matchers, no aggregation that would drop the labels telling keepers apart.
      assert.doesNotMatch(rule.expr, /namespace=|pod=~/, rule.alert);
      assert.doesNotMatch(rule.expr, /\b(sum|max|min|avg|count)\b\s*(by|without)?\s*\(/, `${rule.alert}: ${rule.expr}`);
      assert.equal(rule.labels['session'], undefined, `${rule.alert}: the session comes from the series, not a rule label`);
      assert.equal(rule.annotations['description']!.length > 0, true);
    }
  });
});

describe('deploy/monitoring: valid files', () => {
  it('alerts.yaml is a valid Prometheus rule file: structure, durations, expressions, templates, metric names', async () => {
    const text = await committed('alerts.yaml');
    const file = parse(text, { version: '1.1' }) as unknown;
    const validate = new Ajv({ allErrors: true, strict: true }).compile(RULE_FILE_SCHEMA);
    assert.ok(validate(file), JSON.stringify(validate.errors));
    const rules = rulesOf(text);
    assert.ok(rules.length >= 10, `${rules.length} alerts`);
    assert.equal(new Set(rules.map((rule) => rule.alert)).size, rules.length, 'alert names are unique');
    const exposed = await exposedMetricNames();
    for (const rule of rules) {
      assert.deepEqual(promqlProblems(rule.expr), [], `${rule.alert}: ${rule.expr}`);
      assert.ok(metricNamesIn(rule.expr).length > 0, `${rule.alert} uses a keeper metric`);
      for (const name of metricNamesIn(rule.expr))
        assert.ok(exposed.has(name), `${rule.alert} uses ${name}, which the sidecar does not expose`);
      for (const [key, value] of Object.entries(rule.annotations)) assert.ok(templateBalanced(value), `${rule.alert}.${key}: ${value}`);
    }
  });

  it('the validators can fail: a bad duration, an unknown key, an unbalanced expression, a made-up metric', async () => {
    const validate = new Ajv({ allErrors: true, strict: true }).compile(RULE_FILE_SCHEMA);
    const rule = { alert: 'X', expr: 'baileys_keeper_protected == 0', for: '5m' };
    assert.ok(validate({ groups: [{ name: 'g', rules: [rule] }] }));
    assert.equal(validate({ groups: [{ name: 'g', rules: [{ ...rule, for: '5 minutes' }] }] }), false);
    assert.equal(validate({ groups: [{ name: 'g', rules: [{ ...rule, severity: 'page' }] }] }), false);
    assert.equal(validate({ rules: [rule] }), false);
    assert.deepEqual(promqlProblems('increase(baileys_keeper_backups_total{result="failure"}[10m]) > 3'), []);
    assert.notDeepEqual(promqlProblems('max(baileys_keeper_protected{a="b"}'), []);
    assert.notDeepEqual(promqlProblems('increase(baileys_keeper_backups_total[10 minutes])'), []);
    assert.notDeepEqual(promqlProblems('baileys_keeper_protected{a="b} == 0'), []);
    assert.equal((await exposedMetricNames()).has('baileys_keeper_protection'), false);
  });

  it('prometheusrule.yaml is a valid PrometheusRule holding the same groups as alerts.yaml', async () => {
    const object = parse(await committed('prometheusrule.yaml'), { version: '1.1' }) as K8sObject & { spec: { groups: unknown } };
    assert.equal(object.kind, 'PrometheusRule');
    assert.deepEqual(await validateObjects([object]), []);
    assert.deepEqual(object.spec.groups, (parse(await committed('alerts.yaml')) as { groups: unknown }).groups);
  });

  it("dashboard.json is the chart's dashboard: valid JSON whose queries use only metrics the sidecar exposes", async () => {
    const dashboard = JSON.parse(await committed('dashboard.json')) as {
      uid: string;
      panels: { title: string; targets: { expr: string }[] }[];
    };
    assert.equal(dashboard.uid, 'baileys-keeper');
    assert.equal(await committed('dashboard.json'), await readFile(path.join(CHART, 'files', 'dashboard.json'), 'utf8'));
    const exposed = await exposedMetricNames({ manySessions: true });
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        for (const name of metricNamesIn(target.expr)) assert.ok(exposed.has(name), `${panel.title}: ${name} is not exposed`);
      }
    }
  });
});
