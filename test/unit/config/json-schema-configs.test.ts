// Whole configs under both judges: the JSON Schema (ajv, as an editor would check the file) and the
// loader (loadConfigText, what `monoceros -k` runs). Every example and every README config must pass
// both; invalid configs must fail both, at the same key; valid edge cases must pass both; and what
// only the loader can check (rules across keys) is listed, and checked to still be so.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMA_FILE } from "../../../src/config/json-schema.js";
import { loadConfigText } from "../../../src/config/load.js";
import { newAjv, schemaErrors, yamlValue } from "../../support/config-schema.js";
import { configJsonSchema } from "../../../src/config/json-schema.js";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "../../..");
const MODELINE = /^# yaml-language-server: \$schema=(\S+)\n/;

const pool = (lines: string) => `supervisor:\n  workers:\n    - name: web\n      replicas: 2\n      exec: ./server\n      max_restarts: 3\n${lines}`;
const proxyPool = (lines: string) =>
  pool(`      server:\n        port_arg: {name: --port, value_template: "{{.Port}}", start_port: 9090}\n        health_check_path: /health\n${lines}`);

function loaderErrors(text: string): string[] {
  const loaded = loadConfigText(text);
  return loaded.ok ? [] : loaded.errors;
}

/** `supervisor.workers[0].replicas: must be…` → `/supervisor/workers/0/replicas` */
function pointerOf(error: string): string {
  const path = error.slice(0, error.indexOf(": "));
  return `/${path.replace(/\[(\d+)\]/g, ".$1").split(".").join("/")}`;
}

const validate = newAjv().compile(configJsonSchema());

/** Where the schema's errors are: the value's own pointer, or the key it names (unknown, missing, a bad mapping key). */
function schemaPointers(value: unknown): string[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((error) => {
    const params = error.params as { additionalProperty?: string; missingProperty?: string; propertyName?: string };
    const key = params.additionalProperty ?? params.missingProperty ?? params.propertyName;
    return key === undefined ? error.instancePath : `${error.instancePath}/${key}`;
  });
}

// --- the repository's configs ---------------------------------------------------------------------

const exampleFiles = [
  ...readdirSync(join(ROOT, "examples")).filter((name) => name.endsWith(".yaml")).map((name) => `examples/${name}`),
  "deploy/config.yaml",
];

/** README blocks fenced as yaml: configs are those with a top-level `supervisor:`; the rest are excerpts of one. */
function readmeYamlBlocks(): { line: number; text: string; config: boolean }[] {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const blocks: { line: number; text: string; config: boolean }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== "```yaml") continue;
    const end = lines.findIndex((line, at) => at > i && line.trim() === "```");
    const text = `${lines.slice(i + 1, end).join("\n")}\n`;
    blocks.push({ line: i + 2, text, config: /^supervisor:/m.test(text) });
    i = end;
  }
  return blocks;
}

describe("the repository's configs pass the schema and the loader", () => {
  it.each(exampleFiles)("%s starts with the yaml-language-server modeline pointing at the schema file", (file) => {
    const text = readFileSync(join(ROOT, file), "utf8");
    const schemaPath = MODELINE.exec(text)?.[1];
    expect(schemaPath, "first line: # yaml-language-server: $schema=<path>").toBeDefined();
    expect(resolve(ROOT, dirname(file), schemaPath as string)).toBe(join(ROOT, SCHEMA_FILE));
  });

  it.each(exampleFiles)("%s", (file) => {
    const text = readFileSync(join(ROOT, file), "utf8");
    expect(loaderErrors(text)).toEqual([]);
    expect(schemaErrors(yamlValue(text))).toEqual([]);
  });

  it("the README's yaml blocks: every config passes both (excerpts of a pool are skipped)", () => {
    const blocks = readmeYamlBlocks();
    const configs = blocks.filter((block) => block.config);
    expect(configs.length, "README config snippets found").toBeGreaterThanOrEqual(2);
    for (const block of configs) {
      expect(loaderErrors(block.text), `README.md line ${block.line}`).toEqual([]);
      expect(schemaErrors(yamlValue(block.text)), `README.md line ${block.line}`).toEqual([]);
    }
  });
});

