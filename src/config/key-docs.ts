// What every config key means, its default and its unit, for the JSON Schema editors read
// (`monoceros schema`, src/config/json-schema.ts). The shape and the rules of the keys are the
// loader's own (src/config/schema.ts); only the words live here. A key is named by its path, with
// `[]` for a list's entries and `*` for a mapping's values. A key of the schema without an entry
// here fails test/unit/config/json-schema.test.ts, so a new key cannot ship undocumented.
// Plain text (editors show it as it is): no Markdown.

export interface KeyDoc {
  description: string;
  /** The default as it would be written in the YAML file, when it is one fixed value. */
  default?: unknown;
  /** The default in words, when it is not one fixed value (or needs explaining). */
  defaultText?: string;
  unit?: string;
}

const DURATION = "a duration in Go syntax: a number and a unit (ns, us, ms, s, m, h), e.g. 500ms, 15s, 1h30m; 0 may be written bare";
const POSITIVE_DURATION = "a duration in Go syntax: a number and a unit (ns, us, ms, s, m, h), e.g. 500ms, 15s, 1h30m; above 0";
const PORT = "a TCP port, 1 to 65535";
const PORT_OR_ZERO = "a TCP port, 0 to 65535 (0: the operating system chooses)";
const WORKERS_OR_PERCENT = 'workers, or a percentage of replicas written with %, e.g. "25%"';

