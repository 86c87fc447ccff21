// The JSON Schema editors read (`monoceros schema`): generated from the loader's zod schema,
// every key documented, the shipped file current, and key by key the same verdict as the loader
// on a corpus of values (test/unit/config/json-schema-configs.test.ts does the same for whole configs).
import { readFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { configJsonSchema, configJsonSchemaText, SCHEMA_FILE, schemaKeyPaths } from "../../../src/config/json-schema.js";
import { caselessPattern, IP_PATTERNS, templatePattern, VALUE_RULES } from "../../../src/config/json-schema-values.js";
import { KEY_DOCS } from "../../../src/config/key-docs.js";
import { configSchema, STRING_FIELD_PATHS } from "../../../src/config/schema.js";
import { parseTemplate } from "../../../src/config/port-template.js";
import { keySchema, newAjv } from "../../support/config-schema.js";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "../../..");
const schema = configJsonSchema();
const keys = schemaKeyPaths(schema);
/** Keys proper: not a list's entries or a mapping's values. */
const propertyKeys = keys.map((k) => k.path).filter((path) => !path.endsWith("[]") && !path.endsWith(".*"));

describe("the config's JSON Schema", () => {
  it("describes every key of the schema (a key added to schema.ts needs an entry in key-docs.ts)", () => {
    expect(propertyKeys.length).toBeGreaterThan(50);
    expect(keys.filter((k) => !k.described && !k.path.endsWith("[]") && !k.path.endsWith(".*")).map((k) => k.path)).toEqual([]);
  });

  it("documents no key the schema lacks, and names a key's default unless it is required", () => {
    const known = new Set(keys.map((k) => k.path));
    expect(Object.keys(KEY_DOCS).filter((path) => !known.has(path))).toEqual([]);
    expect(Object.keys(VALUE_RULES).filter((path) => !known.has(path))).toEqual([]);
    for (const path of propertyKeys) {
      const description = keySchema(schema, path).description as string;
      expect(description, path).toMatch(/ (Required|Default: .+)\.( Unit: .+\.)?$/);
    }
  });

  it("is a valid draft-07 schema that ajv compiles in strict mode", () => {
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
    const ajv = newAjv();
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
  });

  it(`is what ${SCHEMA_FILE} holds (after changing the config's keys, run make schema)`, () => {
    expect(readFileSync(join(ROOT, SCHEMA_FILE), "utf8") === configJsonSchemaText(), `${SCHEMA_FILE} is stale: run make schema`).toBe(true);
  });

  it("keeps the pattern of a case-insensitive zod regex case-insensitive", () => {
    expect(caselessPattern("^([a-z_][a-z0-9_.-]*\\$?|\\d+)$")).toBe("^([a-zA-Z_][a-zA-Z0-9_.-]*\\$?|\\d+)$");
    expect(caselessPattern("^ab\\x7e\\u00e9[^c]$")).toBe("^[aA][bB]\\x7e\\u00e9[^cC]$");
    const user = keySchema(schema, "supervisor.workers[].user");
    expect(newAjv().compile(user)("Alice")).toBe(true);
  });
});

describe("the schema's patterns restate the loader's parsers", () => {
  const ipv4 = new RegExp(IP_PATTERNS.ipv4, "u");
  const ipv6 = new RegExp(IP_PATTERNS.ipv6, "u");
  const addresses = [
    "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "::", "::1", "1::", ":::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
    "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "fe80::1%eth0", "fe80::1%", "fe80::1%a.b-c:d", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "::1.2.3", "[::1]", "",
  ];

  it("IP addresses: the same verdict as Node's net.isIPv4 and net.isIPv6", () => {
    for (const address of addresses) {
      expect(ipv4.test(address), address).toBe(isIPv4(address));
      expect(ipv6.test(address), address).toBe(isIPv6(address));
    }
    const ipish = fc.stringMatching(/^[0-9a-fA-F:.%]{0,40}$/);
    fc.assert(fc.property(ipish, (text) => ipv4.test(text) === isIPv4(text) && ipv6.test(text) === isIPv6(text)), { numRuns: 5000 });
    fc.assert(fc.property(fc.ipV6(), (text) => ipv6.test(text)), { numRuns: 2000 });
  });

  it("templates: the same verdict as port-template.ts", () => {
    const fields = ["Pid", "WorkerId", "Port"] as const;
    const template = fc.array(fc.constantFrom("{{", "}}", "{", "}", ".Port", ".Pid", ".WorkerId", ".Foo", " ", "\n", "x", "--port=", "{{.Port}}", "{{ .Pid }}"), { maxLength: 8 }).map((parts) => parts.join(""));
    const anyOf = new RegExp(templatePattern(fields, false), "u");
    const port = new RegExp(templatePattern(["Port"], true), "u");
    fc.assert(
      fc.property(template, (text) => {
        const parsed = parseTemplate(text, [...fields]);
        const parsedPort = parseTemplate(text, ["Port"]);
        return anyOf.test(text) === parsed.ok && port.test(text) === (parsedPort.ok && parsedPort.fields.has("Port"));
      }),
      { numRuns: 5000 },
    );
  });
});