// --- invalid configs: both reject, at the same key ------------------------------------------------

const INVALID: [string, string][] = [
  ["an unknown key in a pool", pool("      max_restart: 3\n")],
  ["an unknown top-level key", `workers: []\n${pool("")}`],
  ["replicas 0", pool("").replace("replicas: 2", "replicas: 0")],
  ["negative replicas", pool("").replace("replicas: 2", "replicas: -1")],
  ["replicas as a word (wrong type)", pool("").replace("replicas: 2", "replicas: two")],
  ["replicas not whole", pool("").replace("replicas: 2", "replicas: 1.5")],
  ["replicas over 4096", pool("").replace("replicas: 2", "replicas: 4097")],
  ["a missing exec (required key)", pool("").replace("      exec: ./server\n", "")],
  ["a missing supervisor", "admin:\n  port: 9000\n"],
  ["no pool", "supervisor:\n  workers: []\n"],
  ["a bad enum: stderr_level", pool("      stderr_level: verbose\n")],
  ["a bad enum: server.proxy", proxyPool("        proxy: nginx\n")],
  ["a bad enum: load_balancer_algorithm", proxyPool("        load_balancer_algorithm: FASTEST\n")],
  ["a duration without a unit", pool("      signal_timeout: 15\n")],
  ["a duration in words", pool("      signal_timeout: 15 seconds\n")],
  ["a zero duration where it must be positive", pool("      ready_timeout: 0s\n")],
  ["a negative duration", pool("      startup_wait_time: -1s\n")],
  ["a size in words", pool("      limits: {memory: 1 gigabyte}\n")],
  ["a negative size", pool("      limits: {memory: -5}\n")],
  ["jitter_ratio over 1", pool("      limits: {jitter_ratio: 1.5}\n")],
  ["max_surge over 100%", pool("      max_surge: 150%\n")],
  ["max_unavailable 0", pool("      max_unavailable: 0\n")],
  ["a host name in listen", pool("      listen: [localhost:8080]\n")],
  ["a port over 65535 in listen", pool('      listen: ["0.0.0.0:70000"]\n')],
  ["an http check path without /", pool("      health_check: {http: {path: health, start_port: 9100}}\n")],
  ["an empty exec check", pool("      health_check: {exec: []}\n")],
  ["an exec check with an unknown template action", pool('      health_check: {exec: [check, "{{.Name}}"]}\n')],
  ["a check host with a port", pool('      health_check: {http: {path: /h, start_port: 9100, host: "127.0.0.1:8080"}}\n')],
  ["failure_threshold 0", pool("      health_check: {notify: true, failure_threshold: 0}\n")],
  ["a value_template without {{.Port}}", pool('      server:\n        port_arg: {name: --port, value_template: "{{.Pid}}", start_port: 9090}\n        health_check_path: /health\n')],
  ["a server without health_check_path", pool('      server:\n        port_arg: {name: --port, value_template: "{{.Port}}", start_port: 9090}\n')],
  ["a debug command named proc", pool("      debug: {proc: [cat, /proc/self/status]}\n")],
  ["an empty debug command", pool("      debug: {stack: []}\n")],
  ["a pool name with a space", pool("").replace("name: web", "name: web server")],
  ["admin.port over 65535", `admin:\n  port: 70000\n${pool("")}`],
  ["admin.host dotted numbers that are no IPv4 address", `admin:\n  host: 999.1.1.1\n${pool("")}`],
  ["an env name starting with a digit", pool("      env: {1BAD: x}\n")],
  ["an env name Monoceros sets", pool("      env: {MULTIPROCESS_WORKER_ID: x}\n")],
  ["a user name with a space", pool('      user: "bad user"\n')],
  ["args not a list", pool("      args: not a list\n")],
  ["a mapping in args", pool("      args: [{a: 1}]\n")],
  ["a zero restart window", pool("      restart_policy: {window: 0s}\n")],
  ["reuse_port as a word", pool("      reuse_port: yes\n")],
];

