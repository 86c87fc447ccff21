// deploy/: no image can be built and no cluster runs here, so these check what can be checked
// without them: the manifest parses, the config it mounts passes Monoceros's own loader, and every
// figure of the manifest and the Dockerfile relates to that config as the README's "Deployment"
// section states (grace period, probes, ports, memory, paths, the non-root user, tini).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { AdminServer } from "../../src/admin/server.js";
import { loadConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { createSupervisorState } from "../../src/domain/state.js";
import type { Metrics } from "../../src/metrics/registry.js";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** Monoceros's own waits after a SIGKILL before it gives a process up (README, "Shutdown"): workers, then the proxy. */
const SIGKILL_WAIT_SECONDS = 5;
/** What the grace period must leave beyond preStop and Monoceros's longest shutdown. */
const GRACE_MARGIN_SECONDS_MIN = 5;
/** Memory of what is not a worker: Monoceros (~65 MiB peak), HAProxy, the watchdog, one `monoceros ctl` run (measured, README). */
const OVERHEAD_BYTES_MIN = 128 * 1024 * 1024;

// --- the Kubernetes manifest, as far as it is read here -------------------------------------------

interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts: { name: string; mountPath: string }[];
}

interface PodSpec {
  terminationGracePeriodSeconds: number;
  enableServiceLinks?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes: { name: string; configMap?: { name: string }; emptyDir?: object }[];
}

interface Manifest {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: { template?: { metadata: { annotations?: Record<string, string> }; spec: PodSpec }; ports?: { port: number; targetPort: number | string }[] };
}

function manifests(): Manifest[] {
  const documents = parseAllDocuments(read("deploy/kubernetes.yaml"));
  if (!Array.isArray(documents)) throw new Error("deploy/kubernetes.yaml holds no document");
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`deploy/kubernetes.yaml: ${document.errors.map((e) => e.message).join("; ")}`);
  }
  return documents.map((document) => document.toJS() as Manifest);
}

function only(kind: string): Manifest {
  const found = manifests().filter((m) => m.kind === kind);
  expect(found, `one ${kind} in deploy/kubernetes.yaml`).toHaveLength(1);
  return found[0] as Manifest;
}

function pod(): { spec: PodSpec; container: Container; annotations: Record<string, string> } {
  const template = only("Deployment").spec?.template;
  if (template === undefined) throw new Error("the Deployment has no pod template");
  expect(template.spec.containers).toHaveLength(1);
  return { spec: template.spec, container: template.spec.containers[0] as Container, annotations: template.metadata.annotations ?? {} };
}

/** The file the ConfigMap mounts, as Monoceros's loader reads it (the checks of `-k`). */
function mountedConfig(): { text: string; config: Config; warnings: string[] } {
  const configMap = only("ConfigMap");
  const text = configMap.data?.["config.yaml"];
  if (text === undefined) throw new Error("the ConfigMap has no config.yaml");
  const loaded = loadConfigText(text);
  if (!loaded.ok) throw new Error(`the ConfigMap's config is invalid:\n${loaded.errors.join("\n")}`);
  return { text, config: loaded.config, warnings: loaded.warnings };
}

function portNumber(container: Container, port: number | string): number {
  if (typeof port === "number") return port;
  const named = container.ports.find((p) => p.name === port);
  if (named === undefined) throw new Error(`no container port named ${port}`);
  return named.containerPort;
}

/** A Kubernetes quantity of bytes: 928Mi, 1Gi, 500M, 1e9, 1048576. */
function quantityBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?(?:e\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (match === null) throw new Error(`not a byte quantity: ${quantity}`);
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * (match[2] === undefined ? 1 : (units[match[2]] as number));
}

function preStopSeconds(container: Container): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep !== undefined) return preStop.sleep.seconds;
  const command = preStop?.exec?.command ?? [];
  expect(command[0], "preStop is a sleep").toBe("sleep");
  return Number(command[1]);
}

/** Monoceros's longest shutdown for this config (README, "Shutdown"): per pool, its workers, then its proxy. */
function shutdownBoundSeconds(config: Config): number {
  return Math.max(...config.pools.map((pool) => pool.signalTimeoutMs / 1000 + SIGKILL_WAIT_SECONDS + (pool.server === null ? 0 : pool.server.signalTimeoutMs / 1000 + SIGKILL_WAIT_SECONDS)));
}

