// The shape of the YAML file, key for key as in the Go original. Field-level rules live here;
// rules that relate fields to each other live in cross-checks.ts. Messages are phrased to
// follow "<path>: " and are completed with ", got <value>" by the formatter.
import { isIP } from "node:net";
import { z } from "zod";
import { parseByteSize } from "./byte-size.js";
import { parseGoDuration } from "./duration.js";
import { parseListenAddress } from "./listen-address.js";
import { parsePortTemplate, parseTemplate } from "./port-template.js";
import { DEBUG_ARG_CHARS_MAX, DEBUG_ARGV_MAX, DEBUG_COMMANDS_MAX, DEBUG_NAME, DEBUG_NAME_LENGTH_MAX, PROC_SNAPSHOT_NAME } from "../debug/limits.js";
import { LIMITS, LOAD_BALANCER_ALGORITHMS, LOG_LEVELS, PROXY_KINDS, type LoadBalancerAlgorithm } from "./types.js";

type Issue = { input?: unknown };
const message = (what: string) => (issue: Issue) => (issue.input === undefined ? "is required" : `must be ${what}`);

const integer = (what: string) => z.int({ error: message(what) });

const port = (what = "a port number from 1 to 65535") =>
  integer(what).min(1, { error: `must be ${what}` }).max(65535, { error: `must be ${what}` });

const portOrZero = (what = "a port number from 0 to 65535") =>
  integer(what).min(0, { error: `must be ${what}` }).max(65535, { error: `must be ${what}` });

const nonEmptyString = (what: string) => z.string({ error: message(what) }).min(1, { error: `must be ${what}` });

/** A duration in Go syntax; null (an empty YAML value) counts as unset. */
const duration = (options: { allowZero: boolean }) =>
  z.union([z.string(), z.number()], { error: "must be a duration such as 500ms, 15s or 1h30m" }).transform((value, ctx) => {
    const parsed = parseGoDuration(String(value));
    if (!parsed.ok) {
      ctx.issues.push({ code: "custom", message: parsed.error, input: value });
      return z.NEVER;
    }
    if (parsed.ms < 0 || (!options.allowZero && parsed.ms === 0)) {
      ctx.issues.push({ code: "custom", message: `must be a positive duration, got "${String(value)}"`, input: value });
      return z.NEVER;
    }
    return parsed.ms;
  });

