// Text in, config or error lines out. No file system: the CLI reads the file, this decides.
import { isMap, isScalar, LineCounter, parseDocument, type Document } from "yaml";
import { z } from "zod";
import { crossCheck, formatPath, type PathedMessage } from "./cross-checks.js";
import { configSchema, STRING_FIELD_PATHS, type RawConfig, type RawPool } from "./schema.js";
import { suggestName } from "./suggest.js";
import { DEFAULTS, defaultProxyConfigPath, type Config, type HealthCheckConfig, type HealthProbeConfig, type PoolConfig } from "./types.js";

/** A config larger than this is certainly not one a person wrote. */
export const CONFIG_BYTES_MAX = 1024 * 1024;
/** yaml's default bound on alias expansion ("billion laughs"). */
const ALIAS_COUNT_MAX = 100;
const SHOWN_VALUE_CHARS_MAX = 60;

export type LoadResult =
  | { ok: true; config: Config; warnings: string[] }
  | { ok: false; errors: string[] };

export function loadConfigText(text: string): LoadResult {
  if (Buffer.byteLength(text, "utf8") > CONFIG_BYTES_MAX) {
    return { ok: false, errors: [`config is larger than ${CONFIG_BYTES_MAX} bytes`] };
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((error) => {
        const position = lineCounter.linePos(error.pos[0]);
        const where = ` at line ${position.line}, column ${position.col}`;
        return `invalid YAML${where}: ${firstLine(error.message)}`;
      }),
    };
  }
  let plain: unknown;
  try {
    plain = doc.toJS({ maxAliasCount: ALIAS_COUNT_MAX });
  } catch (error) {
    return { ok: false, errors: [`invalid YAML: ${firstLine(error instanceof Error ? error.message : String(error))}`] };
  }
  if (plain === null || plain === undefined) return { ok: false, errors: ["config is empty: expected admin and supervisor sections"] };
  keepSourceTextOfStringFields(plain, doc);

  const parsed = configSchema.safeParse(plain);
  const problems: PathedMessage[] = parsed.success ? [] : parsed.error.issues.flatMap((issue) => describeIssue(issue, plain));
  problems.push(...crossCheck(plain));
  if (!parsed.success || problems.length > 0) {
    return { ok: false, errors: sortByPosition(problems, doc).map((p) => withLine(p, doc, lineCounter)) };
  }
  return { ok: true, config: normalise(parsed.data), warnings: warningsFor(parsed.data).map((p) => withLine(p, doc, lineCounter)) };
}

function normalise(raw: RawConfig): Config {
  return {
    admin: { port: raw.admin?.port ?? DEFAULTS.adminPort, host: raw.admin?.host ?? null, controlSocket: raw.admin?.control_socket ?? null },
    pools: raw.supervisor.workers.map(normalisePool),
  };
}

function normalisePool(raw: RawPool): PoolConfig {
  const maxRestarts = raw.max_restarts ?? DEFAULTS.maxRestarts;
  const server = raw.server;
  const proxy = server?.proxy ?? DEFAULTS.proxy;
  return {
    name: raw.name,
    replicas: raw.replicas,
    exec: raw.exec,
    args: raw.args ?? [],
    // 0 means "use the default" in the original, so it does here too.
    signalTimeoutMs: raw.signal_timeout || DEFAULTS.signalTimeoutMs,
    maxRestarts: maxRestarts < 0 ? Infinity : maxRestarts,
    startupWaitMs: raw.startup_wait_time ?? DEFAULTS.startupWaitMs,
    desiredHealthyPercentage: raw.desired_healthy_percentage ?? DEFAULTS.desiredHealthyPercentage,
    limits: {
      lifespanMs: raw.limits?.lifespan ?? 0,
      jitterRatio: raw.limits?.jitter_ratio ?? DEFAULTS.jitterRatio,
      memoryBytes: raw.limits?.memory ?? 0,
    },
    restartPolicy: {
      minUptimeMs: raw.restart_policy?.min_uptime ?? DEFAULTS.minUptimeMs,
      backoffInitialMs: raw.restart_policy?.backoff_initial ?? DEFAULTS.backoffInitialMs,
      backoffMaxMs: raw.restart_policy?.backoff_max ?? Math.max(DEFAULTS.backoffMaxMs, raw.restart_policy?.backoff_initial ?? 0),
      windowMs: raw.restart_policy?.window ?? null,
    },
    healthCheck: normaliseHealthCheck(raw.health_check),
    maxUnavailable: raw.max_unavailable == null
      ? DEFAULTS.maxUnavailable
      : raw.max_unavailable.unit === "workers"
        ? raw.max_unavailable.value
        : Math.max(1, Math.floor((raw.max_unavailable.value * raw.replicas) / 100)),
    maxSurge: maxSurgeOf(raw),
    readyTimeoutMs: raw.ready_timeout ?? DEFAULTS.readyTimeoutMs,
    listen: raw.listen ?? [],
    reusePort: raw.reuse_port ?? DEFAULTS.reusePort,
    stderrLevel: raw.stderr_level ?? DEFAULTS.stderrLevel,
    env: raw.env ?? {},
    cwd: raw.cwd ?? null,
    user: raw.user ?? null,
    group: raw.group ?? null,
    debug: raw.debug ?? {},
    server: server
      ? {
          proxy,
          portArgName: server.port_arg.name,
          portValueTemplate: server.port_arg.value_template,
          startPort: server.port_arg.start_port,
          signalTimeoutMs: server.signal_timeout || DEFAULTS.proxySignalTimeoutMs,
          healthCheckPath: server.health_check_path,
          loadBalancerAlgorithm: server.load_balancer_algorithm ?? DEFAULTS.loadBalancerAlgorithm,
          proxyConfigPath: server.proxy_config_path ?? defaultProxyConfigPath(proxy),
          proxyAdminPort: server.admin_port ?? DEFAULTS.proxyAdminPort,
          listenerPort: server.listener_port ?? DEFAULTS.listenerPort,
          proxyBinary: server.proxy_binary ?? proxy,
        }
      : null,
  };
}

