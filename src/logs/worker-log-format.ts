// How a worker's output line is re-emitted, with the record shapes of the Go original
// (internal/worker/worker_log_streamer.go), so log pipelines built for it keep working:
// - a line that is a JSON object without `worker_id` is passed through on the worker's own
//   stream with `"worker_id": "<pool>-<i>"` added;
// - anything else (plain text, `null`, arrays, numbers, an object that already has
//   `worker_id`) becomes a Monoceros record on the log stream:
//   {"level":"info","ts":…,"msg":"","worker_id":…,"worker_info_msg":<line>}
//   (stderr lines: "worker_error_msg", at the pool's stderr_level, "error" by default as in the original).
// Unlike the original, no line is sampled or dropped, and odd input never crashes it.

import type { LogLevelName } from "../config/types.js";

export type WorkerStream = "stdout" | "stderr";

export interface FormattedLine {
  /** "passthrough": write to the worker's own stream; "record": write to Monoceros's log stream. */
  target: "passthrough" | "record";
  text: string;
  /** The line was a JSON object that already had worker_id (counted like the original). */
  collided: boolean;
}

/** Keeps the worker's own formatting: the object is reopened before its last `}`. */
export function formatWorkerLine(line: string, stream: WorkerStream, workerIdJson: string, nowSeconds: number, stderrLevel: LogLevelName = "error"): FormattedLine {
  const trimmed = line.trim();
  if (trimmed.startsWith("{") && trimmed.endsWith("}")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      if (!Object.prototype.hasOwnProperty.call(parsed, "worker_id")) {
        const body = trimmed.slice(0, -1).trimEnd();
        const separator = body.endsWith("{") ? "" : ",";
        return { target: "passthrough", text: `${body}${separator}"worker_id":${workerIdJson}}`, collided: false };
      }
      return { target: "record", text: record(line, stream, workerIdJson, nowSeconds, stderrLevel), collided: true };
    }
  }
  return { target: "record", text: record(line, stream, workerIdJson, nowSeconds, stderrLevel), collided: false };
}

function record(line: string, stream: WorkerStream, workerIdJson: string, nowSeconds: number, stderrLevel: LogLevelName): string {
  const level = stream === "stdout" ? "info" : stderrLevel;
  const key = stream === "stdout" ? "worker_info_msg" : "worker_error_msg";
  return `{"level":"${level}","ts":${nowSeconds},"msg":"","worker_id":${workerIdJson},"${key}":${JSON.stringify(line)}}`;
}
