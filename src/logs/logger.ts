// Monoceros's own log records. By default one JSON object per line with the keys of the Go
// original's zap production logger (`level` as a name, `ts` in epoch seconds, `msg`), so log
// pipelines built for it keep parsing; `--debug` switches to readable, verbose lines.
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

/** Anything with write(): an OutputChannel adapter, or a file descriptor's stream. */
export interface LineDestination {
  write(text: string): void;
}

export function createLogger(options: { debug: boolean; destination?: LineDestination }): Logger {
  if (options.debug) {
    const stream = pretty({
      sync: true,
      colorize: false,
      ignore: "pid,hostname",
      translateTime: "SYS:HH:MM:ss.l",
      ...(options.destination ? { destination: options.destination as unknown as NodeJS.WritableStream } : { destination: 2 }),
    });
    return pino({ level: "debug", base: undefined }, stream);
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
