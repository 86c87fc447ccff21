// What a key accepts where the loader's rule is code that zod cannot turn into JSON Schema: a
// transform (durations, byte sizes, percentages, addresses) or a refinement (templates, names).
// Each pattern here restates one parser of src/config (duration.ts, byte-size.ts, port-template.ts,
// listen-address.ts, schema.ts) as an ECMA-262 regular expression, so that an editor flags what
// `monoceros -k` would flag and accepts what it accepts. test/unit/config/json-schema.test.ts
// runs both on the same values, key by key, so a parser that changes without its pattern fails there.
import { DEBUG_ARG_CHARS_MAX, DEBUG_ARGV_MAX, DEBUG_COMMANDS_MAX, DEBUG_NAME, DEBUG_NAME_LENGTH_MAX, PROC_SNAPSHOT_NAME } from "../debug/limits.js";
import { RESERVED_ENV_NAMES } from "./schema.js";
import { LIMITS, LOAD_BALANCER_ALGORITHMS } from "./types.js";

export type JsonSchema = { [keyword: string]: unknown };

/**
 * How the generated schema of one key is changed: `replace` its non-null part (a transform, whose
 * input zod can only describe as string|number), or `refine` it with keywords merged into its
 * non-null part (a refinement on top of a shape zod describes well).
 */
export type ValueRule = { replace: JsonSchema } | { refine: JsonSchema };

// --- durations (duration.ts: Go's time.ParseDuration) ----------------------------------------

const DURATION_UNIT = "(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h)";
const DURATION_NUMBER = "(?:\\d+(?:\\.\\d*)?|\\.\\d+)";
const ZERO_NUMBER = "(?:0+(?:\\.0*)?|\\.0+)";
const DURATION_HINT = "a duration in Go syntax with a unit (ns, us, ms, s, m, h), e.g. 500ms, 15s, 1h30m";

/** A duration that may be 0: "0", a Go duration (a negative one only if it is zero), or the number 0. */
const DURATION: JsonSchema = {
  anyOf: [
    {
      type: "string",
      pattern: `^\\s*(?:\\+?(?:0|(?:${DURATION_NUMBER}${DURATION_UNIT})+)|-(?:0|(?:${ZERO_NUMBER}${DURATION_UNIT})+))\\s*$`,
      patternErrorMessage: `must be ${DURATION_HINT}`,
      errorMessage: `must be ${DURATION_HINT} (a bare number has no unit)`,
    },
    { const: 0 },
  ],
};

/** A duration above 0: some digit of it is not 0 (no unit name holds a digit). */
const POSITIVE_DURATION: JsonSchema = {
  type: "string",
  pattern: `^\\s*\\+?(?=[^1-9]*[1-9])(?:${DURATION_NUMBER}${DURATION_UNIT})+\\s*$`,
  patternErrorMessage: `must be above 0: ${DURATION_HINT}`,
  errorMessage: `must be above 0: ${DURATION_HINT} (a bare number has no unit)`,
};

// --- sizes and counts ------------------------------------------------------------------------

// A count or a text in one schema (a type list), not an anyOf of two: bounds apply to numbers only
// and patterns to strings only, and an editor explains a bad text with the pattern's message.

/** byte-size.ts: a whole number of bytes, or a number and a unit in any case (K, Ki, KB, KiB…, B). */
const BYTE_SIZE: JsonSchema = {
  type: ["integer", "string"],
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  pattern: "^\\s*\\d+(?:\\.\\d+)?\\s*(?:[bB]|[kKmMgGtT](?:[bB]|[iI][bB]?)?)?\\s*$",
  patternErrorMessage: "must be a size such as 512MiB, 1Gi, 800M or a number of bytes",
};

/** The loader reads String(value).trim(): a number prints in exponent form from 1e21 on. */
const PRINTS_AS_DIGITS = 1e21;

