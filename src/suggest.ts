// "Did you mean": the closest known word to a mistyped one, by edit distance (fastest-levenshtein).
import { closest, distance } from 'fastest-levenshtein';

/**
 * The candidate nearest to `word`, or null when none is near enough to be a typo: at most a third of the
 * word's length in edits (at least 1, at most 3), or a candidate that starts with the word (`--allow`).
 */
export function didYouMean(word: string, candidates: readonly string[]): string | null {
  if (candidates.length === 0 || word.length === 0) return null;
  const prefixed = candidates.filter((candidate) => candidate.startsWith(word));
  if (prefixed.length === 1) return prefixed[0]!;
  const best = closest(word, [...candidates]);
  const allowed = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  return distance(word, best) <= allowed ? best : null;
}