// --- the Dockerfile, as far as it is read here ------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  /** Index of the stage (FROM) it belongs to. */
  stage: number;
}

/** Instructions with their continuation lines joined; comments and the parser directive dropped. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = "";
  let stage = -1;
  for (const line of text.split("\n")) {
    if (pending === "" && /^\s*(#|$)/.test(line)) continue;
    if (pending !== "" && /^\s*#/.test(line)) continue; // Docker drops comment lines inside a continuation
    const joined = pending + line.trim();
    if (joined.endsWith("\\")) {
      pending = `${joined.slice(0, -1).trimEnd()} `;
      continue;
    }
    pending = "";
    const match = /^(\S+)\s*(.*)$/.exec(joined);
    if (match === null) continue;
    const keyword = (match[1] as string).toUpperCase();
    if (keyword === "FROM") stage += 1;
    instructions.push({ keyword, args: match[2] as string, stage });
  }
  if (pending !== "") throw new Error("the Dockerfile ends in a line continuation");
  return instructions;
}

function dockerfile() {
  const instructions = parseDockerfile(read("deploy/Dockerfile"));
  const stages = instructions.filter((i) => i.keyword === "FROM").map((i) => {
    const [image, as, name] = i.args.split(/\s+/);
    return { image: image as string, name: as?.toUpperCase() === "AS" ? name : undefined };
  });
  const final = stages.length - 1;
  const inFinal = (keyword: string) => instructions.filter((i) => i.stage === final && i.keyword === keyword);
  const last = (keyword: string) => inFinal(keyword).at(-1)?.args;
  return { instructions, stages, inFinal, last };
}

function jsonArray(args: string | undefined, what: string): string[] {
  if (args === undefined) throw new Error(`no ${what}`);
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) throw new Error(`${what} is not in exec form: ${args}`);
  return parsed as string[];
}

/** COPY's sources, without its flags (--from, --chown…) and its destination. */
function copySources(args: string): { from: string | undefined; sources: string[] } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const paths = words.filter((w) => !w.startsWith("--"));
  return { from: flags.find((f) => f.startsWith("--from="))?.slice("--from=".length), sources: paths.slice(0, -1) };
}

/** Whether a .dockerignore pattern (as written in ours: a name, a path, or *.ext) excludes this path. */
function ignored(path: string, patterns: string[]): boolean {
  const clean = posix.normalize(path).replace(/\/$/, "");
  return patterns.some((pattern) => {
    if (pattern.startsWith("*.")) return clean.endsWith(pattern.slice(1));
    return clean === pattern || clean.startsWith(`${pattern}/`);
  });
}

// --- the checks --------------------------------------------------------------------------------------

