import { readFileSync, readdirSync } from "node:fs";
import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../../src/config/load.js";

const load = (text: string) => loadConfigText(text);
const errorsOf = (text: string) => {
  const result = load(text);
  if (result.ok) throw new Error("expected errors, got a valid config");
  return result.errors;
};
const configOf = (text: string) => {
  const result = load(text);
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return result.config;
};

const minimal = (pool: string, admin = "admin:\n  port: 9000\n") =>
  `${admin}supervisor:\n  workers:\n    - name: web\n      replicas: 2\n      exec: ./server\n${pool}`;

describe("config loading", () => {
  const referenceFolder = new URL("../../../../shared/reference/original-examples/", import.meta.url);
  const examplesFolder = new URL("../../../examples/", import.meta.url);
  const yamlFiles = (folder: URL) => {
    try {
      return readdirSync(folder).filter((name) => name.endsWith(".yaml")).map((name) => new URL(name, folder));
    } catch {
      return [];
    }
  };

  it.each([...yamlFiles(referenceFolder), ...yamlFiles(examplesFolder)].map((url) => [url.pathname.split("/").slice(-2).join("/"), url]))(
    "accepts %s unchanged",
    (_name, url) => {
      expect(load(readFileSync(url, "utf8"))).toMatchObject({ ok: true });
    },
  );

  it("applies the original's defaults", () => {
    const pool = configOf(minimal("")).pools[0];
    expect(pool).toEqual({
      name: "web",
      replicas: 2,
      exec: "./server",
      args: [],
      signalTimeoutMs: 10_000,
      maxRestarts: 0,
      startupWaitMs: 0,
      desiredHealthyPercentage: 0,
      limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 0 },
      restartPolicy: { minUptimeMs: 1_000, backoffInitialMs: 100, backoffMaxMs: 30_000, windowMs: null },
      healthCheck: null,
      maxUnavailable: 1,
      maxSurge: 1,
      readyTimeoutMs: 60_000,
      listen: [],
      reusePort: true,
      env: {},
      cwd: null,
      user: null,
      group: null,
      stderrLevel: "error",
      server: null,
      debug: {},
    });
  });

  it("reads env, cwd, user and group, and refuses variables Monoceros sets and names that are not names", () => {
    const pool = configOf(minimal("      env: {APP_MODE: production, THREADS: 4, EMPTY: ''}\n      cwd: /srv/app\n      user: www-data\n      group: 33\n")).pools[0];
    expect([pool?.env, pool?.cwd, pool?.user, pool?.group]).toEqual([{ APP_MODE: "production", THREADS: "4", EMPTY: "" }, "/srv/app", "www-data", "33"]);
    expect(errorsOf(minimal("      env: {MULTIPROCESS_WORKER_ID: x, MONOCEROS_X: y, 1BAD: z}\n"))).toEqual([
      expect.stringMatching(/^supervisor\.workers\[0\]\.env\.MULTIPROCESS_WORKER_ID: is set by Monoceros itself; choose another name/),
      expect.stringMatching(/^supervisor\.workers\[0\]\.env\.MONOCEROS_X: is set by Monoceros itself/),
      expect.stringMatching(/^supervisor\.workers\[0\]\.env\.1BAD: is not a variable name/),
    ]);
    expect(errorsOf(minimal("      user: 'bad user'\n"))).toEqual([expect.stringMatching(/^supervisor\.workers\[0\]\.user: must be a user name or a numeric uid/)]);
  });

  it("takes {{.Port}} and {{.WorkerId}} in args, and an empty port flag when args say where the port goes", () => {
    const server = (name: string) => `      server:\n        port_arg: {name: "${name}", value_template: "{{.Port}}", start_port: 9100}\n        health_check_path: /\n`;
    expect(configOf(minimal(`      args: [-m, http.server, "{{.Port}}"]\n${server("")}`)).pools[0]?.server?.portArgName).toBe("");
    expect(errorsOf(minimal(`      args: [-m, http.server]\n${server("")}`))).toEqual([expect.stringMatching(/^supervisor\.workers\[0\]\.server\.port_arg\.name: is empty \(no port flag\), so args must hold \{\{\.Port\}\}/)]);
    expect(errorsOf(minimal('      args: ["--port={{.Port}}"]\n'))).toEqual([expect.stringMatching(/^supervisor\.workers\[0\]\.args\[0\]: uses \{\{\.Port\}\}, the worker's own port, which only proxy mode/)]);
  });

  it("-k catches what only failed at start before: an address that is no address, a control socket path too long, too many workers in all", () => {
    expect(errorsOf(minimal("", "admin:\n  host: 999.1.1.1\n"))).toEqual([expect.stringMatching(/^admin\.host: is not a valid IPv4 address \(four numbers from 0 to 255\), got "999\.1\.1\.1"/)]);
    expect(errorsOf(minimal("", `admin:\n  control_socket: /${"x".repeat(120)}\n`))).toEqual([expect.stringMatching(/^admin\.control_socket: must be at most 107 bytes long/)]);
    const pools = Array.from({ length: 2 }, (_, i) => `    - name: p${i}\n      replicas: 4000\n      exec: ./server\n`).join("");
    expect(errorsOf(`supervisor:\n  workers:\n${pools}`)).toEqual([expect.stringMatching(/^supervisor\.workers: ask for 8002 worker slots in all \(replicas \+ max_surge of every pool\); at most 4096/)]);
  });

  it("reads stderr_level and names the levels when it is not one", () => {
    expect(configOf(minimal("      stderr_level: warn\n")).pools[0]?.stderrLevel).toBe("warn");
    expect(errorsOf(minimal("      stderr_level: loud\n"))).toEqual([expect.stringMatching(/^supervisor\.workers\[0\]\.stderr_level: must be one of debug, info, warn, error, got "loud" \(line \d+\)$/)]);
  });

  it("reads a negative max_restarts as unlimited and warns when it is unset", () => {
    expect(configOf(minimal("      max_restarts: -1\n")).pools[0]?.maxRestarts).toBe(Infinity);
    const unset = load(minimal(""));
    expect(unset.ok && unset.warnings).toEqual([
      expect.stringMatching(/^supervisor\.workers\[0\]\.max_restarts: not set, so the first time a worker exits/),
      expect.stringMatching(/^supervisor\.workers\[0\]\.desired_healthy_percentage: is 0 .*\/health answers 200 even when none/),
    ]);
  });

  it("warns about restart policies that do not do what they seem to", () => {
    const warned = (extra: string) => {
      const result = load(minimal(`      max_restarts: -1\n      desired_healthy_percentage: 50\n${extra}`));
      return result.ok ? result.warnings : [];
    };
    expect(warned("      restart_policy: {backoff_max: 0}\n")).toEqual([expect.stringMatching(/^supervisor\.workers\[0\]\.restart_policy\.backoff_max: is 0, which disables backoff/)]);
    expect(warned("      restart_policy: {backoff_initial: 10s, backoff_max: 1s}\n")).toEqual([expect.stringMatching(/backoff_max: is shorter than backoff_initial \(10000 ms\)/)]);
    expect(warned("      limits: {lifespan: 500ms}\n")).toEqual([expect.stringMatching(/limits\.lifespan: is not longer than restart_policy\.min_uptime \(1000 ms\): no worker ever counts as up/)]);
    expect(warned("      restart_policy: {backoff_initial: 0, backoff_max: 0, min_uptime: 100ms}\n      limits: {lifespan: 1s}\n")).toEqual([]);
  });

  it("keeps args as written, as Go's decoder does (numbers stay text)", () => {
    const args = configOf(minimal("      args: [localhost, -c, 5, 1.50, 0x10, true]\n")).pools[0]?.args;
    expect(args).toEqual(["localhost", "-c", "5", "1.50", "0x10", "true"]);
  });

  it("renders proxy settings with defaults and accepts any case of the algorithm", () => {
    const server = configOf(
      minimal("      server:\n        port_arg: {name: --port, value_template: '{{ .Port }}', start_port: 9090}\n        health_check_path: /health\n        load_balancer_algorithm: least_request\n"),
    ).pools[0]?.server;
    expect(server).toEqual({
      proxy: "envoy",
      portArgName: "--port",
      portValueTemplate: "{{ .Port }}",
      startPort: 9090,
      signalTimeoutMs: 10_000,
      healthCheckPath: "/health",
      loadBalancerAlgorithm: "LEAST_REQUEST",
      proxyConfigPath: "./envoy",
      proxyAdminPort: 0,
      listenerPort: 10_000,
      proxyBinary: "envoy",
    });
  });

  it("reports three mistakes at once, one line each, with the field path", () => {
    const errors = errorsOf(minimal("      signal_timeout: 15\n      max_restrats: 3\n").replace("replicas: 2", "replicas: 0"));
    expect(errors).toEqual([
      "supervisor.workers[0].replicas: must be a positive integer, got 0 (line 6)",
      expect.stringMatching(/^supervisor\.workers\[0\]\.signal_timeout: 15 has no unit; add one, e\.g\. "15s"/),
      'supervisor.workers[0].max_restrats: unknown key; did you mean "max_restarts"? (line 9)',
    ]);
  });

  it("names missing required fields", () => {
    expect(errorsOf("supervisor:\n  workers:\n    - name: web\n")).toEqual([
      "supervisor.workers[0].replicas: is required (line 3)",
      "supervisor.workers[0].exec: is required (line 3)",
    ]);
    expect(errorsOf("admin: {port: 1}\n")).toEqual(["supervisor: is required (line 1)"]);
  });

  it("rejects duplicate pool names, overlapping ports and shared proxy folders", () => {
    const proxyPool = (name: string, startPort: number) =>
      `    - name: ${name}\n      replicas: 3\n      exec: ./s\n      server:\n        port_arg: {name: -p, value_template: '{{.Port}}', start_port: ${startPort}}\n        health_check_path: /h\n`;
    const text = `admin:\n  port: 9091\nsupervisor:\n  workers:\n${proxyPool("a", 9090)}${proxyPool("a", 9092)}`;
    const errors = errorsOf(text);
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.name: duplicate pool name "a"/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[0\]\.server\.port_arg\.start_port: worker ports 9090-9093 overlap the admin port 9091/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.server\.port_arg\.start_port: worker ports 9092-9095 overlap worker ports 9090-9093/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.server\.listener_port: the default proxy listener port 10000 overlaps the default proxy listener port 10000/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.server\.proxy_config_path: folder "envoy" is also used by supervisor\.workers\[0\]/));
  });

  it("rejects worker ports that run past 65535", () => {
    const errors = errorsOf(
      minimal("      server:\n        port_arg: {name: -p, value_template: '{{.Port}}', start_port: 65535}\n        health_check_path: /h\n"),
    );
    expect(errors).toEqual([expect.stringMatching(/start_port 65535 \+ 3 worker slots \(replicas 2 \+ max_surge 1\) needs ports up to 65537, past 65535/)]);
  });

  it("reports invalid YAML with its line and column", () => {
    expect(errorsOf("supervisor:\n  workers: [\n")).toEqual([expect.stringMatching(/^invalid YAML at line \d+, column \d+: /)]);
    expect(errorsOf("a: 1\na: 2\n")).toEqual([expect.stringMatching(/^invalid YAML at line 2, column 1: Map keys must be unique/)]);
  });

  it("rejects an empty config and unknown top-level keys", () => {
    expect(errorsOf("")).toEqual(["config is empty: expected admin and supervisor sections"]);
    expect(errorsOf("admn: {port: 1}\nsupervisor: {workers: [{name: a, replicas: 1, exec: x}]}\n")).toEqual([
      'admn: unknown key; did you mean "admin"? (line 1)',
    ]);
  });

  describe("health_check and max_unavailable", () => {
    const proxy = "      server:\n        port_arg: {name: --port, value_template: '{{.Port}}', start_port: 9100}\n        health_check_path: /health\n";
    it("defaults to Kubernetes' probe settings and a 127.0.0.1 HTTP check on the worker's own port in proxy mode", () => {
      expect(configOf(minimal(`      health_check: {http: {path: /healthz}}\n${proxy}`)).pools[0]?.healthCheck).toEqual({
        probe: { kind: "http", path: "/healthz", host: "127.0.0.1", startPort: null },
        intervalMs: 10_000, timeoutMs: 1_000, failureThreshold: 3, startPeriodMs: 0,
      });
    });
    it("reads exec commands with templates, notify, and every timing", () => {
      const check = configOf(minimal("      health_check: {exec: [/bin/check, '{{.Pid}}', '--id={{ .WorkerId }}'], interval: 2s, timeout: 500ms, failure_threshold: 1, start_period: 30s}\n")).pools[0]?.healthCheck;
      expect(check).toEqual({ probe: { kind: "exec", argv: ["/bin/check", "{{.Pid}}", "--id={{ .WorkerId }}"] }, intervalMs: 2_000, timeoutMs: 500, failureThreshold: 1, startPeriodMs: 30_000 });
      expect(configOf(minimal("      health_check: {notify: true}\n")).pools[0]?.healthCheck?.probe).toEqual({ kind: "notify" });
    });
    it("rejects anything but exactly one kind, naming the field", () => {
      expect(errorsOf(minimal("      health_check: {interval: 1s}\n"))).toEqual([expect.stringMatching(/^supervisor\.workers\[0\]\.health_check: needs one of http, exec or notify: true/)]);
      expect(errorsOf(minimal("      health_check: {notify: false}\n"))[0]).toMatch(/needs one of http, exec or notify: true/);
      expect(errorsOf(minimal("      health_check: {notify: true, exec: [x]}\n"))[0]).toMatch(/health_check\.notify: only one of http, exec or notify may be set, found exec and notify/);
      expect(errorsOf(minimal("      health_check: {exec: []}\n"))[0]).toMatch(/health_check\.exec: must name the command to run/);
      expect(errorsOf(minimal("      health_check: {exec: [check, '{{.Name}}']}\n"))[0]).toMatch(/health_check\.exec\[1\]: only \{\{\.Pid\}\}, \{\{\.WorkerId\}\}, \{\{\.Port\}\} are supported/);
      expect(errorsOf(minimal("      health_check: {htpp: {path: /x}}\n"))).toContainEqual(expect.stringMatching(/health_check\.htpp: unknown key; did you mean "http"\?/));
    });
    it("needs start_port for an HTTP check in supervisor mode, and ports of their own", () => {
      expect(errorsOf(minimal("      health_check: {http: {path: /healthz}}\n"))[0]).toMatch(/health_check\.http: needs start_port in supervisor mode/);
      expect(configOf(minimal("      health_check: {http: {path: /healthz, start_port: 9200, host: '::1'}}\n")).pools[0]?.healthCheck?.probe).toEqual({ kind: "http", path: "/healthz", host: "::1", startPort: 9200 });
      expect(errorsOf(minimal("      health_check: {http: {path: /healthz, start_port: 9000}}\n"))[0]).toMatch(/health_check\.http\.start_port: health check ports 9000-9002 overlap the admin port 9000/);
      expect(errorsOf(minimal("      health_check: {http: {path: healthz, start_port: 9200}}\n"))[0]).toMatch(/health_check\.http\.path: must start with '\/'/);
      expect(errorsOf(minimal("      health_check: {http: {path: /health check, start_port: 9200}}\n"))[0]).toMatch(/health_check\.http\.path: must be printable ASCII without spaces \(percent-encode the rest, e\.g\. %20\)/);
      expect(errorsOf(minimal("      health_check: {http: {path: /santé, start_port: 9200}}\n"))[0]).toMatch(/health_check\.http\.path: must be printable ASCII/);
      expect(errorsOf(minimal("      health_check: {http: {path: /h, start_port: 9200, host: 'localhost:80'}}\n"))[0]).toMatch(/health_check\.http\.host: must be an IP address or a host name without a port \(the port is the worker's own, or start_port \+ i\), got "localhost:80"/);
      expect(configOf(minimal("      health_check: {http: {path: /h, start_port: 9200, host: '[::1]'}}\n")).pools[0]?.healthCheck?.probe).toMatchObject({ host: "::1" });
      expect(configOf(minimal("      health_check: {http: {path: /h, start_port: 9200, host: app.local}}\n")).pools[0]?.healthCheck?.probe).toMatchObject({ host: "app.local" });
      expect(errorsOf(minimal("      health_check: {exec: [check, '{{.Port}}']}\n"))[0]).toMatch(/health_check\.exec\[1\]: uses \{\{\.Port\}\}, but workers have no port of their own in supervisor mode/);
    });
    it("keeps one check in flight: timeout at most interval, interval at least 100ms, failure_threshold 1 to 100", () => {
      expect(errorsOf(minimal("      health_check: {notify: true, interval: 1s, timeout: 2s}\n"))[0]).toMatch(/health_check\.timeout: timeout \(2000 ms\) is longer than the interval \(1000 ms\)/);
      expect(errorsOf(minimal("      health_check: {notify: true, interval: 500ms}\n"))[0]).toMatch(/health_check\.interval: the default timeout \(1000 ms\) is longer than the interval/);
      expect(errorsOf(minimal("      health_check: {notify: true, interval: 10ms, timeout: 5ms}\n"))[0]).toMatch(/health_check\.interval: must be at least 100ms/);
      expect(errorsOf(minimal("      health_check: {notify: true, failure_threshold: 0}\n"))[0]).toMatch(/failure_threshold: must be an integer from 1 to 100/);
      expect(errorsOf(minimal("      health_check: {notify: true, interval: 0s}\n"))).toEqual([expect.stringMatching(/health_check\.interval: must be a positive duration/)]);
    });
    it("reads max_unavailable as a count or a share of replicas, at least 1", () => {
      expect(configOf(minimal("      max_unavailable: 2\n")).pools[0]?.maxUnavailable).toBe(2);
      expect(configOf(minimal("      max_unavailable: 50%\n")).pools[0]?.maxUnavailable).toBe(1);
      expect(configOf(minimal("      max_unavailable: 10%\n")).pools[0]?.maxUnavailable).toBe(1);
      expect(configOf(minimal("      max_unavailable: 100%\n")).pools[0]?.maxUnavailable).toBe(2);
      expect(errorsOf(minimal("      max_unavailable: 0\n"))[0]).toMatch(/max_unavailable: must be a positive number of workers or a percentage from 1% to 100%, got 0/);
      expect(errorsOf(minimal("      max_unavailable: 150%\n"))[0]).toMatch(/max_unavailable: must be a positive number/);
      const loaded = load(minimal("      max_unavailable: 5\n"));
      expect(loaded.ok && loaded.warnings).toContainEqual(expect.stringMatching(/max_unavailable: is more than replicas \(2\)/));
    });
  });

  describe("debug", () => {
    const proxy = "      server:\n        port_arg: {name: --port, value_template: '{{.Port}}', start_port: 9100}\n        health_check_path: /health\n";
    it("reads named commands with templates, keeping numbers as written", () => {
      const debug = configOf(minimal("      debug:\n        stack: [eu-stack, -p, '{{.Pid}}']\n        py-spy.dump_2: [py-spy, dump, --pid, '{{ .Pid }}', --rate, 1.50]\n        id: [echo, '{{.WorkerId}}']\n")).pools[0]?.debug;
      expect(debug).toEqual({ stack: ["eu-stack", "-p", "{{.Pid}}"], "py-spy.dump_2": ["py-spy", "dump", "--pid", "{{ .Pid }}", "--rate", "1.50"], id: ["echo", "{{.WorkerId}}"] });
      expect(configOf(minimal("      debug:\n")).pools[0]?.debug).toEqual({});
      expect(configOf(minimal(`      debug: {conns: [ss, -tnp, 'sport = :{{.Port}}']}\n${proxy}`)).pools[0]?.debug).toEqual({ conns: ["ss", "-tnp", "sport = :{{.Port}}"] });
    });
    it("names the command and entry that is wrong, one line each, all at once", () => {
      expect(errorsOf(minimal("      debug: {proc: [cat, /proc/self/status]}\n"))).toEqual([
        'supervisor.workers[0].debug.proc: "proc" is built in (a /proc snapshot of the worker\'s process group); give this command another name (line 8)',
      ]);
      expect(errorsOf(minimal("      debug:\n        'bad name': [x]\n        stack: []\n        gdb: [gdb, '{{.Name}}']\n        ok: [x, 5, [1]]\n        s: 'eu-stack -p 1'\n"))).toEqual([
        expect.stringMatching(/^supervisor\.workers\[0\]\.debug\.bad name: a debug command's name must start with a letter or digit, contain only letters, digits, '_', '\.' and '-', and have at most 32 characters, got "bad name" \(line 9\)$/),
        expect.stringMatching(/^supervisor\.workers\[0\]\.debug\.stack: must name the command to run, e\.g\. \[eu-stack, -p, '\{\{\.Pid\}\}'\] \(line 10\)$/),
        expect.stringMatching(/^supervisor\.workers\[0\]\.debug\.gdb\[1\]: only \{\{\.Pid\}\}, \{\{\.WorkerId\}\}, \{\{\.Port\}\} are supported in the template, found "\{\{\.Name\}\}" in "\{\{\.Name\}\}" \(line 11\)$/),
        "supervisor.workers[0].debug.ok[2]: must be a string, got a list or mapping (line 12)",
        expect.stringMatching(/^supervisor\.workers\[0\]\.debug\.s: must be a command as a list of strings/),
      ]);
      expect(errorsOf(minimal("      debug: [eu-stack]\n"))[0]).toMatch(/^supervisor\.workers\[0\]\.debug: must be a mapping of names to commands/);
      expect(errorsOf(minimal("      debug: {x: ['']}\n"))[0]).toMatch(/debug\.x\[0\]: must name the executable/);
      expect(errorsOf(minimal(`      debug: {${"x".repeat(33)}: [x]}\n`))[0]).toMatch(/at most 32 characters/);
    });
    it("bounds the number of commands and their length", () => {
      const many = Array.from({ length: 33 }, (_, i) => `c${i}: [x]`).join(", ");
      expect(errorsOf(minimal(`      debug: {${many}}\n`))[0]).toMatch(/^supervisor\.workers\[0\]\.debug: must have at most 32 commands, got 33/);
      expect(errorsOf(minimal(`      debug: {long: [${Array.from({ length: 257 }, () => "a").join(", ")}]}\n`))[0]).toMatch(/debug\.long: must have at most 256 entries, got 257/);
      expect(errorsOf(minimal(`      debug: {long: [x, ${"a".repeat(4097)}]}\n`))[0]).toMatch(/debug\.long\[1\]: must be at most 4096 characters, got 4097/);
    });
    it("refuses {{.Port}} in supervisor mode, where workers have no port of their own", () => {
      expect(errorsOf(minimal("      debug: {conns: [ss, -tn, 'sport = :{{.Port}}']}\n"))).toEqual([
        "supervisor.workers[0].debug.conns[2]: uses {{.Port}}, but workers have no port of their own in supervisor mode (only in proxy mode, with server) (line 8)",
      ]);
    });
  });

  it("accepts memory sizes with units and plain bytes", () => {
    expect(configOf(minimal("      limits: {memory: 512MiB}\n")).pools[0]?.limits.memoryBytes).toBe(512 * 1024 ** 2);
    expect(configOf(minimal("      limits: {memory: 1000}\n")).pools[0]?.limits.memoryBytes).toBe(1000);
    expect(errorsOf(minimal("      limits: {memory: lots}\n"))[0]).toMatch(/limits\.memory: must be a size/);
  });

  it("supports YAML anchors and merge keys as Go's yaml.v3 does, with a bound on aliases", () => {
    const text = "base: &base\n  replicas: 2\n  exec: ./s\n";
    expect(errorsOf(text)).toContainEqual(expect.stringMatching(/^base: unknown key/));
    const merged = configOf("supervisor:\n  workers:\n    - &w {name: a, replicas: 2, exec: ./s}\n    - <<: *w\n      name: b\n");
    expect(merged.pools.map((pool) => pool.name)).toEqual(["a", "b"]);
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
    expect(errorsOf(bomb)[0]).toMatch(/^invalid YAML/);
  });

  it("never throws: any YAML text yields a config or error lines", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const result = load(text);
        expect(result.ok ? result.config.pools.length > 0 : result.errors.length > 0).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("never throws on random values in every field", () => {
    const anyValue = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer({ min: -70_000, max: 70_000 }),
      fc.double({ noNaN: false }),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
      fc.constantFrom("1s", "500ms", "{{.Port}}", "ROUND_ROBIN", "/health", "15", "-1s"),
    );
    const pool = fc.record(
      {
        name: anyValue, replicas: anyValue, exec: anyValue, args: anyValue, signal_timeout: anyValue, max_restarts: anyValue,
        startup_wait_time: anyValue, desired_healthy_percentage: anyValue,
        limits: fc.oneof(anyValue, fc.record({ lifespan: anyValue, jitter_ratio: anyValue, memory: anyValue }, { requiredKeys: [] })),
        server: fc.oneof(anyValue, fc.record({
          port_arg: fc.oneof(anyValue, fc.record({ name: anyValue, value_template: anyValue, start_port: anyValue }, { requiredKeys: [] })),
          signal_timeout: anyValue, health_check_path: anyValue, load_balancer_algorithm: anyValue, proxy_config_path: anyValue,
          admin_port: anyValue, listener_port: anyValue,
        }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    );
    const config = fc.record({ admin: fc.oneof(anyValue, fc.record({ port: anyValue })), supervisor: fc.oneof(anyValue, fc.record({ workers: fc.oneof(anyValue, fc.array(pool, { maxLength: 3 })) })) }, { requiredKeys: [] });
    fc.assert(
      fc.property(config, (value) => {
        const result = load(stringify(value));
        if (!result.ok) {
          expect(result.errors.length).toBeGreaterThan(0);
          for (const line of result.errors) expect(line).not.toContain("\n");
        }
      }),
      { numRuns: 1000 },
    );
  });
});
