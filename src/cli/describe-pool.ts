// What `-k` prints under "config is valid" for each pool: the settings in effect for what the
// original did not have (health checks, memory limits, planned restarts), defaults filled in, so
// a reader sees what a key left unset means without opening the README.
import type { PoolConfig } from "../config/types.js";

function duration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

function bytes(count: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (count % size === 0) return `${count / size}${unit}`;
  }
  return `${count} bytes`;
}

/** One line per pool, e.g. `pool web: health_check http GET 127.0.0.1:<worker port>/healthz every 10s (timeout 1s, restart after 3 failures, start_period 0s); limits.memory 512MiB (RSS of the process group, 3 samples 1 s apart); max_unavailable 1`. */
export function describePool(pool: PoolConfig): string {
  const parts: string[] = [];
  const check = pool.healthCheck;
  if (check === null) {
    parts.push("no health_check (ready as soon as it runs)");
  } else {
    const probe = check.probe;
    const what = probe.kind === "http"
      ? `http GET ${probe.host.includes(":") ? `[${probe.host}]` : probe.host}:${probe.startPort === null ? "<worker port>" : `${probe.startPort}+i`}${probe.path}`
      : probe.kind === "exec"
        ? `exec ${JSON.stringify(probe.argv)}`
        : "notify (READY=1, WATCHDOG=1)";
    parts.push(`health_check ${what} every ${duration(check.intervalMs)} (timeout ${duration(check.timeoutMs)}, restart after ${check.failureThreshold} failure${check.failureThreshold === 1 ? "" : "s"} in a row, start_period ${duration(check.startPeriodMs)})`);
  }
  parts.push(pool.limits.memoryBytes > 0 ? `limits.memory ${bytes(pool.limits.memoryBytes)} (RSS of the process group, 3 samples 1s apart)` : "no limits.memory");
  parts.push(`max_unavailable ${pool.maxUnavailable}`);
  return `pool ${pool.name}: ${parts.join("; ")}`;
}
