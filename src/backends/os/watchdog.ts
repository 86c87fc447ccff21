// No orphans, even when Monoceros is SIGKILLed: a tiny bash process, in its own session, keeps
// the list of worker process groups. Monoceros writes "+<pgid>" / "-<pgid>" lines to its stdin;
// when that pipe closes (Monoceros is gone, however it died) it SIGKILLs every group still
// listed. One process for all workers, so nothing is added to the path of each spawn (a
// parent-death signal via setpriv would cost an extra exec, about 1 ms, per restart).
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";

const SCRIPT = `
trap '' INT TERM HUP QUIT PIPE
declare -A groups
while IFS= read -r line; do
  case $line in
    +*) groups[\${line:1}]=1 ;;
    -*) unset "groups[\${line:1}]" ;;
  esac
done
for group in "\${!groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done
`;

export class Watchdog {
  private process: ChildProcess | null = null;
  private readonly groups = new Set<number>();
  private stopped = false;

  constructor(private readonly onProblem: (message: string) => void) {}

  start(): void {
    const child = spawn("bash", ["-c", SCRIPT], { detached: true, stdio: ["pipe", "ignore", "ignore"] });
    // Neither the watchdog nor its pipe may keep Monoceros's event loop alive.
    child.unref();
    (child.stdin as Socket | null)?.unref();
    child.on("error", (error) => this.onProblem(`cannot start the orphan watchdog (bash): ${error.message}; workers may outlive a killed Monoceros`));
    child.stdin?.on("error", () => {}); // reported through "exit"
    child.on("exit", () => {
      if (this.stopped) return;
      this.onProblem("the orphan watchdog exited; starting it again");
      this.process = null;
      this.start();
    });
    this.process = child;
    if (this.groups.size > 0) this.send([...this.groups].map((group) => `+${group}`).join("\n"));
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

  /** Graceful end: no group is left to kill; closing stdin lets bash exit. */
  stop(): void {
    this.stopped = true;
    this.process?.stdin?.end();
  }

  private send(text: string): void {
    const stdin = this.process?.stdin;
    if (stdin && !stdin.destroyed) stdin.write(`${text}\n`);
  }
}
