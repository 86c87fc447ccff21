// The bounds of `ctl debug` and `ctl profile`, in one place: the protocol checks requests against
// them, the server and the tools enforce them, ctl and the README quote them.

export const DEBUG_LIMITS = {
  /** A debug command's run time when `--timeout` is not given. */
  timeoutMsDefault: 30_000,
  /** The longest `--timeout` accepted: a debug command holds a control connection and often ptrace. */
  timeoutMsMax: 5 * 60_000,
  timeoutMsMin: 100,
  /** stdout and stderr together; past this the rest is dropped with a note and the command is stopped. */
  outputBytesMax: 1024 * 1024,
  /** One output line; a longer one is split (as workers' lines are). */
  lineBytesMax: 16 * 1024,
  /** Debug commands (and proc snapshots) running at once, over every connection. */
  runsMax: 4,
  /** Between SIGTERM and SIGKILL of a command's process group at its timeout, or when its client left. */
  killGraceMs: 1_000,
  /** After SIGKILL, how long its exit is waited for before the run is reported without it. */
  exitWaitMs: 2_000,
  /** After the command exited, how long a process outside its group may keep its pipes open. */
  outputDrainMs: 500,
  /** A profile: CPU profiles last from this … */
  profileDurationMsMin: 100,
  /** … to this; the profiler samples Monoceros itself, a little slower meanwhile. */
  profileDurationMsMax: 5 * 60_000,
  /** A profile file larger than this is not sent (a heap snapshot of Monoceros is tens of MiB). */
  profileBytesMax: 512 * 1024 * 1024,
  /** Sending a profile to ctl, after it was taken; a client that reads slower is cut off. */
  profileTransferMsMax: 120_000,
  /** One `data` line of a profile, in characters. */
  profileChunkChars: 64 * 1024,
  /** Bytes waiting in the socket for ctl before the next chunk is sent (backpressure). */
  streamBacklogBytesMax: 1024 * 1024,
} as const;

/** The built-in debug command (a /proc snapshot); a pool's `debug:` may not use the name. */
export const PROC_SNAPSHOT_NAME = "proc";

/** Names of debug commands: short, and safe in a log record and on a command line. */
export const DEBUG_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const DEBUG_NAME_LENGTH_MAX = 32;
/** Commands in one pool's `debug:`. */
export const DEBUG_COMMANDS_MAX = 32;
/** Entries of one command (the executable and its arguments). */
export const DEBUG_ARGV_MAX = 256;
/** Characters of one entry. */
export const DEBUG_ARG_CHARS_MAX = 4096;

export type ProfileKind = "cpu" | "heap";
export const PROFILE_KINDS: readonly ProfileKind[] = ["cpu", "heap"];
/** The file name ending Chrome DevTools (and VS Code) open each kind with. */
export const PROFILE_EXTENSIONS: Record<ProfileKind, string> = { cpu: ".cpuprofile", heap: ".heapsnapshot" };
