// The validated, normalised configuration: defaults applied, durations in milliseconds,
// units in names. Plain data only (no functions), so the simulator can generate, print and
// replay it.

export const LOAD_BALANCER_ALGORITHMS = ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"] as const;
export type LoadBalancerAlgorithm = (typeof LOAD_BALANCER_ALGORITHMS)[number];

export const PROXY_KINDS = ["envoy", "haproxy"] as const;
export type ProxyKind = (typeof PROXY_KINDS)[number];

export interface ServerConfig {
  /** Which proxy runs in front of the workers. */
  proxy: ProxyKind;
  /** Flag put before the worker's args, e.g. `--port`. */
  portArgName: string;
  /** Go template for the flag's value; only `{{.Port}}` is supported. */
  portValueTemplate: string;
  /** Worker i listens on startPort + i. */
  startPort: number;
  /** How long the proxy gets between SIGTERM and SIGKILL. */
  signalTimeoutMs: number;
  healthCheckPath: string;
  loadBalancerAlgorithm: LoadBalancerAlgorithm;
  /** Folder the proxy's configuration files are written to (default ./envoy, or ./haproxy for HAProxy). */
  proxyConfigPath: string;
  /** The proxy's admin port; 0 as in the original (no fixed port). */
  proxyAdminPort: number;
  listenerPort: number;
  /** The proxy's executable: a path, or a name looked up in PATH (default: envoy or haproxy). */
  proxyBinary: string;
}

export interface LimitsConfig {
  /** Planned restart after this long; 0 = never. */
  lifespanMs: number;
  /** Up to lifespanMs × jitterRatio is added to each worker's lifespan, in [0, 1]. */
  jitterRatio: number;
  /** Resident memory limit in bytes; 0 = none. */
  memoryBytes: number;
}

/** How quickly a worker that keeps exiting is started again (see the README's restart_policy). */
export interface RestartPolicyConfig {
  /** A run shorter than this is a quick exit; a worker counts toward health only once it has run this long. */
  minUptimeMs: number;
  /** Delay before the second consecutive quick exit's restart; doubles with each further one. 0 disables backoff. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** max_restarts counts only restarts within this sliding window; null: the whole lifetime (the original). */
  windowMs: number | null;
}

/** How a worker's health is checked: exactly one kind per pool. */
export type HealthProbeConfig =
  /** GET http://host:port/path; port is the worker's own in proxy mode, or startPort + worker index. */
  | { kind: "http"; path: string; host: string; startPort: number | null }
  /** A command run without a shell; its args may hold {{.Pid}}, {{.WorkerId}} and {{.Port}}. */
  | { kind: "exec"; argv: string[] }
  /** The systemd notify protocol: READY=1 and WATCHDOG=1 on the worker's own NOTIFY_SOCKET. */
  | { kind: "notify" }
  /**
   * Never from the config: the readiness check of a proxy-mode worker without one (its port
   * accepts a connection), so it joins the rotation, and a surge replacement takes over, only then.
   */
  | { kind: "tcp" };

export interface HealthCheckConfig {
  probe: HealthProbeConfig;
  /** Time between counted checks (and the longest time between WATCHDOG=1 messages). */
  intervalMs: number;
  /** A check not answered within this is a failure (result "timeout"); at most intervalMs. */
  timeoutMs: number;
  /** Consecutive counted failures that make a planned restart. */
  failureThreshold: number;
  /** Checks are not counted in this window after a worker starts (it may still become ready). */
  startPeriodMs: number;
}

