// Whether a session's head adds up (docs/reliability.md "A head that does not add up").
import type { Queryable } from '../db/pool.js';
import { headFacts, type HeadFacts } from '../db/queries/generations.js';

/**
 * What makes a session's head not add up, one phrase each; empty when it adds up. A backup moves the
 * head, writes its generation row and its file versions in one transaction, and thinning never deletes
 * the head's row, so a head without its row, a generation row past the head, or file versions written
 * or closed by a generation past the head only come from damage or a bad manual edit of the rows.
 */
export function headDamage(facts: HeadFacts): string[] {
  const head = facts.headGeneration;
  const damage: string[] = [];
  if (head > 0 && !facts.headRow) {
    if (facts.newestGeneration === null) damage.push(`its head generation ${head} has no row and no generation row is stored`);
    else if (facts.newestGeneration < head)
      damage.push(`its head generation ${head} has no row and is past the newest stored generation, ${facts.newestGeneration}`);
    else damage.push(`the row of its head generation ${head} is missing`);
  }
  if (facts.newestGeneration !== null && facts.newestGeneration > head)
    damage.push(`generation ${facts.newestGeneration} is stored past its head generation ${head}`);
  if (facts.newestWriting !== null && facts.newestWriting > head)
    damage.push(`file versions were written by generation ${facts.newestWriting}, past its head generation ${head}`);
  if (facts.newestClosing !== null && facts.newestClosing > head)
    damage.push(`file versions were replaced or deleted by generation ${facts.newestClosing}, past its head generation ${head}`);
  return damage;
}

/**
 * Sessions (one, or every one with `prefix`) whose head does not add up (see headDamage), each with
 * what is wrong; sessions that add up are left out. `thorough` also scans every stored version for
 * generations past the head that only wrote files (costly over many sessions; see headFacts).
 */
export async function headProblems(q: Queryable, sessionId: string | null, prefix = '', thorough = false): Promise<Map<string, string[]>> {
  const damaged = new Map<string, string[]>();
  for (const facts of await headFacts(q, sessionId, prefix, thorough)) {
    const damage = headDamage(facts);
    if (damage.length > 0) damaged.set(facts.sessionId, damage);
  }
  return damaged;
}