describe("deploy/kubernetes.yaml", () => {
  it("parses, and holds a ConfigMap, a Deployment and a Service", () => {
    expect(manifests().map((m) => m.kind)).toEqual(["ConfigMap", "Deployment", "Service"]);
  });

  it("mounts a config that passes Monoceros's loader (-k) without a warning, and is deploy/config.yaml", () => {
    const { text, config, warnings } = mountedConfig();
    expect(text).toBe(read("deploy/config.yaml"));
    expect(warnings).toEqual([]);
    expect(config.admin.port, "a fixed admin port, so the probes can find it").toBeGreaterThan(0);
    for (const pool of config.pools) {
      expect(pool.limits.memoryBytes, `pool ${pool.name}: limits.memory, so the pod's memory can be derived`).toBeGreaterThan(0);
      expect(pool.desiredHealthyPercentage, `pool ${pool.name}: /health means something`).toBeGreaterThan(0);
    }
  });

  it("mounts the ConfigMap where the container's -c points, as a folder (so edits reach the file)", () => {
    const { spec, container } = pod();
    const args = container.args ?? [];
    const configPath = args[args.indexOf("-c") + 1] as string;
    expect(configPath).toBe("/etc/monoceros/config.yaml");
    const mount = container.volumeMounts.find((m) => m.mountPath === posix.dirname(configPath));
    expect(mount, "a volume mounted on the config's folder").toBeDefined();
    const volume = spec.volumes.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBe(only("ConfigMap").metadata.name);
  });

  it("gives a grace period longer than preStop plus Monoceros's longest shutdown plus a margin", () => {
    const { spec, container } = pod();
    const { config } = mountedConfig();
    const preStop = preStopSeconds(container);
    expect(preStop).toBeGreaterThan(0);
    // README: max(signal_timeout) + server.signal_timeout + 10 s for a proxy pool.
    const bound = shutdownBoundSeconds(config);
    expect(bound).toBe(20 + 15 + 10);
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + bound + GRACE_MARGIN_SECONDS_MIN);
  });

  it("probes readiness on the admin /health and liveness on the admin status page, never on a TCP connect", () => {
    const { container } = pod();
    const { config } = mountedConfig();
    const readiness = container.readinessProbe?.httpGet;
    const liveness = container.livenessProbe?.httpGet;
    expect(readiness?.path).toBe("/health");
    expect(portNumber(container, readiness?.port ?? 0)).toBe(config.admin.port);
    expect(liveness, "liveness over HTTP: a stuck event loop still completes TCP handshakes").toBeDefined();
    expect(liveness?.path).not.toBe("/health");
    expect(portNumber(container, liveness?.port ?? 0)).toBe(config.admin.port);
  });

  it("has a liveness path that answers 200 while /health is 503 (no worker up, the proxy not running)", async () => {
    const { container } = pod();
    const { config } = mountedConfig();
    const metrics = { text: () => Promise.resolve(""), contentType: "text/plain" } as unknown as Metrics;
    const admin = new AdminServer(metrics, { state: createSupervisorState(config, 1), stats: () => null, toEpochMs: (ms) => ms, nowMs: () => 0 });
    try {
      const port = await admin.listen({ port: 0, host: "127.0.0.1" });
      const status = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
      expect(await status(container.readinessProbe?.httpGet?.path ?? "")).toBe(503);
      expect(await status(container.livenessProbe?.httpGet?.path ?? "")).toBe(200);
    } finally {
      await admin.close();
    }
  });

  it("exposes the config's ports: the admin endpoint, each proxy listener or listen address", () => {
    const { container, annotations } = pod();
    const { config } = mountedConfig();
    const wanted = [config.admin.port, ...config.pools.flatMap((pool) => (pool.server === null ? pool.listen.map((l) => l.port) : [pool.server.listenerPort]))];
    expect(container.ports.map((p) => p.containerPort).sort()).toEqual([...new Set(wanted)].sort());
    expect(Number(annotations["prometheus.io/port"])).toBe(config.admin.port);
    expect(annotations["prometheus.io/path"]).toBe("/metrics");
    for (const port of only("Service").spec?.ports ?? []) {
      expect(container.ports.map((p) => p.containerPort), `Service port ${port.port}`).toContain(portNumber(container, port.targetPort));
    }
  });

  it("requests the pool's memory at its limits.memory, and limits it with room for the surge replacements", () => {
    const { container } = pod();
    const { config } = mountedConfig();
    const steady = config.pools.reduce((sum, pool) => sum + pool.limits.memoryBytes * pool.replicas, 0);
    const surged = config.pools.reduce((sum, pool) => sum + pool.limits.memoryBytes * (pool.replicas + pool.maxSurge), 0);
    const request = quantityBytes(container.resources.requests?.memory ?? "0");
    const limit = quantityBytes(container.resources.limits?.memory ?? "0");
    expect(request).toBeGreaterThanOrEqual(steady + OVERHEAD_BYTES_MIN);
    expect(limit).toBeGreaterThanOrEqual(surged + OVERHEAD_BYTES_MIN);
    expect(limit).toBeGreaterThanOrEqual(request);
    // Requests that far exceed the config would waste the node: within 256 MiB of the derivation.
    expect(request - steady).toBeLessThanOrEqual(256 * 1024 * 1024);
  });

  it("runs as the image's non-root user, with a read-only root and /tmp writable for the control socket and proxy files", () => {
    const { spec, container } = pod();
    const { config } = mountedConfig();
    expect(spec.securityContext?.runAsNonRoot).toBe(true);
    expect(spec.enableServiceLinks).toBe(false);
    expect(container.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(container.securityContext?.allowPrivilegeEscalation).toBe(false);
    const tmp = container.volumeMounts.find((m) => m.mountPath === "/tmp");
    expect(spec.volumes.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
    for (const pool of config.pools) {
      if (pool.server !== null) expect(pool.server.proxyConfigPath.startsWith("/tmp/"), `pool ${pool.name}: proxy_config_path on a writable volume`).toBe(true);
    }
    const user = dockerfile().last("USER");
    expect(spec.securityContext?.runAsUser).toBe(Number(user?.split(":")[0]));
  });
});

describe("deploy/Dockerfile", () => {
  it("builds in a node:20 stage and runs on a slim node:20 one, as a numeric non-root user", () => {
    const { stages, last } = dockerfile();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]).toEqual({ image: expect.stringMatching(/^node:20(\.\d+)*(-bookworm)?$/), name: "build" });
    expect(stages.at(-1)?.image).toMatch(/^node:20(\.\d+)*(-bookworm)?-slim$/);
    // node:20 is the newest 20.x, which package.json's engines must accept.
    expect(JSON.parse(read("package.json")).engines.node).toMatch(/^>=20\./);
    const user = last("USER") ?? "";
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
  });

  it("stops with SIGTERM and runs Monoceros under tini, installed in the image", () => {
    const { inFinal, last } = dockerfile();
    expect(last("STOPSIGNAL")).toBe("SIGTERM");
    const entrypoint = jsonArray(last("ENTRYPOINT"), "ENTRYPOINT");
    expect(entrypoint[0]).toBe("/usr/bin/tini");
    const monoceros = entrypoint[entrypoint.indexOf("--") + 1];
    expect(monoceros).toBe("/opt/monoceros/bin/monoceros");
    expect(inFinal("RUN").some((r) => /apt-get install\b.*\btini\b/.test(r.args))).toBe(true);
    // `kubectl exec … monoceros ctl` finds it.
    expect(inFinal("ENV").some((e) => /PATH=\/opt\/monoceros\/bin:/.test(e.args))).toBe(true);
  });

  it("installs Monoceros from its own npm package, and the demo worker the config runs", () => {
    const { instructions } = dockerfile();
    const build = instructions.filter((i) => i.stage === 0 && i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(build).toMatch(/npm pack\b/);
    expect(build).toMatch(/npm install --global --prefix \/opt\/monoceros\b.*monoceros-\*\.tgz/);
    const { config } = mountedConfig();
    for (const pool of config.pools) {
      expect(build, `pool ${pool.name}: its exec is put into the image`).toContain(`${posix.dirname(pool.exec)}/`);
      expect(build).toContain(`dist/${posix.basename(pool.exec)}`);
    }
  });

  it("starts on the config path the manifest mounts, with the manifest's arguments and ports", () => {
    const { instructions, last } = dockerfile();
    const { container } = pod();
    expect(jsonArray(last("CMD"), "CMD")).toEqual(container.args);
    const baked = instructions.find((i) => i.keyword === "COPY" && i.args.endsWith("/etc/monoceros/config.yaml"));
    expect(baked?.args).toBe("deploy/config.yaml /etc/monoceros/config.yaml");
    const exposed = (last("EXPOSE") ?? "").split(/\s+/).map(Number).sort();
    expect(exposed).toEqual(container.ports.map((p) => p.containerPort).sort());
  });

  it("copies only files that exist in the repository and are in the build context, or from a named stage", () => {
    const { instructions, stages } = dockerfile();
    const patterns = read("deploy/Dockerfile.dockerignore").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    const copies = instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD");
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      expect(copy.keyword, "COPY, not ADD").toBe("COPY");
      const { from, sources } = copySources(copy.args);
      if (from !== undefined) {
        expect(stages.map((s) => s.name), `COPY --from=${from}`).toContain(from);
        continue;
      }
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
        expect(ignored(source, patterns), `${source} is in the build context`).toBe(false);
      }
    }
  });
});

describe("package.json", () => {
  it("is publishable: not private, a bin inside its files, only dist/ shipped, engines, no runtime dependency but the native addon", () => {
    const pkg = JSON.parse(read("package.json")) as Record<string, unknown> & { bin: Record<string, string>; files: string[]; optionalDependencies: Record<string, string> };
    expect(pkg.private).toBeUndefined();
    expect(pkg.files).toContain(pkg.bin.monoceros);
    expect(pkg.files.every((f) => f.startsWith("dist/"))).toBe(true);
    expect(pkg.engines).toEqual({ node: expect.stringMatching(/^>=20\./) });
    // dist/monoceros.cjs bundles every dependency: only the prebuilt addon is installed with it.
    expect(pkg.dependencies).toBeUndefined();
    expect(Object.keys(pkg.optionalDependencies).every((name) => name.startsWith("node-unix-socket-linux-"))).toBe(true);
  });
});
