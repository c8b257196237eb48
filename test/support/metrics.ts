// Reading what the real prom-client registry holds, as a scrape would.
import assert from 'node:assert/strict';
import type { Registry } from 'prom-client';

/** The values of counter `name` in `registry` by its `result` label, e.g. `{success: 1, failure: 0}`. */
export async function resultCounts(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  const counts: Record<string, number> = {};
  for (const { labels, value } of (await metric.get()).values) counts[String(labels['result'])] = value;
  return counts;
}

/**
 * Node's process metrics under the names generic Node.js dashboards and alerts query (prom-client's
 * defaults, unprefixed and unlabelled), and none of them under the keeper's prefix.
 */
export function assertNodeProcessMetrics(metrics: Map<string, number>): void {
  for (const name of [
    'process_cpu_user_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_seconds',
    'nodejs_heap_size_used_bytes',
  ])
    assert.ok(metrics.has(name), `missing ${name} (unlabelled)`);
  assert.ok((metrics.get('process_resident_memory_bytes') ?? 0) > 0);
  const prefixed = [...metrics.keys()].filter((key) => /^baileys_keeper_(process|nodejs)_/.test(key));
  assert.deepEqual(prefixed, [], 'no process metric under the keeper prefix');
}
