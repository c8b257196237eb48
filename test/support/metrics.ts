// Reading what the real prom-client registry holds, as a scrape would.
import type { Registry } from 'prom-client';

/** The values of counter `name` in `registry` by its `result` label, e.g. `{success: 1, failure: 0}`. */
export async function resultCounts(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  const counts: Record<string, number> = {};
  for (const { labels, value } of (await metric.get()).values) counts[String(labels['result'])] = value;
  return counts;
}
