// RPO as the bench measures it: for each write a bot made through Baileys, the time until a committed
// generation holds it (or a later write of the same file), read back from the store's own tables.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { BufferJSON, Curve, type useMultiFileAuthState } from '@whiskeysockets/baileys';
import pg from 'pg';

/** One write a bot made: when it returned, which session and file, the sha256 of what Baileys wrote (null: deleted). */
export interface TimedWrite {
  t: number;
  session: string;
  name: string;
  sha: string | null;
}

/** The sha256 of a value as Baileys' useMultiFileAuthState writes it (JSON with BufferJSON). */
export function baileysSha(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value, BufferJSON.replacer)).digest('hex');
}

/**
 * Seconds from each write to the first generation that holds it, sorted; writes no generation holds are
 * counted as unsaved. `generations` is how many generations the written sessions have in all.
 */
export async function storedRpo(
  databaseUrl: string,
  schema: string,
  writes: TimedWrite[],
): Promise<{ rpo: number[]; unsaved: number; generations: number }> {
  const sessions = [...new Set(writes.map((w) => w.session))];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const { rows } = await client.query<{
    session_id: string;
    name: string;
    sha256: Buffer;
    generation_from: string;
    generation_to: string | null;
  }>(`SELECT session_id, name, sha256, generation_from, generation_to FROM ${schema}.files WHERE session_id = ANY($1)`, [sessions]);
  const { rows: gens } = await client.query<{ session_id: string; generation: string; created_at: Date }>(
    `SELECT session_id, generation, created_at FROM ${schema}.generations WHERE session_id = ANY($1)`,
    [sessions],
  );
  await client.end();
  // A write is stored at the first generation (after it) whose state of that file is this write or a
  // later one: a version with that content, or the file's absence for a deletion (a pre-key added and
  // used up between two backups never needs storing, only its absence).
  const generations = new Map<string, { n: number; t: number }[]>();
  for (const g of gens)
    generations.set(g.session_id, [...(generations.get(g.session_id) ?? []), { n: Number(g.generation), t: g.created_at.getTime() }]);
  for (const list of generations.values()) list.sort((x, y) => x.n - y.n);
  const versions = new Map<string, { from: number; to: number; sha: string }[]>();
  for (const row of rows) {
    const key = `${row.session_id}/${row.name}`;
    versions.set(key, [
      ...(versions.get(key) ?? []),
      {
        from: Number(row.generation_from),
        to: row.generation_to === null ? Infinity : Number(row.generation_to),
        sha: row.sha256.toString('hex'),
      },
    ]);
  }
  const stateAt = (key: string, n: number) => versions.get(key)?.find((v) => v.from <= n && n < v.to)?.sha ?? null;
  const byFile = new Map<string, TimedWrite[]>();
  for (const w of writes) {
    const key = `${w.session}/${w.name}`;
    byFile.set(key, [...(byFile.get(key) ?? []), w]);
  }
  const rpo: number[] = [];
  let unsaved = 0;
  for (const [key, list] of byFile) {
    const sessionGenerations = generations.get(list[0]!.session) ?? [];
    list.forEach((w, i) => {
      const acceptable = new Set(list.slice(i).map((x) => x.sha));
      // created_at is the transaction's start, after the files were read: a generation holding this write starts after it.
      const hit = sessionGenerations.find((g) => g.t >= w.t && acceptable.has(stateAt(key, g.n)));
      if (hit) rpo.push((hit.t - w.t) / 1000);
      else unsaved++;
    });
  }
  rpo.sort((a, b) => a - b);
  return { rpo, unsaved, generations: gens.length };
}

/** What a churn writer keeps between writes: the pre-keys it added (the ones it may use up), and where new ids come from. */
export interface ChurnState {
  preKeys: number[];
  /** A new pre-key id, unique among every writer sharing it. */
  nextPreKey: () => number;
}

/**
 * One write of a churning bot through Baileys' keys.set into `auth`, recorded in `writes` as a write to
 * `session`: 15 % a pre-key used up (deleted), 20 % a pre-key added, otherwise a session record rewritten.
 */
export async function churnWrite(
  auth: Awaited<ReturnType<typeof useMultiFileAuthState>>,
  state: ChurnState,
  session: string,
  writes: TimedWrite[],
): Promise<void> {
  const pick = Math.random();
  if (pick < 0.15 && state.preKeys.length > 0) {
    const id = state.preKeys.splice(randomInt(state.preKeys.length), 1)[0]!;
    await auth.state.keys.set({ 'pre-key': { [String(id)]: null } });
    writes.push({ t: Date.now(), session, name: `pre-key-${id}.json`, sha: null });
  } else if (pick < 0.35) {
    const id = state.nextPreKey();
    const value = Curve.generateKeyPair();
    await auth.state.keys.set({ 'pre-key': { [String(id)]: value } });
    state.preKeys.push(id);
    writes.push({ t: Date.now(), session, name: `pre-key-${id}.json`, sha: baileysSha(value) });
  } else {
    const id = `5511${String(randomInt(300)).padStart(4, '0')}.0`;
    const value = randomBytes(randomInt(600, 1500));
    await auth.state.keys.set({ session: { [id]: value } } as never);
    writes.push({ t: Date.now(), session, name: `session-${id}.json`, sha: baileysSha(value) });
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
