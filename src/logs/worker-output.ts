// Forwards one worker's stdout and stderr, line by line, to Monoceros's output channels.
import type { Readable } from "node:stream";
import type { LogLevelName } from "../config/types.js";
import { LineSplitter, LINE_BYTES_MAX_DEFAULT } from "./line-splitter.js";
import { formatWorkerLine, type WorkerStream } from "./worker-log-format.js";

/** Where text goes; `source` is paused while the destination is backed up (an OutputChannel). */
export interface TextChannel {
  write(text: string, source?: Readable): void;
}

export interface LogChannels {
  stdout: TextChannel;
  stderr: TextChannel;
  /** Where Monoceros's own records go (stderr, like the original's zap logger). */
  records: TextChannel;
}

export interface ForwardOptions {
  maxLineBytes?: number;
  /** The level of the records carrying plain stderr lines (default error, the original's). */
  stderrLevel?: LogLevelName;
  /** Counted when a JSON line already had worker_id (monoceros_workerpool_failed_to_parse_log_json_total). */
  onCollision?: () => void;
}

/** Reads a stream to its end, forwarding each chunk's lines in one write per destination. */
export function forwardStream(readable: Readable, stream: WorkerStream, workerId: string, channels: LogChannels, options: ForwardOptions = {}): void {
  const workerIdJson = JSON.stringify(workerId);
  const stderrLevel = options.stderrLevel ?? "error";
  const own = stream === "stdout" ? channels.stdout : channels.stderr;
  let passthrough = "";
  let records = "";
  let nowSeconds = 0;
  const splitter = new LineSplitter((line) => {
    const formatted = formatWorkerLine(line, stream, workerIdJson, nowSeconds, stderrLevel);
    if (formatted.collided) options.onCollision?.();
    if (formatted.target === "passthrough") passthrough += formatted.text + "\n";
    else records += formatted.text + "\n";
  }, options.maxLineBytes ?? LINE_BYTES_MAX_DEFAULT);
  const flush = () => {
    if (passthrough !== "") own.write(passthrough, readable);
    if (records !== "") channels.records.write(records, readable);
    passthrough = "";
    records = "";
  };
  readable.on("data", (chunk: Buffer) => {
    nowSeconds = Date.now() / 1000;
    splitter.push(chunk);
    flush();
  });
  readable.on("end", () => {
    nowSeconds = Date.now() / 1000;
    splitter.end();
    flush();
  });
}
