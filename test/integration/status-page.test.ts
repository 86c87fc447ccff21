// The status page (GET /) in a real browser: Debian's chromium driven by playwright-core, against
// a running dist/monoceros with two pools: `web` (idle processbin workers) and `skewed` (a fixture
// whose slot 0 keeps half a core busy while slot 1 idles). The CPU-spread sampler runs on the test
// knobs (250 ms samples, 10 s window, 2 s minimum) so a verdict comes within seconds.
// A screenshot goes to test-results/status-page.png; with MONOCEROS_DOCS_SCREENSHOT=1 also to
// docs/status-page.png (the README's).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { adminPort, cleanUpAfterEach, fetchStatus, pollForAsync, PROCESSBIN, ROOT, startMonoceros } from "../support/monoceros.js";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`status-page.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium; make test installs it when run as root)`);

const track = cleanUpAfterEach(afterEach);
const browsers: Browser[] = [];
afterEach(async () => {
  for (const browser of browsers.splice(0)) await browser.close();
});

const BURNER = join(ROOT, "test/fixtures/cpu-burner.mjs");
const CONFIG = `admin:
  port: 0
  host: 127.0.0.1
supervisor:
  workers:
    - name: web
      replicas: 2
      max_restarts: -1
      exec: ${PROCESSBIN}
      args: [--log-interval, 10s]
    - name: skewed
      replicas: 2
      max_restarts: -1
      exec: ${process.execPath}
      args: [${BURNER}]
`;
const KNOBS = { MONOCEROS_CPU_SPREAD_SAMPLE_MS: "250", MONOCEROS_CPU_SPREAD_WINDOW_MS: "10000", MONOCEROS_CPU_SPREAD_MIN_WINDOW_MS: "2000" };

type StatusWithSpread = { pools: { name: string; workers: { id: string; pid: number | null; state: string }[]; cpu_spread: { verdict: string; text: string; covered_seconds: number } }[] };

/** "pool/worker pid" for every worker row the page shows, e.g. "web/web-0 1234". */
function pageWorkers(page: Page): Promise<string[]> {
  return page.$$eval("section.pool tr[data-worker]", (rows) =>
    rows.map((row) => `${row.closest("section")?.getAttribute("data-pool")}/${row.getAttribute("data-worker")} ${row.querySelector("td.pid")?.textContent ?? ""}`),
  );
}

/** The same from /status: workers that are not vacant slots. */
async function statusWorkers(port: number): Promise<string[] | undefined> {
  const status = await fetchStatus(port);
  return status?.pools.flatMap((pool) => pool.workers.filter((w) => w.state !== "vacant").map((w) => `${pool.name}/${w.id} ${w.pid ?? "–"}`));
}

describe.skipIf(!haveChromium)("status page in a browser", () => {
  it("shows the workers of /status, follows a restart and shows a skewed pool as skewed", async () => {
    const m = track(startMonoceros(CONFIG, [], { env: KNOBS }));
    const port = await m.waitFor("the admin port", () => adminPort(m));
    await pollForAsync("four running workers", async () => {
      const status = await fetchStatus(port);
      return status !== undefined && status.pools.every((pool) => pool.workers.filter((w) => w.state === "running").length === 2);
    }, 15_000);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], timeout: 20_000 });
    browsers.push(browser);
    const page = await browser.newPage({ viewport: { width: 1280, height: 600 } });
    const requests: string[] = [];
    const problems: string[] = [];
    page.on("request", (request) => requests.push(request.url()));
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    const openedAtMs = performance.now();
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: 10_000 });
    expect(await page.title()).toBe("Monoceros status");

    // The right workers: the page's rows are /status's (ids and pids), four running ones.
    const shown = await pollForAsync("the page showing the workers of /status", async () => {
      const [onPage, inStatus] = [await pageWorkers(page), await statusWorkers(port)];
      return inStatus !== undefined && onPage.length === 4 && onPage.join() === inStatus.join() && onPage;
    }, 10_000);
    expect(shown.map((row) => row.split(" ")[0])).toEqual(["web/web-0", "web/web-1", "skewed/skewed-0", "skewed/skewed-1"]);
    for (const row of shown) expect(row).toMatch(/ [1-9]\d*$/);

    // A restart: web-0 SIGKILLed; the page shows its new pid, the one /status has, within seconds.
    const oldPid = Number((shown[0] as string).split(" ")[1]);
    process.kill(oldPid, "SIGKILL");
    const killedAtMs = performance.now();
    const newPid = await pollForAsync("the page showing web-0's new pid", async () => {
      const status = (await fetchStatus(port)) as StatusWithSpread | undefined;
      const worker = status?.pools[0]?.workers.find((w) => w.id === "web-0");
      if (worker === undefined || worker.state !== "running" || worker.pid === oldPid) return undefined;
      const onPage = await page.textContent('section[data-pool="web"] tr[data-worker="web-0"] td.pid', { timeout: 1_000 });
      return onPage === String(worker.pid) && worker.pid;
    }, 8_000);
    expect(newPid).not.toBe(oldPid);
    expect(performance.now() - killedAtMs).toBeLessThan(8_000);
    expect(await page.textContent('section[data-pool="web"] tr[data-worker="web-0"] td.restarts')).toBe("1");
    expect(await page.textContent('section[data-pool="web"] tr[data-worker="web-0"] td.exit')).toMatch(/^SIGKILL, \d+s ago$/);

    // The skewed pool stated as skewed, as /status and /metrics have it, with a line per worker.
    const verdict = page.locator('section[data-pool="skewed"] .verdict');
    await pollForAsync("the skewed pool's verdict", async () => (await verdict.getAttribute("data-verdict")) === "spread", 15_000);
    expect(await verdict.textContent()).toMatch(/^spread \d+% — proxy mode with LEAST_REQUEST would even it out$/);
    expect(await page.locator('section[data-pool="skewed"] svg polyline').count()).toBe(2);
    const status = (await fetchStatus(port)) as StatusWithSpread | undefined;
    expect(status?.pools[1]?.cpu_spread.verdict).toBe("spread");
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const ratio = Number(/^monoceros_workerpool_cpu_spread_ratio\{pool="skewed"\} (\S+)$/m.exec(metrics)?.[1]);
    expect(ratio).toBeGreaterThan(0.25);
    // The idle pool has its own verdict too (which one depends on the machine: it barely uses the CPU).
    expect(await page.locator('section[data-pool="web"] .verdict').count()).toBe(1);

    mkdirSync(join(ROOT, "test-results"), { recursive: true });
    const screenshot = join(ROOT, "test-results/status-page.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    if (process.env.MONOCEROS_DOCS_SCREENSHOT === "1") {
      // For the README: charts over a whole window, after the page's next refresh.
      await pollForAsync("a whole window of samples", async () => (((await fetchStatus(port)) as StatusWithSpread | undefined)?.pools[1]?.cpu_spread.covered_seconds ?? 0) >= 9.5, 20_000);
      const updated = await page.textContent("#summary");
      await pollForAsync("the page's next refresh", async () => (await page.textContent("#summary")) !== updated, 5_000);
      await page.screenshot({ path: join(ROOT, "docs/status-page.png"), fullPage: true });
    }

    // Read-only and self-contained: the page asked for nothing but itself and ./status, at most once a second.
    const origin = `http://127.0.0.1:${port}/`;
    expect(requests.filter((url) => url !== origin && url !== `${origin}status`)).toEqual([]);
    const seconds = (performance.now() - openedAtMs) / 1000;
    expect(requests.filter((url) => url === `${origin}status`).length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    expect(problems).toEqual([]);
  }, 45_000);
});