export interface PoolConfig {
  name: string;
  replicas: number;
  exec: string;
  args: string[];
  signalTimeoutMs: number;
  /** Restarts allowed per worker; Infinity when the config gives a negative number. */
  maxRestarts: number;
  startupWaitMs: number;
  desiredHealthyPercentage: number;
  limits: LimitsConfig;
  restartPolicy: RestartPolicyConfig;
  /** null: no checks; workers count as ready once they run (as the original). */
  healthCheck: HealthCheckConfig | null;
  /** Planned restarts (lifespan, memory, health, manual, reload) of this pool in flight at once; at least 1. */
  maxUnavailable: number;
  /**
   * Replacements started before the workers they replace stop (surge); 0: a planned restart stops
   * the worker first, then starts it again. Worker slots (ids, ports) are replicas + maxSurge.
   */
  maxSurge: number;
  /** A replacement not ready within this is stopped and the worker it was to replace keeps serving. */
  readyTimeoutMs: number;
  /** Sockets Monoceros binds and hands to each worker (socket activation); empty: workers bind their own. */
  listen: ListenAddress[];
  /** One SO_REUSEPORT socket per address and worker lane (true), or one socket shared by all workers. */
  reusePort: boolean;
  /** Added to each worker's environment (Monoceros's own variables, e.g. MULTIPROCESS_WORKER_ID, win). */
  env: Readonly<Record<string, string>>;
  /** The workers' working folder; null: Monoceros's. */
  cwd: string | null;
  /** A user name or uid, and a group name or gid, to run the workers as (Monoceros as root only); null: Monoceros's own. */
  user: string | null;
  group: string | null;
  /**
   * The level of the records that carry the plain lines a worker (or its proxy) writes to stderr;
   * the original's is error. The loader always sets it; absent (error) in configs built in code.
   */
  stderrLevel?: LogLevelName;
  server: ServerConfig | null;
  /**
   * Named commands for `monoceros ctl debug` (argv templates with {{.Pid}}, {{.WorkerId}} and, in
   * proxy mode, {{.Port}}); `proc` is built in and never here. The loader always sets it ({} when
   * the config has none); absent only in configs built in code (tests, the simulator).
   */
  debug?: Readonly<Record<string, readonly string[]>>;
}

/** An address of `listen`: an IP address (never a name) and a port. */
export interface ListenAddress {
  host: string;
  port: number;
  family: "ipv4" | "ipv6";
  /** As written in the config; the socket's name in LISTEN_FDNAMES. */
  text: string;
}

export interface AdminConfig {
  /** 0 lets the operating system choose a free port, as in the original. */
  port: number;
  /** Address to listen on; null means every interface (IPv6 and IPv4), as the original's ":port". */
  host: string | null;
  /** The control socket for `monoceros ctl`; null: $XDG_RUNTIME_DIR (or the temp folder)/monoceros-<uid>/<pid>.sock. */
  controlSocket?: string | null;
}

export interface Config {
  admin: AdminConfig;
  pools: PoolConfig[];
}

/** Defaults of the Go original (internal/worker/defaults.go, internal/server/config.go). */
export const DEFAULTS = {
  signalTimeoutMs: 10_000,
  proxySignalTimeoutMs: 10_000,
  maxRestarts: 0,
  startupWaitMs: 0,
  desiredHealthyPercentage: 0,
  jitterRatio: 0,
  loadBalancerAlgorithm: "ROUND_ROBIN" as LoadBalancerAlgorithm,
  proxyConfigPath: "./envoy",
  proxy: "envoy" as ProxyKind,
  proxyAdminPort: 0,
  listenerPort: 10_000,
  adminPort: 0,
  minUptimeMs: 1_000,
  backoffInitialMs: 100,
  backoffMaxMs: 30_000,
  healthCheckHost: "127.0.0.1",
  healthCheckIntervalMs: 10_000,
  healthCheckTimeoutMs: 1_000,
  healthCheckFailureThreshold: 3,
  healthCheckStartPeriodMs: 0,
  maxUnavailable: 1,
  maxSurge: 1,
  readyTimeoutMs: 60_000,
  reusePort: true,
  stderrLevel: "error" as LogLevelName,
} as const;

/** Levels of Monoceros's records, least severe first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** The original's ./envoy for Envoy; ./haproxy for HAProxy, so switching does not mix files. */
export function defaultProxyConfigPath(proxy: string | null | undefined): string {
  return proxy === "haproxy" ? "./haproxy" : DEFAULTS.proxyConfigPath;
}

/** Limits of our own, so that a typo cannot ask for a million processes. */
export const LIMITS = {
  replicasMax: 4096,
  poolsMax: 64,
  nameLengthMax: 64,
  argsMax: 1024,
  /** Checks more often than this would be a load of their own. */
  healthCheckIntervalMinMs: 100,
  failureThresholdMax: 100,
  listenAddressesMax: 16,
  /** Worker slots (replicas + max_surge) over all pools: more is no pod a person runs. */
  workersTotalMax: 4096,
  envVariablesMax: 256,
  envValueCharsMax: 32 * 1024,
  /** The listen backlog of sockets Monoceros holds (the kernel caps it at net.core.somaxconn). */
  listenBacklog: 1024,
} as const;
