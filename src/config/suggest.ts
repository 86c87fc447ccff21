import { closest, distance } from "fastest-levenshtein";

/** The closest known name to a mistyped one, if it is close enough to be a typo. */
export function suggestName(unknown: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const candidate = closest(unknown.toLowerCase(), [...known]);
  const maxDistance = Math.max(2, Math.floor(candidate.length / 3));
  return distance(unknown.toLowerCase(), candidate) <= maxDistance ? candidate : undefined;
}