/** A share of the replicas is rounded up (Kubernetes' maxSurge): "25%" of 2 is 1. */
export function maxSurgeOf(raw: Pick<RawPool, "max_surge" | "replicas">): number {
  if (raw.max_surge == null) return DEFAULTS.maxSurge;
  return raw.max_surge.unit === "workers" ? raw.max_surge.value : Math.ceil((raw.max_surge.value * raw.replicas) / 100);
}

function normaliseHealthCheck(raw: RawPool["health_check"]): HealthCheckConfig | null {
  if (raw == null) return null;
  const probe: HealthProbeConfig = raw.http != null
    ? { kind: "http", path: raw.http.path, host: raw.http.host ?? DEFAULTS.healthCheckHost, startPort: raw.http.start_port ?? null }
    : raw.exec != null
      ? { kind: "exec", argv: raw.exec }
      : { kind: "notify" };
  return {
    probe,
    intervalMs: raw.interval ?? DEFAULTS.healthCheckIntervalMs,
    timeoutMs: raw.timeout ?? DEFAULTS.healthCheckTimeoutMs,
    failureThreshold: raw.failure_threshold ?? DEFAULTS.healthCheckFailureThreshold,
    startPeriodMs: raw.start_period ?? DEFAULTS.healthCheckStartPeriodMs,
  };
}

function warningsFor(raw: RawConfig): PathedMessage[] {
  const warnings: PathedMessage[] = [];
  raw.supervisor.workers.forEach((pool, index) => {
    const path = ["supervisor", "workers", index];
    if (pool.max_restarts === undefined || pool.max_restarts === null) {
      warnings.push({
        path: [...path, "max_restarts"],
        message: "not set, so the first time a worker exits Monoceros shuts everything down (as the original does); set how many restarts each worker may have, or -1 for unlimited",
      });
    }
    if ((pool.limits?.jitter_ratio ?? 0) > 0 && !pool.limits?.lifespan) {
      warnings.push({ path: [...path, "limits", "jitter_ratio"], message: "has no effect without limits.lifespan" });
    }
    if ((pool.desired_healthy_percentage ?? DEFAULTS.desiredHealthyPercentage) === 0) {
      warnings.push({
        path: [...path, "desired_healthy_percentage"],
        message: "is 0 (the original's default), so /health answers 200 even when none of this pool's workers is running; set the share of workers that must be up, e.g. 50",
      });
    }
    const policy = pool.restart_policy;
    const backoffInitialMs = policy?.backoff_initial ?? DEFAULTS.backoffInitialMs;
    if (policy?.backoff_max === 0 && backoffInitialMs > 0) {
      warnings.push({ path: [...path, "restart_policy", "backoff_max"], message: "is 0, which disables backoff: a crash loop restarts at once every time (say backoff_initial: 0 to mean that)" });
    } else if (policy?.backoff_max != null && policy.backoff_max < backoffInitialMs) {
      warnings.push({ path: [...path, "restart_policy", "backoff_max"], message: `is shorter than backoff_initial (${backoffInitialMs} ms): every backoff waits backoff_max` });
    }
    const minUptimeMs = policy?.min_uptime ?? DEFAULTS.minUptimeMs;
    if (pool.limits?.lifespan && pool.limits.lifespan <= minUptimeMs) {
      warnings.push({
        path: [...path, "limits", "lifespan"],
        message: `is not longer than restart_policy.min_uptime (${minUptimeMs} ms): no worker ever counts as up, so /health fails whenever desired_healthy_percentage is above 0`,
      });
    }
    if (pool.max_unavailable?.unit === "workers" && pool.max_unavailable.value > pool.replicas) {
      warnings.push({ path: [...path, "max_unavailable"], message: `is more than replicas (${pool.replicas}): every worker may be in a planned restart at once` });
    }
  });
  return warnings;
}

