// Writes deploy/monitoring/ from the Helm chart, for people who run the keeper without it (kustomize,
// compose, Railway, a VPS): the alert rules as a Prometheus rule file (alerts.yaml, for plain Prometheus's
// rule_files) and as a PrometheusRule (prometheusrule.yaml, for the Prometheus Operator), and the
// Grafana dashboard (dashboard.json). One source of truth: the rules are the chart's PrometheusRule as
// `helm template` renders it, and the dashboard is the chart's files/dashboard.json; `npm run monitoring`
// regenerates them, and test/charts/monitoring-files.test.ts fails while they differ.
//
// The chart's rules are scoped to one release (namespace and pod-name matchers) and aggregate
// `by (namespace)` with the session id as a rule label; the plain files cannot know either, so each rule
// keeps its name, `for`, severity, threshold and text, but works per series: the matchers and the
// `by (namespace)` aggregations are dropped, and every alert carries the labels of the series it fires
// on (job, instance; namespace and pod where Kubernetes discovery adds them; session with a sessions
// directory).
//
// Needs helm (HELM or PATH, as npm run test:charts). Usage: node build/scripts/monitoring.js [--check]
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { findTool, tool } from '../test/support/charts/tools.js';

const REPO = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHART = path.join(REPO, 'charts', 'baileys-keeper');
export const MONITORING = path.join(REPO, 'deploy', 'monitoring');

/** What a rule file's alerting rule holds (Prometheus's rule-file format). */
export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

// Rendered as release `baileys-keeper` in namespace NAMESPACE keeping session SESSION: the marks the
// transformation below replaces.
const NAMESPACE = 'monitoring-files';
const SESSION = 'SESSION-OF-THE-RELEASE';
/** What an alert's text calls the session: its `session` label, or (one session per keeper) its instance. */
const SESSION_TEXT = '{{ with $labels.session }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }}';
const HEADER =
  '# Generated from charts/baileys-keeper by `npm run monitoring`; edit the chart, not this file.\n' +
  "# The chart's alerts, per series: every alert carries the labels of the series it fires on (job,\n" +
  '# instance; namespace and pod under Kubernetes discovery; session with --sessions-dir). See docs/monitoring.md.\n';

/** The chart's PrometheusRule rules, rendered with the defaults of monitoring.prometheusRule. */
async function chartRules(chart: string): Promise<{ name: string; rules: AlertRule[] }[]> {
  const helm = await findTool('helm', 'HELM');
  const rendered = await tool(helm, [
    'template',
    'baileys-keeper',
    chart,
    '--namespace',
    NAMESPACE,
    '--show-only',
    'templates/prometheusrule.yaml',
    '--set-string',
    'bot.image.repository=bot,bot.image.tag=1,secret.create.databaseUrl=postgres://x',
    '--set-string',
    `session.id=${SESSION}`,
    '--set',
    'monitoring.prometheusRule.enabled=true',
  ]);
  return (parse(rendered) as { spec: { groups: { name: string; rules: AlertRule[] }[] } }).spec.groups;
}

/** `text` with every `agg by (namespace) (inner)` replaced by `inner` (parentheses matched, not guessed). */
function unwrapNamespaceAggregations(text: string): string {
  const opening = /\b(?:max|min|sum|avg|count) by \(namespace\) \(/;
  for (let match = opening.exec(text); match; match = opening.exec(text)) {
    const start = match.index + match[0].length;
    let depth = 1;
    let end = start;
    for (; end < text.length && depth > 0; end++) {
      if (text[end] === '(') depth++;
      else if (text[end] === ')') depth--;
    }
    if (depth !== 0) throw new Error(`unbalanced parentheses in ${text}`);
    text = text.slice(0, match.index) + text.slice(start, end - 1) + text.slice(end);
  }
  return text;
}

/** One chart rule as a plain rule: no release matchers, no namespace aggregation, no session rule label. */
export function plainRule(rule: AlertRule): AlertRule {
  const release = /namespace="monitoring-files", pod=~"[^"]*"/;
  const selector = release.exec(rule.expr)?.[0];
  if (!selector) throw new Error(`${rule.alert}: no release selector in ${rule.expr}`);
  const expr = unwrapNamespaceAggregations(rule.expr.replaceAll(`{${selector}}`, '').replaceAll(`{${selector}, `, '{'));
  if (/namespace|pod=~|by \(/.test(expr))
    throw new Error(`${rule.alert}: the chart's expression has a form this script does not know: ${rule.expr}`);
  const labels = Object.fromEntries(Object.entries(rule.labels).filter(([key]) => key !== 'session'));
  const annotations = Object.fromEntries(
    Object.entries(rule.annotations).map(([key, value]) => [
      key,
      value.replaceAll(SESSION, SESSION_TEXT).replaceAll(' of this release', ''),
    ]),
  );
  for (const text of [expr, ...Object.values(labels), ...Object.values(annotations)]) {
    if (text.includes(SESSION) || text.includes(NAMESPACE)) throw new Error(`${rule.alert}: release-specific text left in ${text}`);
  }
  return { alert: rule.alert, expr, for: rule.for, labels, annotations };
}

/** The files of deploy/monitoring/ made from the chart at `chart`, name → content. */
export async function monitoringFiles(chart = CHART): Promise<Map<string, string>> {
  const groups = (await chartRules(chart)).map((group) => ({ name: 'baileys-keeper', rules: group.rules.map(plainRule) }));
  const yaml = (value: unknown) => stringify(value, { lineWidth: 0 });
  const prometheusRule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'baileys-keeper',
      labels: { 'app.kubernetes.io/name': 'baileys-keeper', 'app.kubernetes.io/part-of': 'baileys-keeper' },
    },
    spec: { groups },
  };
  return new Map([
    ['alerts.yaml', `${HEADER}${yaml({ groups })}`],
    [
      'prometheusrule.yaml',
      `${HEADER}# Add the label your Prometheus selects rules by (e.g. release: kube-prometheus-stack) under metadata.labels.\n${yaml(prometheusRule)}`,
    ],
    ['dashboard.json', await readFile(path.join(chart, 'files', 'dashboard.json'), 'utf8')],
  ]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const [name, content] of await monitoringFiles()) {
    const file = path.join(MONITORING, name);
    const current = await readFile(file, 'utf8').catch(() => null);
    if (current === content) continue;
    if (check) stale.push(name);
    else await writeFile(file, content);
  }
  if (stale.length > 0) {
    console.error(`deploy/monitoring/ is out of date (${stale.join(', ')}): run npm run monitoring`);
    process.exitCode = 1;
  }
}
