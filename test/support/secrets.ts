// What counts as a secret showing in output: the whole of it, or any piece a truncating or
// half-parsing printer could leave (the case printed 10 of 12 password characters).

/** Every distinct substring of `secret` of at least `min` characters. */
export function secretPieces(secret: string, min = 4): string[] {
  const found = new Set<string>();
  for (let length = min; length <= secret.length; length++)
    for (let i = 0; i + length <= secret.length; i++) found.add(secret.slice(i, i + length));
  return [...found];
}
