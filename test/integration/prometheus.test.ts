// Monoceros as Prometheus sees it, with the ecosystem's own tools (Debian's `prometheus` package):
// `promtool check metrics` on a live /metrics, a real Prometheus server scraping a running
// dist/monoceros every second and queried through its HTTP API, and every PromQL expression of
// deploy/grafana-dashboard.json run against that server.
//
// One Monoceros and one Prometheus serve the whole file (Prometheus's service discovery hands over
// its first targets only after 5 s, so a server per test would cost that each time); afterAll stops
// both by pid and removes Prometheus's folder, also when a test or beforeAll failed.
//
// Pools: `web`, two processbin workers serving HTTP on their health-check port (so a test can make
// one of them burn CPU with /work?ms=N), with a lifespan, a memory limit and an HTTP health check;
// `skewed`, the status page test's fixture whose slot 0 keeps half a core busy. The CPU-spread
// sampler runs on its test knobs, so monoceros_workerpool_cpu_spread_ratio has a value within seconds.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminPort, fetchStatus, killAll, pollForAsync, PROCESSBIN, ROOT, startMonoceros, workerPids, type Running } from "../support/monoceros.js";
import { findCommand, startPrometheus, type PrometheusServer, type PromSample } from "../support/prometheus.js";

const PROMETHEUS = findCommand("prometheus");
const PROMTOOL = findCommand("promtool");
const WHY = "(apt-get install prometheus; make test installs it when run as root)";
if (PROMTOOL === null) console.log(`prometheus.test.ts: the promtool test is skipped: promtool is not installed ${WHY}`);
if (PROMETHEUS === null) console.log(`prometheus.test.ts: the Prometheus server tests are skipped: prometheus is not installed ${WHY}`);

const DASHBOARD = join(ROOT, "deploy/grafana-dashboard.json");
const BURNER = join(ROOT, "test/fixtures/cpu-burner.mjs");
const KNOBS = { MONOCEROS_CPU_SPREAD_SAMPLE_MS: "250", MONOCEROS_CPU_SPREAD_WINDOW_MS: "10000", MONOCEROS_CPU_SPREAD_MIN_WINDOW_MS: "2000" };
/** web's slots: 2 replicas + 1 surge slot, each with a health port. */
const WEB_SLOTS = 3;
/** What Grafana would put for $__rate_interval with a 1 s scrape interval: 4 scrapes. */
const RATE_INTERVAL = "4s";

function config(healthStartPort: number): string {
  return `admin:
  port: 0
  host: 127.0.0.1
supervisor:
  workers:
    - name: web
      replicas: 2
      max_restarts: -1
      desired_healthy_percentage: 50
      exec: ${PROCESSBIN}
      args: [--port-env, MONOCEROS_HEALTH_PORT, --log-interval, 10s]
      limits: {lifespan: 1h, memory: 1GiB}
      health_check:
        http: {path: /health, start_port: ${healthStartPort}}
        interval: 1s
    - name: skewed
      replicas: 2
      max_restarts: -1
      desired_healthy_percentage: 50
      exec: ${process.execPath}
      args: [${BURNER}]
`;
}

async function canListen(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (ok) await new Promise((resolve) => server.close(resolve));
  return ok;
}

/** A run of free ports below Linux's ephemeral range (32768+), so a client connection cannot take one meanwhile. */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const start = 30_000 + Math.floor(Math.random() * (2_700 - count));
    const free = await Promise.all(Array.from({ length: count }, (_, i) => canListen(start + i)));
    if (free.every(Boolean)) return start;
  }
  throw new Error(`no ${count} free ports in a row found`);
}

let monoceros: Running | null = null;
let prometheus: PrometheusServer | null = null;
let adminPortNumber = 0;
let healthStartPort = 0;

async function scrape(): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${adminPortNumber}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return response.text();
}

/** The value of the only sample of a query, or undefined when there is none. */
async function single(prom: PrometheusServer, expr: string): Promise<number | undefined> {
  const samples = await prom.query(expr);
  if (samples.length > 1) throw new Error(`${expr}: ${samples.length} series, expected one`);
  return samples.length === 0 ? undefined : Number(samples[0]!.value[1]);
}