function describeIssue(issue: z.core.$ZodIssue, plain: unknown): PathedMessage[] {
  const path = issue.path.filter((segment): segment is string | number => typeof segment !== "symbol");
  if (issue.code === "unrecognized_keys") {
    const known = knownKeysAt(path);
    return issue.keys.map((key) => {
      const suggestion = suggestName(key, known);
      const hint = suggestion !== undefined ? `; did you mean "${suggestion}"?` : known.length > 0 ? ` (known keys: ${known.join(", ")})` : "";
      return { path: [...path, key], message: `unknown key${hint}` };
    });
  }
  const value = valueAt(plain, path);
  // Custom issues come from our own parsers, whose messages already quote the value.
  const got = value === undefined || issue.code === "custom" || issue.message === "is required" ? "" : `, got ${showValue(value)}`;
  return [{ path, message: issue.message + got }];
}

function showValue(value: unknown): string {
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const text = JSON.stringify(value);
  return text.length > SHOWN_VALUE_CHARS_MAX ? `${text.slice(0, SHOWN_VALUE_CHARS_MAX)}…` : text;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let node = root;
  for (const segment of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

/** The keys the schema allows at a path, for "did you mean" hints. */
function knownKeysAt(path: readonly (string | number)[]): string[] {
  let schema: z.ZodType | undefined = configSchema;
  for (const segment of path) {
    schema = schema === undefined ? undefined : childSchema(unwrap(schema), segment);
  }
  const object = schema === undefined ? undefined : unwrap(schema);
  return object instanceof z.ZodObject ? Object.keys(object.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType = schema;
  for (let depth = 0; depth < 8; depth++) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodNullable) current = current.unwrap() as z.ZodType;
    else if (current instanceof z.ZodPipe) current = current.in as z.ZodType;
    else break;
  }
  return current;
}

function childSchema(schema: z.ZodType, segment: string | number): z.ZodType | undefined {
  if (schema instanceof z.ZodObject && typeof segment === "string") return (schema.shape as Record<string, z.ZodType>)[segment];
  if (schema instanceof z.ZodArray && typeof segment === "number") return schema.element as z.ZodType;
  return undefined;
}

/** Replaces numbers and booleans in string fields by the text written in the file (see STRING_FIELD_PATHS). */
function keepSourceTextOfStringFields(plain: unknown, doc: Document): void {
  for (const pattern of STRING_FIELD_PATHS) {
    for (const path of expand(plain, pattern)) {
      const parentPath = path.slice(0, -1);
      const key = path[path.length - 1];
      const parent = valueAt(plain, parentPath) as Record<string | number, unknown>;
      const value = key === undefined ? undefined : parent[key];
      if (key === undefined || (typeof value !== "number" && typeof value !== "boolean")) continue;
      const node = doc.getIn(path, true);
      parent[key] = isScalar(node) && typeof node.source === "string" ? node.source : String(value);
    }
  }
}

function expand(root: unknown, pattern: readonly string[]): (string | number)[][] {
  let paths: (string | number)[][] = [[]];
  for (const segment of pattern) {
    const next: (string | number)[][] = [];
    for (const path of paths) {
      const node = valueAt(root, path);
      if (segment === "*") {
        if (Array.isArray(node)) node.forEach((_, index) => next.push([...path, index]));
        else if (typeof node === "object" && node !== null) for (const key of Object.keys(node)) next.push([...path, key]);
      } else if (typeof node === "object" && node !== null && segment in node) {
        next.push([...path, segment]);
      }
    }
    paths = next;
  }
  return paths;
}

/** The file offset of the node a problem is about (its key, for unknown keys), or of its nearest ancestor. */
function offsetOf(path: readonly (string | number)[], doc: Document): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const prefix = path.slice(0, length);
    if (length < path.length) {
      const parent = doc.getIn(prefix, true);
      const key = path[length];
      if (isMap(parent)) {
        const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === key);
        if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
        if (parent.range) return parent.range[0];
      }
      continue;
    }
    const node = doc.getIn(prefix, true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return node.range[0];
  }
  return undefined;
}

function sortByPosition(problems: PathedMessage[], doc: Document): PathedMessage[] {
  return problems
    .map((problem, index) => ({ problem, index, offset: offsetOf(problem.path, doc) ?? Number.MAX_SAFE_INTEGER }))
    .sort((a, b) => a.offset - b.offset || a.index - b.index)
    .map(({ problem }) => problem);
}

function withLine(problem: PathedMessage, doc: Document, lineCounter: LineCounter): string {
  const offset = offsetOf(problem.path, doc);
  const line = offset === undefined ? "" : ` (line ${lineCounter.linePos(offset).line})`;
  return `${formatPath(problem.path)}: ${problem.message}${line}`;
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? text;
}