/** schema.ts maxUnavailable: workers (at least 1) or 1%–100%. */
const MAX_UNAVAILABLE: JsonSchema = {
  type: ["integer", "string"],
  minimum: 1,
  exclusiveMaximum: PRINTS_AS_DIGITS,
  pattern: "^\\s*(?:\\d*[1-9]\\d*|(?:0{0,2}[1-9]|0?[1-9]\\d|100)%)\\s*$",
  patternErrorMessage: 'must be a positive number of workers or a percentage from 1% to 100%, e.g. "25%"',
};

/** schema.ts maxSurge: workers 0–4096 (LIMITS.replicasMax, spelt out in the pattern: the key-by-key test holds them together) or 0%–100%. */
const MAX_SURGE: JsonSchema = {
  type: ["integer", "string"],
  minimum: 0,
  maximum: LIMITS.replicasMax,
  pattern: `^\\s*(?:0*(?:\\d{1,3}|[1-3]\\d{3}|40[0-8]\\d|409[0-6])|(?:\\d{1,2}|0\\d{2}|100)%)\\s*$`,
  patternErrorMessage: `must be a number of workers from 0 to ${LIMITS.replicasMax} or a percentage from 0% to 100%, e.g. "25%"`,
};

/** schema.ts loadBalancerAlgorithm: one of the names, in any case. */
const LOAD_BALANCER_ALGORITHM: JsonSchema = {
  type: "string",
  pattern: `^(?:${LOAD_BALANCER_ALGORITHMS.map(anyCase).join("|")})$`,
  patternErrorMessage: `must be one of ${LOAD_BALANCER_ALGORITHMS.join(", ")} (any case)`,
  examples: [...LOAD_BALANCER_ALGORITHMS],
};

// --- addresses (Node's net.isIPv4 / isIPv6, listen-address.ts, schema.ts checkHost) ------------

const V4_PART = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)";
const IPV4 = `(?:${V4_PART}\\.){3}${V4_PART}`;
const V6_PART = "[0-9a-fA-F]{1,4}";
/** Node's own expression for isIPv6 (lib/internal/net.js), zone index included. */
const IPV6 =
  "(?:" +
  [
    `(?:${V6_PART}:){7}(?:${V6_PART}|:)`,
    `(?:${V6_PART}:){6}(?:${IPV4}|:${V6_PART}|:)`,
    `(?:${V6_PART}:){5}(?::${IPV4}|(?::${V6_PART}){1,2}|:)`,
    `(?:${V6_PART}:){4}(?:(?::${V6_PART}){0,1}:${IPV4}|(?::${V6_PART}){1,3}|:)`,
    `(?:${V6_PART}:){3}(?:(?::${V6_PART}){0,2}:${IPV4}|(?::${V6_PART}){1,4}|:)`,
    `(?:${V6_PART}:){2}(?:(?::${V6_PART}){0,3}:${IPV4}|(?::${V6_PART}){1,5}|:)`,
    `(?:${V6_PART}:){1}(?:(?::${V6_PART}){0,4}:${IPV4}|(?::${V6_PART}){1,6}|:)`,
    `(?::(?:(?::${V6_PART}){0,5}:${IPV4}|(?::${V6_PART}){1,7}|:))`,
  ].join("|") +
  ")(?:%[0-9a-zA-Z-.:]+)?";
/** 1–65535 in at most five digits, leading zeros allowed. */
const PORT = "(?=\\d{1,5}$)0*(?:[1-9]\\d{0,3}|[1-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5])";
const HOSTNAME = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*";

/** Exported for the test that holds these expressions against Node's net.isIPv4 and isIPv6. */
export const IP_PATTERNS = { ipv4: `^${IPV4}$`, ipv6: `^${IPV6}$` };

const LISTEN_ADDRESS: JsonSchema = {
  type: "string",
  maxLength: 128,
  pattern: `^(?:${IPV4}|\\[${IPV6}\\])?:${PORT}$`,
  patternErrorMessage: 'must be an IP address and a port, e.g. "0.0.0.0:8080", "127.0.0.1:8080", "[::]:8080" or ":8080" (no host names)',
};

