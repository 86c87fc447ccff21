// The Go original parsed flags with urfave/cli (Go's flag package underneath), which also accepts
// single-dash long names ("-exit-after 5"), "-t=5", and "--ignore-signals=true". Scripts written
// for it must keep working, so such arguments are rewritten into the form commander understands.

export interface FlagNames {
  /** Long names without dashes, e.g. "exit-after". */
  readonly long: ReadonlySet<string>;
  /** Short names without the dash, e.g. "t". */
  readonly short: ReadonlySet<string>;
  /** Long and short names of flags that take no value. */
  readonly boolean: ReadonlySet<string>;
}

const TRUE_WORDS = new Set(["true", "t", "1"]);
const FALSE_WORDS = new Set(["false", "f", "0"]);

/** Rewrites Go-style flag spellings into commander's; unknown arguments pass through unchanged. */
export function normalizeGoStyleArgs(args: readonly string[], names: FlagNames): string[] {
  const out: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] ?? "";
    if (arg === "--") {
      out.push(...args.slice(index));
      break;
    }
    out.push(...normalizeOne(arg, names));
  }
  return out;
}

function normalizeOne(arg: string, names: FlagNames): string[] {
  const match = /^(-{1,2})([^-=][^=]*)(?:=(.*))?$/s.exec(arg);
  if (match === null) return [arg];
  const dashes = match[1] ?? "";
  const name = match[2] ?? "";
  const value = match[3];
  const isLong = names.long.has(name) && (dashes === "--" || name.length > 1);
  const isShort = dashes === "-" && names.short.has(name);
  if (!isLong && !isShort) return [arg];
  const flag = isLong ? `--${name}` : `-${name}`;
  if (value === undefined) return [flag];
  if (!names.boolean.has(name)) return [flag, value];
  // Go bool flags take "=true"/"=false"; commander's boolean flags take no value at all.
  const word = value.toLowerCase();
  if (TRUE_WORDS.has(word)) return [flag];
  if (FALSE_WORDS.has(word)) return [];
  return [arg];
}
