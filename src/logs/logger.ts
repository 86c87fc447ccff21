// Monoceros's own log records. By default one JSON object per line with the keys of the Go
// original's zap production logger (`level` as a name, `ts` in epoch seconds, `msg`), so log
// pipelines built for it keep parsing; `--debug` switches to readable, verbose lines.
import { pino, type Logger } from "pino";

export type { Logger };

/** Anything with write(): an OutputChannel adapter, or a file descriptor's stream. */
export interface LineDestination {
  write(text: string): void;
}

/** Turns JSON record lines into readable ones (for --debug). */
export type RecordRenderer = (jsonLines: string) => string;

/**
 * The --debug rendering, for Monoceros's records and the records that carry workers' plain lines
 * alike: `[HH:MM:ss.l] LEVEL: message` and the other fields below. pino-pretty is loaded only here:
 * it and its dependencies cost start-up time and memory otherwise.
 */
export async function debugRenderer(): Promise<RecordRenderer> {
  const { prettyFactory } = await import("pino-pretty");
  // Monoceros's pid is shown (as `(pid)` after the level): several instances' lines can be told apart.
  const prettify = prettyFactory({ colorize: false, ignore: "hostname", translateTime: "SYS:HH:MM:ss.l" });
  const renderLine = (line: string): string => {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return `${line}\n`;
    }
    // A worker's line record: its time in epoch seconds, its text as the message.
    if (typeof record.ts === "number") {
      record.time = Math.round(record.ts * 1000);
      delete record.ts;
    }
    for (const key of ["worker_info_msg", "worker_error_msg"]) {
      if (record.msg === "" && typeof record[key] === "string") {
        record.msg = record[key];
        delete record[key];
      }
    }
    return prettify(record);
  };
  return (jsonLines) => {
    let text = "";
    for (const line of jsonLines.split("\n")) if (line !== "") text += renderLine(line);
    return text;
  };
}

/** `render` (from debugRenderer, for --debug) turns the JSON records into readable lines. */
export function createLogger(options: { render: RecordRenderer | null; destination?: LineDestination }): Logger {
  const { render } = options;
  if (render !== null) {
    const destination: LineDestination = options.destination ?? { write: (text) => process.stderr.write(text) };
    // Records about a process carry its pid: renamed worker_pid here, as `pid` is Monoceros's own.
    const log = (fields: Record<string, unknown>) => ("pid" in fields ? { ...fields, pid: undefined, worker_pid: fields.pid } : fields);
    return pino({ level: "debug", base: { pid: process.pid }, formatters: { log } }, { write: (record: string) => destination.write(render(record)) });
  }
  return pino(
    {
      level: "info",
      base: undefined,
      messageKey: "msg",
      timestamp: () => `,"ts":${Date.now() / 1000}`,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous by default: records written just before an exit must not be lost.
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
