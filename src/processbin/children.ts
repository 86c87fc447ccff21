// --children: long-lived child processes in processbin's own process group. They are neither
// detached nor killed on exit on purpose: tests use them to check that a supervisor kills a
// worker's whole process group, not just the worker.
import { spawn } from "node:child_process";

const CHILD_COMMAND = "sleep";
const CHILD_ARGS = ["3600"];

/** Spawns `count` children; returns the pids of those that started (spawn errors go to onError). */
export function spawnChildren(count: number, onError: (error: Error) => void): number[] {
  const pids: number[] = [];
  for (let index = 0; index < count; index++) {
    // stdio "ignore": a child holding processbin's stdout open would keep the reader of that pipe
    // waiting for EOF long after processbin itself is gone.
    const child = spawn(CHILD_COMMAND, CHILD_ARGS, { stdio: "ignore" });
    child.on("error", onError);
    // Not waited for: processbin's lifetime is decided by its own flags, not by its children.
    child.unref();
    if (child.pid !== undefined) pids.push(child.pid);
  }
  return pids;
}
