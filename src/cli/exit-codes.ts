export const EXIT_CODES = {
  /** A requested shutdown completed, or --validate found the config valid. */
  ok: 0,
  /** Monoceros ran and failed, e.g. a pool used up its restart budget. */
  runtimeFailure: 1,
  /** Bad command line, unreadable or invalid config, or a start-up check failed. */
  usage: 2,
} as const;
