// Go's time.ParseDuration syntax ("500ms", "1h30m", "1.5s"), so configs written for the
// Go original keep their meaning. Unlike the original's YAML decoding, a bare number is an
// error: there it silently meant nanoseconds, which is never what a person wrote.

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3, // micro sign
  "\u03bcs": 1e3, // Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.Duration is an int64 of nanoseconds: anything from 2^63 ns (about 292 years) on overflows. */
const DURATION_NS_LIMIT = 2 ** 63;

export type DurationResult = { ok: true; ms: number } | { ok: false; error: string };

const SEGMENT = /^(\d*)(?:\.(\d*))?([^\d.]*)/;

/** Parses a Go duration string into milliseconds (fractions kept: "500us" is 0.5). */
export function parseGoDuration(text: string): DurationResult {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: false, error: "must be a duration such as 500ms, 15s or 1h30m, got an empty string" };
  if (/^[-+]?\d+(\.\d+)?$/.test(trimmed) && Number(trimmed) !== 0) {
    return {
      ok: false,
      error: `${trimmed} has no unit; add one, e.g. "${trimmed}s" or "${trimmed}ms" (Go duration syntax: 500ms, 15s, 4h, 1h30m)`,
    };
  }
  let rest = trimmed;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest.startsWith("-")) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return { ok: true, ms: 0 };
  if (rest === "") return invalid(trimmed);
  let totalNs = 0;
  while (rest !== "") {
    const match = SEGMENT.exec(rest);
    const whole = match?.[1] ?? "";
    const fraction = match?.[2] ?? "";
    const unit = match?.[3] ?? "";
    if (match === null || (whole === "" && fraction === "")) return invalid(trimmed);
    if (unit === "") return { ok: false, error: `"${trimmed}" is missing a unit after ${whole}${fraction ? "." + fraction : ""} (use ns, us, ms, s, m or h)` };
    const nanosPerUnit = NANOS_PER_UNIT[unit];
    if (nanosPerUnit === undefined) return { ok: false, error: `"${trimmed}" has an unknown unit "${unit}" (use ns, us, ms, s, m or h)` };
    totalNs += Number(`${whole || "0"}.${fraction || "0"}`) * nanosPerUnit;
    if (totalNs >= DURATION_NS_LIMIT) return { ok: false, error: `"${trimmed}" is too long (at most about 2562047h)` };
    rest = rest.slice(match[0].length);
  }
  return { ok: true, ms: (sign * totalNs) / 1e6 };
}

function invalid(text: string): DurationResult {
  return { ok: false, error: `"${text}" is not a duration (Go syntax: 500ms, 15s, 4h, 1h30m, 1.5s)` };
}

/** Formats milliseconds the way Go's Duration.String() would, for messages and docs. */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let restMs = Math.abs(ms);
  const hours = Math.floor(restMs / 3_600_000);
  restMs -= hours * 3_600_000;
  const minutes = Math.floor(restMs / 60_000);
  restMs -= minutes * 60_000;
  if (hours > 0) parts.push(`${hours}h`);
  if (minutes > 0) parts.push(`${minutes}m`);
  if (restMs > 0 || parts.length === 0) {
    parts.push(hours === 0 && minutes === 0 && restMs < 1000 ? `${+restMs.toFixed(6)}ms` : `${+(restMs / 1000).toFixed(9)}s`);
  }
  return (ms < 0 ? "-" : "") + parts.join("");
}