/** A host name never is dotted numbers only: those are meant as an IPv4 address. */
const CHECK_HOST: JsonSchema = {
  type: "string",
  pattern: `^(?:\\[(?:${IPV4}|${IPV6})\\]|${IPV4}|${IPV6}|(?![\\d.]+$)${HOSTNAME})$`,
  patternErrorMessage: "must be an IP address or a host name, without a port",
};

/** sun_path is 108 bytes on Linux, with the terminating NUL (schema.ts). */
const UNIX_SOCKET_PATH_BYTES_MAX = 107;

// --- Go templates (port-template.ts) ---------------------------------------------------------

/** Literal text: anything without "{{", which would open an action. */
const TEMPLATE_TEXT = "(?:[^{]|\\{(?!\\{))*";
const action = (fields: readonly string[]) => `\\{\\{\\s*\\.(?:${fields.join("|")})\\s*\\}\\}`;

/** Literal text with {{.Field}} actions for the fields given; `required` asks for at least one. */
export function templatePattern(fields: readonly string[], required: boolean): string {
  return `^${TEMPLATE_TEXT}(?:${action(fields)}${TEMPLATE_TEXT})${required ? "+" : "*"}$`;
}

const templateString = (fields: readonly string[], required: boolean): JsonSchema => ({
  pattern: templatePattern(fields, required),
  patternErrorMessage: required
    ? `must contain ${fields.map((f) => `{{.${f}}}`).join(" or ")}, and no other {{ }} action`
    : `may use ${fields.map((f) => `{{.${f}}}`).join(", ")} and no other {{ }} action`,
});

const COMMAND_FIELDS = ["Pid", "WorkerId", "Port"] as const;

// --- named commands and environment variables (schema.ts debugCommands, envSchema) -----------

/** One entry of a debug command; the first names the executable, so it is not blank (trim's white space is \s). */
const debugArg = (first: boolean): JsonSchema => ({
  type: "string",
  maxLength: DEBUG_ARG_CHARS_MAX,
  ...(first
    ? { pattern: `^(?=[\\s\\S]*\\S)${templatePattern(COMMAND_FIELDS, false).slice(1)}`, patternErrorMessage: "must name the executable, and may use only {{.Pid}}, {{.WorkerId}}, {{.Port}}" }
    : templateString(COMMAND_FIELDS, false)),
});

// Names are refused with a negative lookahead rather than `not`, so an editor can say why.

const DEBUG_COMMANDS: JsonSchema = {
  type: "object",
  maxProperties: DEBUG_COMMANDS_MAX,
  propertyNames: {
    maxLength: DEBUG_NAME_LENGTH_MAX,
    pattern: `^(?!${escapeRegex(PROC_SNAPSHOT_NAME)}$)${DEBUG_NAME.source.replace(/^\^/, "")}`,
    patternErrorMessage: `must be a name of letters, digits, _, . and -, starting with a letter or digit; "${PROC_SNAPSHOT_NAME}" is built in`,
  },
  additionalProperties: { type: "array", minItems: 1, maxItems: DEBUG_ARGV_MAX, items: [debugArg(true)], additionalItems: debugArg(false) },
};

const ENV_NAMES: JsonSchema = {
  maxProperties: LIMITS.envVariablesMax,
  propertyNames: {
    pattern: `^(?!(?:${RESERVED_ENV_NAMES.map(escapeRegex).join("|")})$)(?!MONOCEROS_)[A-Za-z_][A-Za-z0-9_]*$`,
    patternErrorMessage: "must be a variable name (letters, digits and _, not starting with a digit) that Monoceros does not set itself (MULTIPROCESS_WORKER_ID, MONOCEROS_*, NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*)",
  },
};