// --- key by key: the schema and the loader on the same values ------------------------------------

const SCALARS: unknown[] = [
  null, true, false, 0, -0, 1, -1, 2, 3, 5, 15, 50, 100, 101, 0.5, 1.5, 1024, 4096, 4097, 10000, 65535, 65536, 1e21, 4294967294, 4294967295, 9007199254740992,
  "", " ", "x", "a b", "0", "00", "0.0", "1", "05", "15", "-1", "1.5", "4096", "4097", "0004096",
  // durations
  "0s", "-0s", "+0", "10s", "+5s", "-5s", "1h30m", "1.5s", "1.s", ".5s", "500us", "1\u00b5s", "1\u03bcs", "1ns", "100ms", "1m5s", " 5s ", "5S", "5 s", "5sec", "1h1", "1e3s", "1hm", "3000000h", "2562047h",
  // sizes
  "512MiB", "1Gi", "800M", "1.5G", "64 mib", "1kb", "7B", "1PB", "1e6", "-5", "1 gigabyte",
  // shares
  "25%", "0%", "1%", "001%", "100%", "101%", "1000%", " 5 ",
  // templates
  "{{.Port}}", "--port={{.Port}}", "{{ .Port }}", "127.0.0.1:{{.Port}}", "{{.port}}", "{{.Pid}}", "{{.WorkerId}}", "{{.Foo}}", "{{", "}}", "a{b", "{{{.Port}}", "{{.Port}}}", "{{.Port", "x{{.Port}}y{{.Pid}}",
  // addresses and hosts
  "0.0.0.0:8080", ":8080", "[::]:8080", "[::1]:0", "127.0.0.1:65535", "127.0.0.1:65536", "127.0.0.1:08080", "localhost:8080", "::1:8080", "[127.0.0.1]:80", "[fe80::1%eth0]:80",
  "127.0.0.1", "::1", "[::1]", "[1.2.3.4]", "localhost", "my-host.example", "-bad", "host_1", "999.1.1.1",
  // names, users, variables
  "web", "web-1", "-web", "web.v2", "proc", "stack", "a".repeat(33), "a".repeat(65), "MULTIPROCESS_WORKER_ID", "MONOCEROS_X", "LISTEN_FDS", "PATH", "_x", "1BAD", "alice", "Alice", "www-data", "bob$", "1000",
  // enums, paths, files
  "envoy", "haproxy", "nginx", "ROUND_ROBIN", "least_request", "Random", "FASTEST", "debug", "info", "warn", "error", "ERROR", "/health", "health", "/a b", "/caf\u00e9", "./envoy", "/usr/bin/env",
  // lengths
  `/${"a".repeat(106)}`, `/${"a".repeat(107)}`, "\u00e9".repeat(60),
];

/** Lists and mappings built from the scalars, to reach list entries, mapping values and mapping keys. */
function corpus(): unknown[] {
  const strings = SCALARS.filter((s): s is string => typeof s === "string");
  const defaults = Object.values(KEY_DOCS).flatMap((doc) => (doc.default === undefined ? [] : [doc.default]));
  return [
    ...SCALARS,
    ...defaults,
    [], {}, [[]], [{}],
    ...SCALARS.map((s) => [s]),
    ["eu-stack", "-p", "{{.Pid}}"], [" ", "x"], ["x", " "], ["x", "{{.Foo}}"], Array.from({ length: 17 }, (_, i) => `:${8000 + i}`), Array.from({ length: 16 }, (_, i) => `:${8000 + i}`),
    ...SCALARS.map((s) => ({ a: s })),
    ...SCALARS.map((s) => ({ stack: [s] })),
    ...strings.map((s) => ({ [s]: "x" })),
    ...strings.map((s) => ({ [s]: ["x"] })),
    Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`c${i}`, ["x"]])),
    { stack: ["x", 5] }, { stack: [5] }, { stack: Array.from({ length: 257 }, () => "x") }, { stack: ["a".repeat(4097)] }, { A: "a".repeat(32769) },
  ];
}

/** Where the loader reads a scalar's source text (STRING_FIELD_PATHS), relative to each key. */
function textPositions(path: string): string[][] {
  const loaderPath = path.replace(/\[\]/g, ".*").split(".");
  return STRING_FIELD_PATHS.filter((p) => p.length >= loaderPath.length && loaderPath.every((s, i) => s === p[i])).map((p) => p.slice(loaderPath.length));
}

