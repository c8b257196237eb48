// The chart's session id is session.id and nothing else: a release renamed, or a nameOverride or
// fullnameOverride set, renders the same id everywhere the keepers and the alerts use it (a new id would
// be a new, empty session and a QR scan). Without it the render fails, naming the id an earlier chart
// derived from the release's full name, so an upgrade cannot silently move a release to a new session.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { container, workloadPodSpec, type Container } from '../support/charts/pod.js';
import { CHART, renderChart, renderChartError, type K8sObject } from '../support/charts/render.js';
import { findTool, tool } from '../support/charts/tools.js';

const NATIVE = path.join(CHART, 'ci', 'native-values.yaml');
const MONITORING = path.join(CHART, 'ci', 'monitoring-on-values.yaml');
const SESSIONS_DIR = path.join(CHART, 'ci', 'sessions-dir-values.yaml');

/** Every place a render names the session: both keepers' env, the helm test doctor's, every alert's label. */
function sessionIds(objects: K8sObject[]): string[] {
  const envId = (each: Container) => each.env?.find((variable) => variable.name === 'KEEPER_SESSION_ID')?.value ?? '(none)';
  const spec = workloadPodSpec(objects);
  const testPod = objects.find((object) => object.kind === 'Pod') as K8sObject & { spec: { containers: Container[] } };
  const rule = objects.find((object) => object.kind === 'PrometheusRule') as
    | (K8sObject & { spec: { groups: { rules: { labels: Record<string, string> }[] }[] } })
    | undefined;
  return [
    envId(container(spec, 'restore')),
    envId(container(spec, 'sidecar')),
    envId(testPod.spec.containers.find((each) => each.name === 'doctor')!),
    ...(rule?.spec.groups.flatMap((group) => group.rules.map((each) => each.labels['session'] ?? '(none)')) ?? []),
  ];
}

describe('chart: the session id', () => {
  const namings: { name: string; release: string; set: Record<string, string> }[] = [
    { name: 'release bot', release: 'bot', set: {} },
    { name: 'release renamed', release: 'whatsapp-prod', set: {} },
    { name: 'fullnameOverride', release: 'bot', set: { fullnameOverride: 'something-else' } },
    { name: 'nameOverride', release: 'bot', set: { nameOverride: 'keeper' } },
    { name: 'both overrides, another release', release: 'x', set: { nameOverride: 'keeper', fullnameOverride: 'y' } },
  ];

  it('no release name, nameOverride or fullnameOverride changes it: the keepers, helm test and every alert use session.id', async () => {
    const names = new Set<string>();
    for (const { name, release, set } of namings) {
      const objects = await renderChart({ values: [MONITORING], release, setString: { ...set, 'session.id': 'acme-sales' } });
      names.add(objects.find((object) => object.kind === 'Deployment')!.metadata.name);
      const ids = sessionIds(objects);
      assert.ok(ids.length > 3, `${name}: the alerts are rendered too`);
      assert.deepEqual(new Set(ids), new Set(['acme-sales']), `${name}: ${ids.join(', ')}`);
    }
    assert.ok(names.size >= 4, `the object names did change: ${[...names].join(', ')}`);
  });

  it('without session.id the render fails, says what to set and names the id an earlier chart derived', async () => {
    const cases: { release: string; set: Record<string, string>; derived: string }[] = [
      { release: 'bot', set: {}, derived: 'bot-baileys-keeper' },
      { release: 'my-baileys-keeper', set: {}, derived: 'my-baileys-keeper' },
      { release: 'bot', set: { fullnameOverride: 'shop' }, derived: 'shop' },
      { release: 'bot', set: { nameOverride: 'keeper' }, derived: 'bot-keeper' },
    ];
    for (const { release, set, derived } of cases) {
      const refused = await renderChartError({ values: [NATIVE], release, setString: { ...set, 'session.id': '' } });
      assert.match(refused, /session\.id is required: .*e\.g\. --set session\.id=my-bot/, release);
      assert.match(refused, new RegExp(`Set session\\.id=${derived}, the id that chart derived`), `${release} ${JSON.stringify(set)}`);
    }
  });

  it('an upgrade without session.id fails too, instead of moving the release to a new session', async () => {
    const helm = await findTool('helm', 'HELM');
    // The render of an upgrade (.Release.IsUpgrade set), without a cluster.
    const upgrade = tool(helm, ['template', 'bot', CHART, '--is-upgrade', '--values', NATIVE, '--set-string', 'session.id=']);
    await assert.rejects(upgrade, /session\.id is required.*session\.id=bot-baileys-keeper/s);
  });

  it('a sessions directory needs no session.id (each sub-directory names its session), and refuses one', async () => {
    const objects = await renderChart({ values: [SESSIONS_DIR] });
    const sidecar = container(workloadPodSpec(objects), 'sidecar');
    assert.equal(
      sidecar.env!.find((variable) => variable.name === 'KEEPER_SESSION_ID'),
      undefined,
    );
    assert.match(
      await renderChartError({ values: [SESSIONS_DIR], setString: { 'session.id': 'x' } }),
      /session\.id \("x"\) names one session/,
    );
  });

  it('NOTES.txt prints the session id and says to keep it when renaming', async () => {
    const helm = await findTool('helm', 'HELM');
    const output = await tool(helm, [
      'install',
      'renamed',
      CHART,
      '--dry-run=client',
      '--values',
      NATIVE,
      '--set',
      'fullnameOverride=other-name',
    ]);
    const notes = output.slice(output.indexOf('NOTES:'));
    assert.match(notes, /^Session id: my-bot \(session\.id\)\. .*\n.*rename the release or set nameOverride\/fullnameOverride/m);
  });
});