const byteSize = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const parsed = parseByteSize(value);
  if (!parsed.ok) {
    ctx.issues.push({ code: "custom", message: `${parsed.error}, got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
  return parsed.bytes;
});

const portTemplate = nonEmptyString("a template such as '{{.Port}}'").superRefine((value, ctx) => {
  const parsed = parsePortTemplate(value);
  if (!parsed.ok) ctx.addIssue({ code: "custom", message: `${parsed.error} in "${value}"`, input: value });
});

const loadBalancerAlgorithm = z
  .string({ error: `must be one of ${LOAD_BALANCER_ALGORITHMS.join(", ")}` })
  .transform((value, ctx) => {
    const upper = value.toUpperCase();
    if (!(LOAD_BALANCER_ALGORITHMS as readonly string[]).includes(upper)) {
      ctx.issues.push({ code: "custom", message: `must be one of ${LOAD_BALANCER_ALGORITHMS.join(", ")} (any case), got "${value}"`, input: value });
      return z.NEVER;
    }
    return upper as LoadBalancerAlgorithm;
  });

const poolName = nonEmptyString("a non-empty name")
  .max(LIMITS.nameLengthMax, { error: `must be at most ${LIMITS.nameLengthMax} characters` })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
    error: "must start with a letter or digit and contain only letters, digits, '_', '.' and '-' (it names worker ids, metric labels and files)",
  });

export const portArgSchema = z.strictObject(
  {
    // "": no flag; the port goes where {{.Port}} is in args (e.g. python3 -m http.server {{.Port}}).
    name: z.string({ error: message('the port flag, e.g. --port, or "" for none') }),
    value_template: portTemplate,
    start_port: port(),
  },
  { error: message("a mapping with name, value_template and start_port") },
);

export const serverSchema = z.strictObject(
  {
    port_arg: portArgSchema,
    signal_timeout: duration({ allowZero: true }).nullish(),
    health_check_path: nonEmptyString("a path such as /health").regex(/^\//, { error: "must start with '/'" }),
    load_balancer_algorithm: loadBalancerAlgorithm.nullish(),
    proxy_config_path: nonEmptyString("a folder path").nullish(),
    admin_port: portOrZero().nullish(),
    listener_port: port().nullish(),
    proxy_binary: nonEmptyString("the proxy's executable, a path or a name in PATH").nullish(),
    proxy: z.enum(PROXY_KINDS, { error: `must be one of ${PROXY_KINDS.join(", ")}` }).nullish(),
  },
  { error: message("a mapping (the proxy mode settings)") },
);

export const limitsSchema = z.strictObject(
  {
    lifespan: duration({ allowZero: true }).nullish(),
    jitter_ratio: z
      .number({ error: message("a number from 0 to 1") })
      .min(0, { error: "must be a number from 0 to 1" })
      .max(1, { error: "must be a number from 0 to 1" })
      .nullish(),
    memory: byteSize.nullish(),
  },
  { error: message("a mapping with lifespan, jitter_ratio and memory") },
);

export const restartPolicySchema = z.strictObject(
  {
    min_uptime: duration({ allowZero: true }).nullish(),
    backoff_initial: duration({ allowZero: true }).nullish(),
    backoff_max: duration({ allowZero: true }).nullish(),
    window: duration({ allowZero: false }).nullish(),
  },
  { error: message("a mapping with min_uptime, backoff_initial, backoff_max and window") },
);

const execArg = z.string({ error: "must be a string" }).superRefine((value, ctx) => {
  const parsed = parseTemplate(value, ["Pid", "WorkerId", "Port"]);
  if (!parsed.ok) ctx.addIssue({ code: "custom", message: `${parsed.error} in "${value}"`, input: value });
});

/** An IP address (IPv6 with or without brackets, kept without) or a host name; never with a port. */
const checkHost = nonEmptyString("an address such as 127.0.0.1 or ::1").transform((value, ctx) => {
  const bare = /^\[(.*)\]$/.exec(value)?.[1] ?? value;
  if (isIP(bare) !== 0) return bare;
  // Dotted numbers are meant as an IPv4 address (no host name ends in a numeric label).
  if (/^[\d.]+$/.test(value)) {
    ctx.issues.push({ code: "custom", message: `is not a valid IPv4 address (four numbers from 0 to 255), got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
  if (/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(value)) return value;
  const hint = /:\d+$/.test(value) ? " without a port (the port is the worker's own, or start_port + i)" : "";
  ctx.issues.push({ code: "custom", message: `must be an IP address or a host name${hint}, got ${JSON.stringify(value)}`, input: value });
  return z.NEVER;
});

export const healthCheckSchema = z.strictObject(
  {
    http: z
      .strictObject(
        {
          path: nonEmptyString("a path such as /healthz")
            .regex(/^\//, { error: "must start with '/'" })
            .regex(/^[\x21-\x7e]*$/, { error: "must be printable ASCII without spaces (percent-encode the rest, e.g. %20)" }),
          start_port: port().nullish(),
          host: checkHost.nullish(),
        },
        { error: message("a mapping with path, start_port and host") },
      )
      .nullish(),
    exec: z
      .array(execArg, { error: message("a command as a list of strings, e.g. [/usr/local/bin/check, '{{.Pid}}']") })
      .min(1, { error: "must name the command to run" })
      .max(LIMITS.argsMax, { error: `must have at most ${LIMITS.argsMax} entries` })
      .nullish(),
    notify: z.boolean({ error: message("true or false") }).nullish(),
    interval: duration({ allowZero: false }).nullish(),
    timeout: duration({ allowZero: false }).nullish(),
    failure_threshold: integer(`an integer from 1 to ${LIMITS.failureThresholdMax}`)
      .min(1, { error: `must be an integer from 1 to ${LIMITS.failureThresholdMax}` })
      .max(LIMITS.failureThresholdMax, { error: `must be an integer from 1 to ${LIMITS.failureThresholdMax}` })
      .nullish(),
    start_period: duration({ allowZero: true }).nullish(),
  },
  { error: message("a mapping with one of http, exec or notify, and interval, timeout, failure_threshold, start_period") },
);

const DEBUG_EXAMPLE = "e.g. [eu-stack, -p, '{{.Pid}}']";

/** Why `name` cannot name a debug command, or null. */
function debugNameProblem(name: string): string | null {
  if (name === PROC_SNAPSHOT_NAME) return `"${PROC_SNAPSHOT_NAME}" is built in (a /proc snapshot of the worker's process group); give this command another name`;
  if (!DEBUG_NAME.test(name) || name.length > DEBUG_NAME_LENGTH_MAX) {
    return `a debug command's name must start with a letter or digit, contain only letters, digits, '_', '.' and '-', and have at most ${DEBUG_NAME_LENGTH_MAX} characters, got ${JSON.stringify(name.slice(0, 60))}`;
  }
  return null;
}

/** Why one command of `debug:` is wrong (with the path below its name), or nothing. */
function debugArgvProblems(argv: unknown): { path: number[]; message: string }[] {
  if (!Array.isArray(argv)) return [{ path: [], message: `must be a command as a list of strings, ${DEBUG_EXAMPLE}` }];
  if (argv.length === 0) return [{ path: [], message: `must name the command to run, ${DEBUG_EXAMPLE}` }];
  if (argv.length > DEBUG_ARGV_MAX) return [{ path: [], message: `must have at most ${DEBUG_ARGV_MAX} entries, got ${argv.length}` }];
  const problems: { path: number[]; message: string }[] = [];
  argv.forEach((arg: unknown, index) => {
    if (typeof arg !== "string") problems.push({ path: [index], message: `must be a string, got ${arg === null ? "an empty value" : typeof arg === "object" ? "a list or mapping" : JSON.stringify(arg)}` });
    else if (arg.length > DEBUG_ARG_CHARS_MAX) problems.push({ path: [index], message: `must be at most ${DEBUG_ARG_CHARS_MAX} characters, got ${arg.length}` });
    else if (index === 0 && arg.trim() === "") problems.push({ path: [index], message: "must name the executable (a path, or a name looked up in PATH), got an empty string" });
    else {
      const parsed = parseTemplate(arg, ["Pid", "WorkerId", "Port"]);
      if (!parsed.ok) problems.push({ path: [index], message: `${parsed.error} in ${JSON.stringify(arg.slice(0, 60))}` });
    }
  });
  return problems;
}

/**
 * Named commands for `monoceros ctl debug`, run without a shell. Checked here key by key, so that
 * every bad name and entry is reported at once with its own path (debug.stack[2]).
 */
const debugCommands = z
  .record(z.string(), z.unknown(), { error: message(`a mapping of names to commands, e.g. {stack: [eu-stack, -p, '{{.Pid}}']}`) })
  .transform((commands, ctx) => {
    const names = Object.keys(commands);
    if (names.length > DEBUG_COMMANDS_MAX) ctx.issues.push({ code: "custom", message: `must have at most ${DEBUG_COMMANDS_MAX} commands, got ${names.length}`, input: commands });
    const valid: Record<string, readonly string[]> = {};
    for (const name of names) {
      const nameProblem = debugNameProblem(name);
      const problems = nameProblem === null ? debugArgvProblems(commands[name]) : [{ path: [], message: nameProblem }];
      for (const problem of problems) ctx.issues.push({ code: "custom", message: problem.message, input: commands[name], path: [name, ...problem.path] });
      if (problems.length === 0) valid[name] = commands[name] as string[];
    }
    return valid;
  });

/** A count of workers (at least 1) or a share of the pool such as "25%". */
const maxUnavailable = z.union([z.number(), z.string()], { error: 'must be a number of workers or a percentage such as "25%"' }).transform((value, ctx) => {
  const text = String(value).trim();
  const percent = /^(\d{1,3})%$/.exec(text);
  if (percent !== null && Number(percent[1]) >= 1 && Number(percent[1]) <= 100) return { unit: "percent" as const, value: Number(percent[1]) };
  if (/^\d+$/.test(text) && Number(text) >= 1) return { unit: "workers" as const, value: Number(text) };
  ctx.issues.push({ code: "custom", message: `must be a positive number of workers or a percentage from 1% to 100%, got ${JSON.stringify(value)}`, input: value });
  return z.NEVER;
});

/** How many replacements may run beside the workers they replace: a count (0 turns surge off) or a share such as "25%" (rounded up). */
const maxSurge = z.union([z.number(), z.string()], { error: 'must be a number of workers or a percentage such as "25%"' }).transform((value, ctx) => {
  const text = String(value).trim();
  const percent = /^(\d{1,3})%$/.exec(text);
  if (percent !== null && Number(percent[1]) <= 100) return { unit: "percent" as const, value: Number(percent[1]) };
  if (/^\d+$/.test(text) && Number(text) <= LIMITS.replicasMax) return { unit: "workers" as const, value: Number(text) };
  ctx.issues.push({ code: "custom", message: `must be a number of workers from 0 to ${LIMITS.replicasMax} or a percentage from 0% to 100%, got ${JSON.stringify(value)}`, input: value });
  return z.NEVER;
});

/** sun_path is 108 bytes on Linux, with the terminating NUL. */
const UNIX_SOCKET_PATH_BYTES_MAX = 107;

/** Variables Monoceros sets itself: a pool's env may not set them (they would be overwritten, or break socket activation). */
export const RESERVED_ENV_NAMES = ["MULTIPROCESS_WORKER_ID", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "MONOCEROS_HEALTH_PORT", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"] as const;

/** env: names as a shell writes them, values strings (numbers keep their text, as args do). */
const envSchema = z
  .record(z.string(), z.string({ error: "must be a string (quote numbers and booleans, or they are kept as written)" }).max(LIMITS.envValueCharsMax, { error: `must be at most ${LIMITS.envValueCharsMax} characters` }), {
    error: message("a mapping of environment variable names to values"),
  })
  .superRefine((env, ctx) => {
    const names = Object.keys(env);
    if (names.length > LIMITS.envVariablesMax) ctx.addIssue({ code: "custom", message: `must have at most ${LIMITS.envVariablesMax} variables`, input: env });
    for (const name of names) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) ctx.addIssue({ code: "custom", path: [name], message: "is not a variable name: letters, digits and '_', not starting with a digit", input: name });
      else if ((RESERVED_ENV_NAMES as readonly string[]).includes(name) || name.startsWith("MONOCEROS_")) ctx.addIssue({ code: "custom", path: [name], message: "is set by Monoceros itself; choose another name", input: name });
    }
  });

/** A user or group: a name as useradd accepts it, or a numeric id. */
const userOrGroup = (what: string) =>
  z.union([z.number().int().min(0).max(2 ** 32 - 2).transform(String), nonEmptyString(what).regex(/^([a-z_][a-z0-9_.-]*\$?|\d+)$/i, { error: `must be ${what}` })], { error: message(what) });

/** "0.0.0.0:8080", "[::1]:8080" or ":8080": an IP address (never a name) and a port. */
const listenAddress = z.string({ error: message('an address such as "0.0.0.0:8080" or "[::]:8080"') }).transform((text, ctx) => {
  const parsed = parseListenAddress(text);
  if (parsed.ok) return { host: parsed.host, port: parsed.port, family: parsed.family, text };
  ctx.issues.push({ code: "custom", message: parsed.error, input: text });
  return z.NEVER;
});

export const poolSchema = z.strictObject(
  {
    name: poolName,
    replicas: integer("a positive integer")
      .min(1, { error: "must be a positive integer" })
      .max(LIMITS.replicasMax, { error: `must be at most ${LIMITS.replicasMax}` }),
    exec: nonEmptyString("the path or name of the worker's executable"),
    args: z
      .array(z.string({ error: "must be a string" }), { error: message("a list of strings") })
      .max(LIMITS.argsMax, { error: `must have at most ${LIMITS.argsMax} entries` })
      .nullish(),
    signal_timeout: duration({ allowZero: true }).nullish(),
    max_restarts: integer("an integer (negative means unlimited)").nullish(),
    startup_wait_time: duration({ allowZero: true }).nullish(),
    desired_healthy_percentage: integer("an integer from 0 to 100")
      .min(0, { error: "must be an integer from 0 to 100" })
      .max(100, { error: "must be an integer from 0 to 100" })
      .nullish(),
    limits: limitsSchema.nullish(),
    restart_policy: restartPolicySchema.nullish(),
    health_check: healthCheckSchema.nullish(),
    max_unavailable: maxUnavailable.nullish(),
    max_surge: maxSurge.nullish(),
    ready_timeout: duration({ allowZero: false }).nullish(),
    listen: z
      .array(listenAddress, { error: message('a list of addresses such as ["0.0.0.0:8080"]') })
      .min(1, { error: "must list at least one address (leave listen out to let workers bind their own)" })
      .max(LIMITS.listenAddressesMax, { error: `must have at most ${LIMITS.listenAddressesMax} addresses` })
      .nullish(),
    reuse_port: z.boolean({ error: message("true or false") }).nullish(),
    env: envSchema.nullish(),
    cwd: nonEmptyString("a folder path").nullish(),
    user: userOrGroup("a user name or a numeric uid").nullish(),
    group: userOrGroup("a group name or a numeric gid").nullish(),
    stderr_level: z.enum(LOG_LEVELS, { error: message(`one of ${LOG_LEVELS.join(", ")}`) }).nullish(),
    server: serverSchema.nullish(),
    debug: debugCommands.nullish(),
  },
  { error: message("a mapping describing a worker pool") },
);

export const configSchema = z.strictObject(
  {
    admin: z
      .strictObject(
        {
          port: portOrZero().nullish(),
          host: checkHost.nullish(),
          control_socket: nonEmptyString("the path of the control socket for monoceros ctl")
            .refine((path) => Buffer.byteLength(path) <= UNIX_SOCKET_PATH_BYTES_MAX, { error: `must be at most ${UNIX_SOCKET_PATH_BYTES_MAX} bytes long (a Unix socket path's limit on Linux)` })
            .nullish(),
        },
        { error: message("a mapping with port, host and control_socket") },
      )
      .nullish(),
    supervisor: z.strictObject(
      {
        workers: z
          .array(poolSchema, { error: message("a list of worker pools") })
          .min(1, { error: "must list at least one worker pool" })
          .max(LIMITS.poolsMax, { error: `must have at most ${LIMITS.poolsMax} pools` }),
      },
      { error: message("a mapping with workers") },
    ),
  },
  { error: message("a mapping with admin and supervisor") },
);

export type RawConfig = z.output<typeof configSchema>;
export type RawPool = z.output<typeof poolSchema>;

/**
 * Fields the Go original decodes into strings. YAML reads `- 5` in `args` as a number;
 * Go's decoder keeps the text as written, so these keep their source text too.
 */
export const STRING_FIELD_PATHS: readonly (readonly (string | "*")[])[] = [
  ["supervisor", "workers", "*", "name"],
  ["supervisor", "workers", "*", "exec"],
  ["supervisor", "workers", "*", "args", "*"],
  ["supervisor", "workers", "*", "health_check", "exec", "*"],
  ["supervisor", "workers", "*", "health_check", "http", "path"],
  ["supervisor", "workers", "*", "health_check", "http", "host"],
  ["supervisor", "workers", "*", "server", "port_arg", "name"],
  ["supervisor", "workers", "*", "server", "port_arg", "value_template"],
  ["supervisor", "workers", "*", "server", "health_check_path"],
  ["supervisor", "workers", "*", "server", "load_balancer_algorithm"],
  ["supervisor", "workers", "*", "server", "proxy_config_path"],
  ["supervisor", "workers", "*", "server", "proxy_binary"],
  ["supervisor", "workers", "*", "listen", "*"],
  ["supervisor", "workers", "*", "debug", "*", "*"],
  ["supervisor", "workers", "*", "env", "*"],
  ["supervisor", "workers", "*", "cwd"],
  ["admin", "control_socket"],
];