describe("invalid configs: the schema and the loader both reject them, at the same key", () => {
  it("has a sample of at least 15", () => expect(INVALID.length).toBeGreaterThanOrEqual(15));

  it.each(INVALID)("%s", (_name, text) => {
    const errors = loaderErrors(text);
    expect(errors.length, "the loader rejects it").toBeGreaterThan(0);
    const pointers = schemaPointers(yamlValue(text));
    expect(pointers.length, "the schema rejects it").toBeGreaterThan(0);
    for (const error of errors) {
      const at = pointerOf(error);
      expect(pointers.some((p) => p === at || p.startsWith(`${at}/`) || at.startsWith(`${p}/`)), `${error}\nschema: ${pointers.join(", ")}`).toBe(true);
    }
  });
});

// --- valid edge cases: both accept ----------------------------------------------------------------

const VALID: [string, string][] = [
  ["durations: bare 0, fractions, compound, micro, a leading + or .", pool('      signal_timeout: 0\n      startup_wait_time: .5s\n      ready_timeout: 1h30m\n      restart_policy: {min_uptime: 1.5s, backoff_initial: 500us, backoff_max: +5s, window: 10m}\n')],
  ["sizes: a number of bytes", pool("      limits: {memory: 1073741824}\n")],
  ["sizes: binary, decimal, any case, with a space", pool("      limits: {memory: 64 mib}\n")],
  ["sizes: a fraction of a unit", pool("      limits: {memory: 1.5G, lifespan: 4h, jitter_ratio: 0.25}\n")],
  ["max_surge and max_unavailable as percentages", pool("      max_surge: 25%\n      max_unavailable: 50%\n")],
  ["max_surge 0 and max_unavailable as a count", pool("      max_surge: 0\n      max_unavailable: 2\n")],
  ["max_surge 0%", pool("      max_surge: 0%\n")],
  ["a load balancer algorithm in lower case", proxyPool("        load_balancer_algorithm: least_request\n")],
  ["numbers and booleans in args (kept as written)", pool('      args: [5, 1.50, true, "{{.WorkerId}}", "{{.Other}}"]\n')],
  ["a numeric pool name", pool("").replace("name: web", "name: 123")],
  ["listen addresses of each form", pool('      listen: [":8080", "[::]:8081", "127.0.0.1:8082"]\n')],
  ["check hosts: bracketed IPv6, a host name", pool("      health_check: {http: {path: /h, start_port: 9100, host: '[::1]'}}\n")],
  ["check host: a host name", pool("      health_check: {http: {path: /h, start_port: 9100, host: localhost}, interval: 100ms, timeout: 100ms}\n")],
  ["admin.host an IPv6 address, an empty admin", `admin:\n  host: "::"\n${pool("")}`],
  ["an empty admin", `admin:\n${pool("")}`],
  ["empty values for optional keys", pool("      signal_timeout:\n      limits:\n      args:\n      env:\n")],
  ["anchors and merge keys", "supervisor:\n  workers:\n    - &base\n      name: a\n      replicas: 2\n      exec: ./server\n      max_restarts: 1\n    - <<: *base\n      name: b\n"],
  ["debug commands with templates", proxyPool('      debug: {stack: [eu-stack, -p, "{{.Pid}}"], port: [curl, "localhost:{{ .Port }}/{{.WorkerId}}"]}\n')],
  ["env values as numbers and booleans", pool("      env: {PORT: 8080, DEBUG: true, NAME: web, _X: ''}\n")],
  ["user and group by id and by name in any case", pool("      user: 1000\n      group: Staff\n      cwd: /srv/app\n")],
  ["unlimited restarts", pool("").replace("max_restarts: 3", "max_restarts: -1")],
  ["no port flag, the port in args", proxyPool("").replace("name: --port", 'name: ""').replace("      max_restarts: 3\n", '      max_restarts: 3\n      args: [-m, http.server, "{{.Port}}"]\n')],
  ["notify checks every 100ms", pool("      health_check: {notify: true, interval: 100ms, timeout: 50ms, start_period: 0}\n")],
  ["a duration of 0 written -0s", pool("      startup_wait_time: -0s\n")],
];

