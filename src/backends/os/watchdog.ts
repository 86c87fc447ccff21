// No orphans, even when Monoceros is SIGKILLed: a tiny shell process (POSIX sh: dash here, busybox
// on Alpine; 1.6 MiB where bash took 3.2), in its own session, keeps the list of worker process
// groups. Monoceros writes "+<pgid>" / "-<pgid>" lines to its stdin; when that pipe closes
// (Monoceros is gone, however it died, or it exits normally) the watchdog SIGKILLs every group
// still listed, then sweeps /proc for any process that carries this Monoceros's instance marker in
// its environment, a few times over a second: that catches what a group kill misses (a worker
// forked but not yet listed, a child that left its group with setsid).
// One process for all workers, so nothing is added to the path of each spawn.
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { doublingMs } from "../../domain/backoff.js";
import { RESOURCE_ERROR_CODES } from "../../domain/supervisor.js";
import { coverHeldListenSockets } from "./listen-sockets.js";

// The groups are one string, " 12 345 678 ", each group once: POSIX sh has no sets. The first line
// names the process for whoever reads its command line (tests, an operator's ps).
export const WATCHDOG_NAME = "monoceros-watchdog";
const SCRIPT = `# ${WATCHDOG_NAME}
trap '' INT TERM HUP QUIT PIPE USR1 USR2
groups=' '
while IFS= read -r line; do
  case $line in
    +*) case $groups in *" \${line#+} "*) ;; *) groups="$groups\${line#+} " ;; esac ;;
    -*) case $groups in *" \${line#-} "*) groups="\${groups%%" \${line#-} "*} \${groups#*" \${line#-} "}" ;; esac ;;
  esac
done
for group in $groups; do kill -s KILL -- "-$group" 2>/dev/null; done
sweep() {
  if command -v grep >/dev/null; then
    for file in $(grep -lzxF -- "$MONOCEROS_WATCHDOG_MARK" /proc/[0-9]*/environ 2>/dev/null); do
      pid=\${file#/proc/}; pid=\${pid%/environ}
      [ "$pid" = "$$" ] || kill -s KILL "$pid" 2>/dev/null
    done
  fi
}
for pause in 0 0.05 0.2 0.7; do sleep "$pause"; sweep; done
`;

/** A watchdog that ran this long is restarted at once if it dies; sooner, after a growing delay. */
const STABLE_AFTER_MS = 10_000;
const RESTART_DELAY_FIRST_MS = 100;
const RESTART_DELAY_MAX_MS = 5_000;

export class Watchdog {
  private process: ChildProcess | null = null;
  private readonly groups = new Set<number>();
  private stopped = false;
  private startedAtMs = 0;
  private quickRestarts = 0;
  private restartTimer: NodeJS.Timeout | null = null;

  /** `mark` is the NAME=value environment entry every worker carries (see OsBackend). */
  constructor(
    private readonly onProblem: (message: string) => void,
    private readonly mark: string,
  ) {}

  start(): void {
    this.restartTimer = null;
    this.startedAtMs = performance.now();
    // Its own environment holds the mark only in a variable of its own name, so its sweep cannot match itself.
    const child = spawn("sh", ["-c", SCRIPT], {
      detached: true,
      // Not a copy of the pools' listening sockets: it lives as long as Monoceros, and would keep a closed lane's port listening.
      stdio: coverHeldListenSockets(["pipe", "ignore", "ignore"]),
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", MONOCEROS_WATCHDOG_MARK: this.mark },
    });
    // Neither the watchdog nor its pipe may keep Monoceros's event loop alive.
    child.unref();
    (child.stdin as Socket | null)?.unref();
    child.stdin?.on("error", () => {}); // reported through "exit"
    // A failed spawn emits "error" and no "exit"; a dead watchdog "exit". A shortage (EMFILE, EAGAIN…)
    // is retried like a death; a sh that is not there (ENOENT, EACCES) will not appear: said once.
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return;
      if (RESOURCE_ERROR_CODES.includes(error.code ?? "")) {
        this.restartLater(child, `cannot start the orphan watchdog (sh): ${error.message}; workers may outlive a killed Monoceros until it starts`);
        return;
      }
      this.process = null;
      this.onProblem(`cannot start the orphan watchdog (sh): ${error.message}; not trying again, so workers may outlive a killed Monoceros (no sh in PATH)`);
    });
    child.on("exit", () => this.restartLater(child, "the orphan watchdog exited"));
    this.process = child;
    if (this.groups.size > 0) this.send([...this.groups].map((group) => `+${group}`).join("\n"));
  }

  /** At once after a run of STABLE_AFTER_MS, else after a delay doubling from 100 ms to 5 s. */
  private restartLater(child: ChildProcess, problem: string): void {
    if (this.stopped || this.process !== child) return;
    this.process = null;
    this.quickRestarts = performance.now() - this.startedAtMs >= STABLE_AFTER_MS ? 0 : this.quickRestarts + 1;
    const delayMs = this.quickRestarts === 0 ? 0 : doublingMs(RESTART_DELAY_FIRST_MS, RESTART_DELAY_MAX_MS, this.quickRestarts - 1);
    this.onProblem(`${problem}; starting it again in ${delayMs} ms`);
    this.restartTimer = setTimeout(() => this.start(), delayMs);
    this.restartTimer.unref();
  }

  add(pgid: number): void {
    this.groups.add(pgid);
    this.send(`+${pgid}`);
  }

  remove(pgid: number): void {
    if (this.groups.delete(pgid)) this.send(`-${pgid}`);
  }

  /** The process groups of live workers, as told to the watchdog. */
  liveGroups(): ReadonlySet<number> {
    return this.groups;
  }

  /** The watchdog's pid, for tests. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Graceful end: closing stdin lets the watchdog kill what is left (normally nothing) and exit. */
  stop(): void {
    this.stopped = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.process?.stdin?.end();
  }

  private send(text: string): void {
    const stdin = this.process?.stdin;
    if (stdin && !stdin.destroyed) stdin.write(`${text}\n`);
  }
}