describe.skipIf(PROMETHEUS === null && PROMTOOL === null)("Prometheus", () => {
  beforeAll(async () => {
    healthStartPort = await freePortRange(WEB_SLOTS);
    const m = startMonoceros(config(healthStartPort), [], { env: KNOBS });
    monoceros = m;
    adminPortNumber = await m.waitFor("the admin port", () => adminPort(m));
    if (PROMETHEUS !== null) await startPrometheus(PROMETHEUS, [`127.0.0.1:${adminPortNumber}`], (server) => (prometheus = server));
  });

  afterAll(async () => {
    try {
      await prometheus?.stop();
    } finally {
      if (monoceros !== null) {
        // Monoceros first: killing its workers first would only make it start new ones.
        await monoceros.stop();
        killAll(workerPids(monoceros));
      }
    }
  });

  it.skipIf(PROMTOOL === null)("promtool check metrics finds nothing to complain about in a live /metrics", async () => {
    // Every metric family present: per-worker figures, health checks, memory limit, CPU spread.
    const text = await pollForAsync(
      "every metric family in /metrics",
      async () => {
        const body = await scrape().catch(() => "");
        const families = [/^monoceros_workerpool_process_cpu_seconds_total\{/m, /^monoceros_workerpool_cpu_spread_ratio\{/m, /^monoceros_workerpool_memory_limit_bytes\{/m, /^monoceros_workerpool_health_checks_total\{pool="web",result="ok"\} [1-9]/m];
        return families.every((family) => family.test(body)) && body;
      },
      20_000,
    );
    const lint = spawnSync(PROMTOOL as string, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 10_000 });
    expect({ status: lint.status, stdout: lint.stdout, stderr: lint.stderr }).toEqual({ status: 0, stdout: "", stderr: "" });
  });

  it.skipIf(PROMETHEUS === null)("scrapes per-worker CPU with pool and worker labels; it rises under load, rate() follows, a SIGKILLed worker's restart is counted", async () => {
    const prom = prometheus as PrometheusServer;
    const instance = `127.0.0.1:${adminPortNumber}`;
    const cpu = "monoceros_workerpool_process_cpu_seconds_total";
    const series = await pollForAsync(
      "four workers' CPU series in Prometheus",
      async () => {
        const samples = await prom.query(`${cpu}{job="monoceros"}`);
        return samples.length === 4 && samples;
      },
      25_000,
    );
    const labels = (s: PromSample) => Object.keys(s.metric).sort();
    expect(series.map(labels)).toEqual(Array(4).fill(["__name__", "instance", "job", "pool", "worker"]));
    expect(series.map((s) => `${s.metric.pool}/${s.metric.worker}`).sort()).toEqual(["skewed/skewed-0", "skewed/skewed-1", "web/web-0", "web/web-1"]);
    expect(new Set(series.map((s) => s.metric.instance))).toEqual(new Set([instance]));

    // web-0 burns CPU, request after request, while Prometheus watches.
    const before = (await single(prom, `${cpu}{worker="web-0"}`)) as number;
    let burning = true;
    const burn = (async () => {
      // A refused connection (the worker restarting) waits a little instead of spinning.
      while (burning) await fetch(`http://127.0.0.1:${healthStartPort}/work?ms=300`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text(), () => new Promise((r) => setTimeout(r, 100)));
    })();
    try {
      await pollForAsync("web-0's CPU counter to rise by a second in Prometheus", async () => ((await single(prom, `${cpu}{worker="web-0"}`)) ?? 0) >= before + 1, 20_000);
      // rate() over the last 4 scrapes: web-0 uses most of a core, web-1 (idle) next to nothing.
      await pollForAsync(
        "rate() to show web-0 busy and web-1 idle",
        async () => {
          const busy = (await single(prom, `rate(${cpu}{worker="web-0"}[${RATE_INTERVAL}])`)) ?? 0;
          const idle = (await single(prom, `rate(${cpu}{worker="web-1"}[${RATE_INTERVAL}])`)) ?? 1;
          return busy > 0.4 && idle < busy / 4;
        },
        15_000,
      );
    } finally {
      burning = false;
      await burn;
    }

    // kill -9 a worker: its restart shows in restarts_total, and increase() sees it.
    const restarts = `monoceros_workerpool_restarts_total{pool="web",worker_type="worker"}`;
    const restartsBefore = (await single(prom, restarts)) as number;
    const status = await fetchStatus(adminPortNumber);
    const victim = status?.pools.find((p) => p.name === "web")?.workers.find((w) => w.id === "web-1" && w.state === "running")?.pid;
    expect(victim).toBeGreaterThan(0);
    process.kill(victim as number, "SIGKILL");
    await pollForAsync("the restart in Prometheus", async () => ((await single(prom, restarts)) ?? 0) >= restartsBefore + 1, 15_000);
    expect(await single(prom, `increase(${restarts}[1m])`)).toBeGreaterThan(0);
  });

  it.skipIf(PROMETHEUS === null)("every PromQL expression of the Grafana dashboard parses and returns data", async () => {
    const prom = prometheus as PrometheusServer;
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
    // As Grafana's Prometheus data source interpolates them: a multi-value selection as a regex
    // group, regex characters escaped (inside a PromQL string, so doubled).
    const instance = `127\\\\.0\\\\.0\\\\.1:${adminPortNumber}`;
    const substitute = (expr: string) =>
      expr
        .replaceAll("$__rate_interval", RATE_INTERVAL)
        .replaceAll("$__range", "1m")
        .replaceAll("$__interval", "1s")
        .replace(/\$\{?pool\}?/g, "(web|skewed)")
        .replace(/\$\{?instance\}?/g, `(${instance})`);

    // The template variables' queries (Grafana's label_values(selector, label)) find the pools and this instance.
    const variables = dashboard.templating.list.filter((v) => v.type === "query");
    expect(variables.map((v) => v.name).sort()).toEqual(["instance", "pool"]);
    for (const variable of variables) {
      const call = /^label_values\((.+),\s*(\w+)\)$/.exec(variable.query);
      expect(call, variable.query).not.toBeNull();
      const values = await pollForAsync(`values of $${variable.name}`, async () => {
        const found = await prom.api<string[]>(`/api/v1/label/${call![2]}/values?match[]=${encodeURIComponent(substitute(call![1]!))}`);
        return found.length > 0 && found;
      });
      expect(values).toEqual(variable.name === "pool" ? ["skewed", "web"] : [`127.0.0.1:${adminPortNumber}`]);
    }

    const queries = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).flatMap((panel) => (panel.targets ?? []).map((t) => ({ where: `${panel.title} (${t.refId})`, expr: substitute(t.expr) })));
    expect(queries.length).toBeGreaterThan(20);
    expect(queries.filter((q) => q.expr.includes("$")).map((q) => `${q.where}: ${q.expr}`), "queries with a template variable this test does not know").toEqual([]);

    // Parses: Prometheus answers every one without an error, at once.
    const refused: string[] = [];
    for (const { where, expr } of queries) {
      const answer = await prom.queryRaw(expr);
      if (answer.status !== "success") refused.push(`${where}: ${answer.errorType}: ${answer.error}\n  ${expr}`);
    }
    expect(refused).toEqual([]);

    // Returns data: every one but those that cannot here, within a few scrapes.
    const mayBeEmpty: Record<string, string> = {
      "Virtual memory per worker (B)": "the workers have no address-space limit (RLIMIT_AS) here, so there is nothing to draw",
    };
    for (const where of Object.keys(mayBeEmpty)) expect(queries.some((q) => q.where === where), `${where} is no longer in the dashboard`).toBe(true);
    const empty = new Set(queries.filter((q) => !(q.where in mayBeEmpty)).map((q) => q.where));
    await pollForAsync(
      "data for every dashboard query",
      async () => {
        for (const { where, expr } of queries) if (empty.has(where) && (await prom.query(expr)).length > 0) empty.delete(where);
        return empty.size === 0;
      },
      20_000,
    ).catch(() => undefined);
    expect([...empty], "dashboard queries without data").toEqual([]);
  });
});

interface DashboardPanel {
  title: string;
  type: string;
  panels?: DashboardPanel[];
  targets?: { refId: string; expr: string }[];
}

interface Dashboard {
  panels: DashboardPanel[];
  templating: { list: { name: string; type: string; query: string }[] };
}