describe("valid edge cases: the schema and the loader both accept them", () => {
  it.each(VALID)("%s", (_name, text) => {
    expect(loaderErrors(text)).toEqual([]);
    expect(schemaErrors(yamlValue(text))).toEqual([]);
  });
});

// --- what only the loader checks ------------------------------------------------------------------

/**
 * Configs the loader (`monoceros -k`) rejects and the schema accepts: rules across keys, which
 * JSON Schema could only restate with if/then chains no editor explains well, and the few field
 * rules listed in test/unit/config/json-schema.test.ts. The README lists the same ("The config in an editor").
 */
const LOADER_ONLY: [string, string, string][] = [
  ["duplicate pool names", `${pool("")}    - {name: web, replicas: 1, exec: ./b, max_restarts: 1}\n`, "duplicate pool name"],
  ["ports that overlap", `admin:\n  port: 10000\n${proxyPool("")}`, "overlap"],
  ["a health check with none of http, exec, notify", pool("      health_check: {interval: 5s}\n"), "needs one of http, exec or notify"],
  ["a health check with two kinds", pool("      health_check: {notify: true, exec: [check]}\n"), "only one of http, exec or notify"],
  ["an http check without start_port in supervisor mode", pool("      health_check: {http: {path: /health}}\n"), "needs start_port in supervisor mode"],
  ["{{.Port}} in an exec check in supervisor mode", pool('      health_check: {exec: [check, "{{.Port}}"]}\n'), "uses {{.Port}}"],
  ["{{.Port}} in args in supervisor mode", pool('      args: ["--port={{.Port}}"]\n'), "uses {{.Port}}"],
  ["no port flag and no {{.Port}} in args", proxyPool("").replace("name: --port", 'name: ""'), "args must hold {{.Port}}"],
  ["a check timeout longer than its interval", pool("      health_check: {notify: true, interval: 1s, timeout: 2s}\n"), "longer than the interval"],
  ["a check interval under 100ms", pool("      health_check: {notify: true, interval: 50ms, timeout: 10ms}\n"), "must be at least 100ms"],
  ["listen in proxy mode", proxyPool("").replace("      server:", '      listen: [":8080"]\n      server:'), "is for supervisor mode"],
  [
    "two proxy pools in one proxy_config_path",
    `${proxyPool("")}    - name: api\n      replicas: 1\n      exec: ./api\n      max_restarts: 1\n      server:\n        port_arg: {name: --port, value_template: "{{.Port}}", start_port: 9190}\n        health_check_path: /health\n        listener_port: 10001\n`,
    "would overwrite each other's proxy files",
  ],
  ["a HAProxy folder too long for its socket", proxyPool(`        proxy: haproxy\n        proxy_config_path: /${"x".repeat(90)}\n`), "over HAProxy's limit"],
  ["ready_timeout not longer than min_uptime without a check", pool("      ready_timeout: 1s\n"), "must be longer than restart_policy.min_uptime"],
  ["worker ports past 65535", proxyPool("").replace("start_port: 9090", "start_port: 65535"), "past 65535"],
  ["more than 4096 worker slots in all", pool("").replace("replicas: 2", "replicas: 4096"), "worker slots in all"],
  ["a duration past Go's limit", pool("      signal_timeout: 3000000h\n"), "is too long"],
  ["a number where a text key's rules apply", pool("").replace("name: web", "name: -1"), "must start with a letter or digit"],
  ["a control socket path over 107 bytes in fewer characters", `admin:\n  control_socket: /${"\u00e9".repeat(60)}\n${pool("")}`, "at most 107 bytes"],
];

describe("what only the loader checks: it rejects these, the schema accepts them", () => {
  it.each(LOADER_ONLY)("%s", (_name, text, because) => {
    expect(loaderErrors(text).join("\n")).toContain(because);
    expect(schemaErrors(yamlValue(text)), "the schema now rejects it too: drop it from LOADER_ONLY and from the README's list").toEqual([]);
  });
});