export const KEY_DOCS: Readonly<Record<string, KeyDoc>> = {
  admin: {
    description: "The admin HTTP endpoint (/metrics, /health, /status, the status page) and the control socket of monoceros ctl.",
    defaultText: "absent (every admin key at its default)",
  },
  "admin.port": { description: "Port of the admin endpoint; 0 lets the operating system choose one (it is logged), as the original does.", default: 0, unit: PORT_OR_ZERO },
  "admin.host": {
    description: "Address the admin endpoint listens on, e.g. 127.0.0.1. Unset: every interface, IPv6 and IPv4 (the original's :port), so Prometheus can scrape a pod.",
    defaultText: "every interface",
  },
  "admin.control_socket": {
    description: "The Unix socket monoceros ctl talks to, mode 0600. A live Monoceros already on it is an error at start; a stale socket is removed; any other file there is refused, never deleted.",
    defaultText: "$XDG_RUNTIME_DIR/monoceros-<uid>/<pid>.sock (/tmp/... without XDG_RUNTIME_DIR)",
  },
  supervisor: { description: "The worker pools Monoceros runs." },
  "supervisor.workers": { description: "One entry per worker pool, 1 to 64 pools." },

  "supervisor.workers[].name": {
    description: "The pool's name: letters, digits, _, . and -, starting with a letter or digit, at most 64 characters, unique. Workers are named <name>-<i> (MULTIPROCESS_WORKER_ID=<name>_<name>-<i>).",
  },
  "supervisor.workers[].replicas": { description: "How many copies of the command to keep running, 1 to 4096.", unit: "workers" },
  "supervisor.workers[].exec": { description: "The executable: a path, or a name looked up in PATH. Run without a shell; checked at start-up, not by -k." },
  "supervisor.workers[].args": {
    description:
      "The executable's arguments. Numbers are kept as written (- 5 is \"5\", - 1.50 is \"1.50\"). {{.WorkerId}} (web-0) and, in proxy mode only, {{.Port}} (the worker's port) are filled in wherever they appear; any other {{...}} text is passed as written. In proxy mode the port flag (server.port_arg) comes before them.",
    default: [],
  },
  "supervisor.workers[].signal_timeout": { description: "Time between SIGTERM and SIGKILL when a worker is stopped; 0 means the default.", default: "10s", unit: DURATION },
  "supervisor.workers[].max_restarts": {
    description:
      "Unplanned restarts allowed per worker. 0 (or unset): the first time any worker exits, Monoceros stops everything and exits 1, as the original does (-k warns). Negative: unlimited. Planned restarts (lifespan, memory, health) do not count.",
    default: 0,
    unit: "restarts per worker",
  },
  "supervisor.workers[].startup_wait_time": { description: "Delay between starting one worker and the next; the first starts at once.", default: "0s", unit: DURATION },
  "supervisor.workers[].desired_healthy_percentage": {
    description:
      "The pool is healthy (GET /health answers 200) when floor(up x 100 / replicas) is at least this, where up counts workers that have run at least restart_policy.min_uptime. The default 0 (the original's) makes /health answer 200 even with no worker running; Monoceros warns about it.",
    default: 0,
    unit: "percent, 0 to 100",
  },
  "supervisor.workers[].limits": { description: "Planned restarts by age and by memory.", defaultText: "absent (no lifespan, no memory limit)" },
  "supervisor.workers[].limits.lifespan": { description: "A worker is restarted gracefully after this long (plus the jitter); 0: never.", default: 0, unit: DURATION },
  "supervisor.workers[].limits.jitter_ratio": {
    description: "A random extra of up to jitter_ratio x lifespan is added to each worker's lifespan, so that workers do not all restart at once.",
    default: 0,
    unit: "a fraction, 0 to 1",
  },
  "supervisor.workers[].limits.memory": {
    description:
      "The resident memory (RSS) of the worker's whole process group, sampled every second; over it on 3 samples in a row means a planned restart. 0: no limit.",
    default: 0,
    unit: "bytes: a whole number, or a number with a unit in any case, decimal (K, M, G, T, optionally with B) or binary (Ki, Mi, Gi, Ti, optionally with B), e.g. 512MiB, 1Gi, 800M",
  },
  "supervisor.workers[].restart_policy": { description: "How quickly a worker that keeps exiting is started again (crash-loop backoff).", defaultText: "absent (every key at its default)" },
  "supervisor.workers[].restart_policy.min_uptime": {
    description: "A worker that exits sooner than this after it started made a quick exit; a worker counts toward health only once it has run this long.",
    default: "1s",
    unit: DURATION,
  },
  "supervisor.workers[].restart_policy.backoff_initial": {
    description:
      "The first quick exit is restarted at once; each further consecutive quick exit waits this, doubling each time (100ms, 200ms, 400ms...); a run longer than min_uptime resets it. 0 disables backoff.",
    default: "100ms",
    unit: DURATION,
  },
  "supervisor.workers[].restart_policy.backoff_max": {
    description: "The longest wait between restarts. 0 (with a non-zero backoff_initial) or less than backoff_initial makes -k warn.",
    defaultText: "30s, or backoff_initial if that is larger",
    unit: DURATION,
  },
  "supervisor.workers[].restart_policy.window": {
    description: "When set, max_restarts counts only the restarts within this sliding window (max_restarts: 5, window: 10m: more than 5 within any 10 minutes ends Monoceros).",
    defaultText: "unset (restarts are counted over the whole lifetime, as the original does)",
    unit: POSITIVE_DURATION,
  },
  "supervisor.workers[].health_check": {
    description: "How each worker's health is checked: exactly one of http, exec or notify: true (-k checks that), plus the timings. A failing worker gets a planned restart.",
    defaultText: "absent (no checks: a worker is ready as soon as it runs)",
  },
  "supervisor.workers[].health_check.http": { description: "GET http://host:port/path; healthy on a 2xx or 3xx status within timeout (the body is not awaited).", defaultText: "absent" },
  "supervisor.workers[].health_check.http.path": { description: "The path to GET: starts with /, printable ASCII without spaces (percent-encode the rest)." },
  "supervisor.workers[].health_check.http.start_port": {
    description:
      "Worker i is checked on start_port + i (it gets its port in MONOCEROS_HEALTH_PORT). Required in supervisor mode, where workers share the serving port; in proxy mode the worker's own port is the default.",
    defaultText: "in proxy mode the worker's own port; in supervisor mode none, it is required (-k checks that)",
    unit: PORT,
  },
  "supervisor.workers[].health_check.http.host": {
    description: "Where the check connects: an IP address (::1 or [::1] for an IPv6-only worker) or a host name, without a port.",
    default: "127.0.0.1",
  },
  "supervisor.workers[].health_check.exec": {
    description:
      "A command (a list: the executable, then its arguments) run without a shell, in its own process group, killed at timeout; exit 0 is healthy. {{.Pid}}, {{.WorkerId}} and, in proxy mode, {{.Port}} are filled in. It must exist at start-up.",
    defaultText: "absent",
  },
  "supervisor.workers[].health_check.notify": {
    description:
      "true: the systemd notify protocol. Each worker gets its own NOTIFY_SOCKET and WATCHDOG_USEC = interval; READY=1 makes it ready, WATCHDOG=1 (or READY=1) must come at least every interval, STOPPING=1 takes it out of the rotation.",
    default: false,
  },
  "supervisor.workers[].health_check.interval": { description: "Time between counted checks (and the longest time between WATCHDOG=1 messages); at least 100ms (-k checks that).", default: "10s", unit: POSITIVE_DURATION },
  "supervisor.workers[].health_check.timeout": {
    description: "A check without an answer by then fails with result timeout; at most interval (-k checks that).",
    default: "1s",
    unit: POSITIVE_DURATION,
  },
  "supervisor.workers[].health_check.failure_threshold": { description: "Counted failures in a row that make a planned restart, 1 to 100.", default: 3, unit: "checks" },
  "supervisor.workers[].health_check.start_period": {
    description: "After a worker starts, failures in this window do not count (it may still become ready in it).",
    default: "0s",
    unit: DURATION,
  },
  "supervisor.workers[].max_unavailable": {
    description: "Planned restarts of this pool in flight at once. A percentage is of replicas, rounded down, at least 1. More than replicas makes -k warn.",
    default: 1,
    unit: `${WORKERS_OR_PERCENT}; at least 1 or 1%`,
  },
  "supervisor.workers[].max_surge": {
    description:
      "Replacements started before the workers they replace stop, on every planned restart (lifespan, memory, health, ctl restart); a percentage of replicas, rounded up. The pool has replicas + max_surge worker slots (ids, and in proxy mode ports). 0: a planned restart stops the worker first.",
    default: 1,
    unit: `${WORKERS_OR_PERCENT}; 0 to 4096 or 0% to 100%`,
  },
  "supervisor.workers[].ready_timeout": {
    description:
      "A surge replacement not ready within this is stopped, and the worker it was to replace keeps serving. Without a health check in supervisor mode it must be longer than restart_policy.min_uptime (-k checks that).",
    default: "60s",
    unit: POSITIVE_DURATION,
  },
  "supervisor.workers[].listen": {
    description:
      'Supervisor mode only. Addresses Monoceros binds itself and hands to every worker as fd 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (systemd socket activation), 1 to 16: an IP address and a port ("0.0.0.0:8080", "[::]:8080", ":8080"), never a host name.',
    defaultText: "absent (workers bind their own sockets)",
  },
  "supervisor.workers[].reuse_port": {
    description: "With listen: true keeps one SO_REUSEPORT socket per address and worker lane (open while that lane's worker is replaced); false shares one socket per address among every worker.",
    default: true,
  },
  "supervisor.workers[].env": {
    description:
      "Environment variables added to each worker's environment: names (letters, digits, _, not starting with a digit) to string values. They come after the environment Monoceros inherited and before Monoceros's own variables (MULTIPROCESS_WORKER_ID, MONOCEROS_*, NOTIFY_SOCKET, LISTEN_*...), which win and may not be set here. At most 256 variables, each value at most 32 KiB.",
    default: {},
  },
  "supervisor.workers[].env.*": { description: "The variable's value; a number or boolean is kept as written." },
  "supervisor.workers[].cwd": {
    description: "The workers' working folder: absolute, or relative to Monoceros's working folder. A relative exec with a / in it is found there. It must exist at start-up.",
    defaultText: "Monoceros's own working folder",
  },
  "supervisor.workers[].user": {
    description: "The user to run the workers as: a user name (looked up with getent) or a numeric uid. Only when Monoceros runs as root (an error at start-up otherwise). Proxies, exec checks and debug commands still run as Monoceros.",
    defaultText: "Monoceros's own user",
  },
  "supervisor.workers[].group": {
    description: "The group to run the workers as: a group name or a numeric gid. Only when Monoceros runs as root (an error at start-up otherwise).",
    defaultText: "with user, that user's primary group; without, Monoceros's own",
  },
  "supervisor.workers[].stderr_level": {
    description:
      "The level of the log records that carry the workers' (and the proxy's) plain stderr lines; info suits servers that log everything to stderr (Python's logging, HAProxy).",
    default: "error",
  },
  "supervisor.workers[].server": { description: "Its presence puts the pool in proxy mode: each worker gets its own port and a proxy in front balances HTTP among them.", defaultText: "absent (supervisor mode)" },
  "supervisor.workers[].server.proxy": { description: "Which proxy runs in front of the workers.", default: "envoy" },
  "supervisor.workers[].server.port_arg": { description: "How a worker is told its port: worker i gets start_port + i." },
  "supervisor.workers[].server.port_arg.name": {
    description: 'The flag that gives a worker its port, e.g. --port; it and its value come before args. "" for none: then {{.Port}} must appear in args (-k checks that).',
  },
  "supervisor.workers[].server.port_arg.value_template": {
    description: "The flag's value, a Go template: literal text and {{.Port}} (inner spaces allowed), e.g. '{{.Port}}' or '127.0.0.1:{{.Port}}'; rendered as plain text.",
  },
  "supervisor.workers[].server.port_arg.start_port": { description: "Worker i gets port start_port + i, up to replicas + max_surge - 1 (at most 65535: -k checks that).", unit: PORT },
  "supervisor.workers[].server.signal_timeout": { description: "Time between SIGTERM and SIGKILL for the proxy; 0 means the default.", default: "10s", unit: DURATION },
  "supervisor.workers[].server.health_check_path": { description: "The path the proxy health-checks on each worker's port; starts with /." },
  "supervisor.workers[].server.load_balancer_algorithm": { description: "How the proxy balances: ROUND_ROBIN, LEAST_REQUEST or RANDOM, in any case.", default: "ROUND_ROBIN" },
  "supervisor.workers[].server.proxy_config_path": {
    description: "The folder the proxy's configuration files are written to, one per proxy pool (relative to Monoceros's working folder).",
    defaultText: "./envoy, or ./haproxy for HAProxy",
  },
  "supervisor.workers[].server.admin_port": {
    description: "The proxy's admin port (Envoy: its admin API; HAProxy: its Prometheus exporter on /metrics and stats page on /stats, none when 0).",
    default: 0,
    unit: PORT_OR_ZERO,
  },
  "supervisor.workers[].server.listener_port": { description: "The port the proxy listens on.", default: 10000, unit: PORT },
  "supervisor.workers[].server.proxy_binary": {
    description: "The proxy's executable: a path, or a name looked up in PATH (checked at start-up).",
    defaultText: "envoy or haproxy, after proxy",
  },
  "supervisor.workers[].debug": {
    description:
      "Named commands monoceros ctl debug <pool>/<i> <name> runs on a worker, without a shell, e.g. stack: [eu-stack, -p, \"{{.Pid}}\"]. {{.Pid}}, {{.WorkerId}} and, in proxy mode, {{.Port}} are filled in. At most 32 commands; names of letters, digits, _, . and - (at most 32 characters); proc is built in and reserved.",
    default: {},
  },
  "supervisor.workers[].debug.*": { description: "The command: the executable, then its arguments; 1 to 256 entries of at most 4096 characters." },
};
