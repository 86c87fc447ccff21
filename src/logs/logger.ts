// Monoceros's own log records. By default one JSON object per line on stderr with the keys of
// the Go original's zap production logger (`level` as a name, `ts` in epoch seconds, `msg`),
// so log pipelines built for it keep parsing; `--debug` switches to readable, verbose lines.
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export function createLogger(options: { debug: boolean; destinationFd?: number }): Logger {
  const fd = options.destinationFd ?? 2;
  if (options.debug) {
    const stream = pretty({ sync: true, destination: fd, colorize: false, ignore: "pid,hostname", translateTime: "SYS:HH:MM:ss.l" });
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
    // Synchronous: records written just before an exit must not be lost.
    pino.destination({ fd, sync: true }),
  );
}
