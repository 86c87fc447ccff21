// How `monoceros ctl` shows answers to people: /status as a table (like `pm2 ls`), command results
// as their message and plan. Pure, and lenient about the shape: a field that is missing or of
// another type shows as "?" rather than failing, since ctl may talk to an older or newer Monoceros.
// Scripts should use --json, which shows everything as it came.

const MIB = 1024 * 1024;
const COLUMNS = ["POOL", "WORKER", "PID", "STATE", "READY", "UPTIME", "RESTARTS", "CPU", "RSS", "LAST EXIT"] as const;
const COLUMN_GAP = "  ";

type Fields = Record<string, unknown>;
type Row = Record<(typeof COLUMNS)[number], string>;

const fieldsOf = (value: unknown): Fields | null => (typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Fields) : null);
const numberOf = (value: unknown): number | null => (typeof value === "number" && Number.isFinite(value) ? value : null);
// Control characters are shown as "?": a cell must not move the cursor or restyle the terminal.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const text = (value: unknown): string => (typeof value === "string" ? value.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?") : typeof value === "number" ? String(value) : value === null ? "-" : "?");

/** 45s, 12m, 3h, 2d: the largest whole unit, as `pm2 ls` shows uptime. */
export function humanDuration(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)}s`;
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3_600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** 1.2s under a minute (where tenths tell a busy worker from an idle one), else like humanDuration. */
export function humanCpu(cpuSeconds: unknown): string {
  const seconds = numberOf(cpuSeconds);
  if (seconds === null) return cpuSeconds === null ? "-" : "?";
  return seconds < 60 ? `${seconds.toFixed(1)}s` : humanDuration(seconds);
}

/** 3.4 MiB, 120 MiB, 12.5 GiB. */
export function humanBytes(bytes: unknown): string {
  const value = numberOf(bytes);
  if (value === null) return bytes === null ? "-" : "?";
  const mib = value / MIB;
  if (mib < 10) return `${mib.toFixed(1)} MiB`;
  if (mib < 10 * 1024) return `${Math.round(mib)} MiB`;
  return `${(mib / 1024).toFixed(1)} GiB`;
}

/** "code 1, 3m ago", "SIGKILL, 10s ago" or "-". */
export function humanLastExit(lastExit: unknown, nowEpochMs: number): string {
  const exit = fieldsOf(lastExit);
  if (exit === null) return lastExit === null ? "-" : "?";
  const what = typeof exit.signal === "string" ? exit.signal : numberOf(exit.code) !== null ? `code ${String(exit.code)}` : "?";
  const atMs = typeof exit.at === "string" ? Date.parse(exit.at) : NaN;
  return Number.isNaN(atMs) ? what : `${what}, ${humanDuration(Math.max(0, nowEpochMs - atMs) / 1000)} ago`;
}

function restartsText(restarts: unknown, plannedRestarts: unknown): string {
  const planned = numberOf(plannedRestarts);
  return planned !== null && planned > 0 ? `${text(restarts)} + ${planned} planned` : text(restarts);
}

function workerRow(pool: string, worker: Fields, nowEpochMs: number): Row {
  const uptimeSeconds = numberOf(worker.uptime_seconds);
  return {
    POOL: pool,
    WORKER: text(worker.id),
    PID: text(worker.pid),
    STATE: text(worker.state),
    READY: worker.ready === true ? "yes" : worker.ready === false ? "no" : "?",
    UPTIME: uptimeSeconds === null ? "-" : humanDuration(uptimeSeconds),
    RESTARTS: restartsText(worker.restarts, worker.planned_restarts),
    CPU: humanCpu(worker.cpu_seconds),
    RSS: humanBytes(worker.rss_bytes),
    "LAST EXIT": humanLastExit(worker.last_exit, nowEpochMs),
  };
}

function proxyRow(pool: string, proxy: Fields, nowEpochMs: number): Row {
  const startedAtMs = typeof proxy.started_at === "string" && proxy.pid !== null ? Date.parse(proxy.started_at) : NaN;
  return {
    POOL: pool,
    WORKER: "proxy",
    PID: text(proxy.pid),
    STATE: text(proxy.state),
    READY: "-",
    UPTIME: Number.isNaN(startedAtMs) ? "-" : humanDuration(Math.max(0, nowEpochMs - startedAtMs) / 1000),
    RESTARTS: text(proxy.restarts),
    CPU: "-",
    RSS: "-",
    "LAST EXIT": humanLastExit(proxy.last_exit, nowEpochMs),
  };
}

const emptyRow = (pool: string, state: string): Row => ({ POOL: pool, WORKER: "-", PID: "-", STATE: state, READY: "-", UPTIME: "-", RESTARTS: "-", CPU: "-", RSS: "-", "LAST EXIT": "-" });

/** Columns padded to their widest cell; the last one is not padded. */
function alignRows(rows: readonly Row[]): string[] {
  const widths = COLUMNS.map((column) => Math.max(column.length, ...rows.map((row) => row[column].length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(COLUMN_GAP).trimEnd();
  return [line(COLUMNS), ...rows.map((row) => line(COLUMNS.map((column) => row[column])))];
}

/** The /status object as a summary line and a table: a row per worker, and per pool's proxy after its workers. */
export function formatStatusTable(status: unknown, nowEpochMs: number): string[] {
  const fields = fieldsOf(status);
  if (fields === null || !Array.isArray(fields.pools)) return ["cannot read this status (it has no pools); see it with --json"];
  const health = fields.healthy === true ? "healthy" : fields.healthy === false ? "not healthy" : "health unknown";
  const rows: Row[] = [];
  for (const poolValue of fields.pools) {
    const pool = fieldsOf(poolValue);
    if (pool === null) continue;
    const name = text(pool.name);
    // Free slots (room for a surge replacement or scaling up) are no workers: they are left out.
    const workers = Array.isArray(pool.workers) ? pool.workers.map(fieldsOf).filter((worker): worker is NonNullable<typeof worker> => worker !== null && worker.state !== "vacant") : [];
    for (const worker of workers) rows.push(workerRow(name, worker, nowEpochMs));
    const proxy = fieldsOf(pool.proxy);
    if (proxy !== null) rows.push(proxyRow(name, proxy, nowEpochMs));
    if (workers.length === 0 && proxy === null) rows.push(emptyRow(name, "no workers"));
  }
  return [`Monoceros ${text(fields.phase)}, ${health}`, ...alignRows(rows)];
}

/** A restart/scale/reload result: its message, then its plan one step per line. */
export function formatCommandResult(result: unknown): string[] {
  const fields = fieldsOf(result);
  const message = typeof fields?.message === "string" ? fields.message : null;
  const plan = Array.isArray(fields?.plan) ? fields.plan.filter((step): step is string => typeof step === "string") : null;
  if (message === null && plan === null) return typeof result === "string" ? [result] : JSON.stringify(result ?? null, null, 2).split("\n");
  return [...(message === null ? [] : [message]), ...(plan ?? []).map((step) => `  ${step}`)];
}