/** Key paths (as key-docs.ts writes them) whose generated schema is changed, and how. */
export const VALUE_RULES: Readonly<Record<string, ValueRule>> = {
  "admin.host": { replace: CHECK_HOST },
  // The loader counts bytes (a Unix socket path's limit), JSON Schema characters: equal for ASCII.
  "admin.control_socket": { refine: { maxLength: UNIX_SOCKET_PATH_BYTES_MAX } },
  "supervisor.workers[].signal_timeout": { replace: DURATION },
  "supervisor.workers[].startup_wait_time": { replace: DURATION },
  "supervisor.workers[].limits.lifespan": { replace: DURATION },
  "supervisor.workers[].limits.memory": { replace: BYTE_SIZE },
  "supervisor.workers[].restart_policy.min_uptime": { replace: DURATION },
  "supervisor.workers[].restart_policy.backoff_initial": { replace: DURATION },
  "supervisor.workers[].restart_policy.backoff_max": { replace: DURATION },
  "supervisor.workers[].restart_policy.window": { replace: POSITIVE_DURATION },
  "supervisor.workers[].health_check.http.host": { replace: CHECK_HOST },
  "supervisor.workers[].health_check.exec[]": { refine: templateString(COMMAND_FIELDS, false) },
  "supervisor.workers[].health_check.interval": { replace: POSITIVE_DURATION },
  "supervisor.workers[].health_check.timeout": { replace: POSITIVE_DURATION },
  "supervisor.workers[].health_check.start_period": { replace: DURATION },
  "supervisor.workers[].max_unavailable": { replace: MAX_UNAVAILABLE },
  "supervisor.workers[].max_surge": { replace: MAX_SURGE },
  "supervisor.workers[].ready_timeout": { replace: POSITIVE_DURATION },
  "supervisor.workers[].listen[]": { replace: LISTEN_ADDRESS },
  "supervisor.workers[].env": { refine: ENV_NAMES },
  "supervisor.workers[].server.port_arg.value_template": { refine: templateString(["Port"], true) },
  "supervisor.workers[].server.signal_timeout": { replace: DURATION },
  "supervisor.workers[].server.load_balancer_algorithm": { replace: LOAD_BALANCER_ALGORITHM },
  "supervisor.workers[].debug": { replace: DEBUG_COMMANDS },
};

/** "abc" → "[aA][bB][cC]": JSON Schema patterns have no flags. */
function anyCase(word: string): string {
  return [...word].map((c) => (/[A-Za-z]/.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : escapeRegex(c))).join("");
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

/**
 * A regular expression's source rewritten to match as it would with the `i` flag (ASCII letters),
 * because zod writes `pattern` from a RegExp's source and drops its flags.
 */
export function caselessPattern(source: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i] as string;
    if (c === "\\") {
      const escape = escapeAt(source, i);
      out += escape;
      i += escape.length - 1;
    } else if (inClass) {
      if (c === "]") inClass = false;
      const end = source[i + 2];
      if (isLetter(c) && source[i + 1] === "-" && end !== undefined && isLetter(end)) {
        out += `${c}-${end}${swapCase(c)}-${swapCase(end)}`;
        i += 2;
      } else {
        out += isLetter(c) ? c + swapCase(c) : c;
      }
    } else if (c === "[") {
      inClass = true;
      out += c;
      if (source[i + 1] === "^") out += source[++i];
    } else if (c === "(" && /^\(\?<[^=!]/.test(source.slice(i))) {
      throw new Error(`a named group in /${source}/i cannot be made caseless here`);
    } else {
      out += isLetter(c) ? `[${c}${swapCase(c)}]` : c;
    }
  }
  return out;
}

/** One escape sequence starting at `at` (a backslash), whole: \d, \x41, \u0041, \u{41}, \cA, \p{L}. */
function escapeAt(source: string, at: number): string {
  const next = source[at + 1];
  const braced = (from: number) => source.slice(at, source.indexOf("}", from) + 1);
  if (next === "x") return source.slice(at, at + 4);
  if (next === "u") return source[at + 2] === "{" ? braced(at + 2) : source.slice(at, at + 6);
  if (next === "c") return source.slice(at, at + 3);
  if ((next === "p" || next === "P") && source[at + 2] === "{") return braced(at + 2);
  if (next === "k") throw new Error(`a named back reference in /${source}/i cannot be made caseless here`);
  return source.slice(at, at + 2);
}

const isLetter = (c: string) => /^[A-Za-z]$/.test(c);
const swapCase = (c: string) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());
