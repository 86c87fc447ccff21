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
      server: null,
    });
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
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[0\]\.server\.port_arg\.start_port: worker ports 9090-9092 overlap the admin port 9091/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.server\.port_arg\.start_port: worker ports 9092-9094 overlap worker ports 9090-9092/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.server\.listener_port: the default proxy listener port 10000 overlaps the default proxy listener port 10000/));
    expect(errors).toContainEqual(expect.stringMatching(/^supervisor\.workers\[1\]\.server\.proxy_config_path: folder "envoy" is also used by supervisor\.workers\[0\]/));
  });

  it("rejects worker ports that run past 65535", () => {
    const errors = errorsOf(
      minimal("      server:\n        port_arg: {name: -p, value_template: '{{.Port}}', start_port: 65535}\n        health_check_path: /h\n"),
    );
    expect(errors).toEqual([expect.stringMatching(/start_port 65535 \+ 2 replicas needs ports up to 65536, past 65535/)]);
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