/** What the loader hands zod for this value: numbers and booleans at text positions as text. */
function asLoaderReadsIt(value: unknown, positions: string[][]): { value: unknown; keptAsText: boolean } {
  let keptAsText = false;
  const convert = (node: unknown, rest: string[]): unknown => {
    if (rest.length === 0) {
      if (typeof node === "number" || typeof node === "boolean") {
        keptAsText = true;
        return String(node);
      }
      return node;
    }
    const [head, ...tail] = rest;
    if (head !== "*" || typeof node !== "object" || node === null) return node;
    if (Array.isArray(node)) return node.map((entry) => convert(entry, tail));
    return Object.fromEntries(Object.entries(node).map(([key, entry]) => [key, convert(entry, tail)]));
  };
  const converted = positions.reduce((node, position) => convert(node, position), structuredClone(value));
  return { value: converted, keptAsText };
}

/** The zod schema of one key, as the loader's configSchema nests it. */
function zodKey(path: string): z.ZodType {
  let node: z.ZodType = configSchema;
  for (const segment of path.split(".")) {
    const object = unwrap(node);
    if (!(object instanceof z.ZodObject)) throw new Error(`${path}: ${segment} is not inside a mapping`);
    node = (object.shape as Record<string, z.ZodType>)[segment.replace(/\[\]$/, "")] as z.ZodType;
    if (segment.endsWith("[]")) {
      const list = unwrap(node);
      if (!(list instanceof z.ZodArray)) throw new Error(`${path}: ${segment} is not a list`);
      node = list.element as z.ZodType;
    }
  }
  return node;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  while (current instanceof z.ZodOptional || current instanceof z.ZodNullable || current instanceof z.ZodPipe) {
    current = (current instanceof z.ZodPipe ? current.in : current.unwrap()) as z.ZodType;
  }
  return current;
}

/**
 * Values the loader rejects and the schema accepts, on purpose: a JSON Schema cannot restate these
 * rules (or not without an unreadable pattern). Each is listed in the README ("The config in an editor").
 */
const LOOSER_ON_PURPOSE: { keys: RegExp; values: unknown[]; why: string }[] = [
  {
    keys: /\.(signal_timeout|startup_wait_time|lifespan|min_uptime|backoff_initial|backoff_max|window|interval|timeout|start_period|ready_timeout)$/,
    values: ["3000000h"],
    why: "a duration past Go's limit (2^63 ns, about 2562047h) matches the duration pattern",
  },
  {
    keys: /^admin\.control_socket$/,
    values: ["\u00e9".repeat(60)],
    why: "the control socket's limit is 107 bytes; JSON Schema's maxLength counts characters, so a path with non-ASCII characters can pass it and be too long",
  },
];

describe("key by key, the schema accepts exactly what the loader's field rules accept", () => {
  const values = corpus();
  const ajv = newAjv();

  it.each(propertyKeys.filter((path) => !["supervisor", "supervisor.workers"].includes(path)))("%s", (path) => {
    const validate = ajv.compile(keySchema(schema, path));
    const zodSchema = zodKey(path);
    const positions = textPositions(path);
    const flaggedValid: string[] = [];
    const missed: string[] = [];
    for (const value of values) {
      const read = asLoaderReadsIt(value, positions);
      const loader = zodSchema.safeParse(read.value).success;
      const editor = validate(value);
      if (loader && !editor) flaggedValid.push(JSON.stringify(value).slice(0, 80));
      if (!loader && editor && !read.keptAsText && !LOOSER_ON_PURPOSE.some((known) => known.keys.test(path) && known.values.includes(value))) missed.push(JSON.stringify(value).slice(0, 80));
    }
    expect(flaggedValid, "values the loader accepts and the schema rejects (an editor would flag a valid config)").toEqual([]);
    expect(missed, "values the loader rejects and the schema accepts (tighten json-schema-values.ts, or list them in LOOSER_ON_PURPOSE)").toEqual([]);
  });

  it("lists as looser on purpose only values the loader rejects and the schema accepts", () => {
    for (const known of LOOSER_ON_PURPOSE) {
      const paths = propertyKeys.filter((path) => known.keys.test(path));
      expect(paths.length, known.why).toBeGreaterThan(0);
      for (const path of paths) {
        const validate = ajv.compile(keySchema(schema, path));
        for (const value of known.values) {
          expect(zodKey(path).safeParse(value).success, `the loader on ${path}: ${JSON.stringify(value)}`).toBe(false);
          expect(validate(value), `the schema on ${path}: ${JSON.stringify(value)}`).toBe(true);
        }
      }
    }
  });
});
