// A pool's `user` and `group` as the ids a spawn takes. Names are looked up with getent (so NSS
// sources such as LDAP count, as for any login), once per name, and remembered while Monoceros
// runs. Only root may run processes as another user: anyone else gets a clear error.
import { spawnSync } from "node:child_process";

/** A name lookup that does not answer within this is an error (an NSS source may hang). */
const LOOKUP_TIMEOUT_MS = 5_000;

export interface RunAs {
  uid?: number;
  gid?: number;
}

type Lookup = (database: "passwd" | "group", name: string) => string[] | null;

/** getent's fields for one name (name:x:uid:gid:… or name:x:gid:members), or null when there is none. */
const getent: Lookup = (database, name) => {
  const result = spawnSync("getent", [database, name], { encoding: "utf8", timeout: LOOKUP_TIMEOUT_MS, stdio: ["ignore", "pipe", "ignore"] });
  if (result.error !== undefined) throw new Error(`cannot look up ${database === "passwd" ? "user" : "group"} ${name}: getent: ${result.error.message}`);
  if (result.status !== 0) return null;
  return result.stdout.split("\n")[0]?.split(":") ?? null;
};

export class RunAsResolver {
  private readonly known = new Map<string, RunAs>();

  constructor(
    private readonly lookup: Lookup = getent,
    private readonly isRoot: () => boolean = () => process.getuid?.() === 0,
  ) {}

  /**
   * The ids to spawn with; {} when neither is set. A user alone also sets its primary group.
   * Throws an Error with a one-line reason (not root, no such user or group).
   */
  resolve(user: string | null, group: string | null): RunAs {
    if (user === null && group === null) return {};
    const key = `${user ?? ""}:${group ?? ""}`;
    const cached = this.known.get(key);
    if (cached !== undefined) return cached;
    if (!this.isRoot()) throw new Error(`${user !== null ? `user ${user}` : `group ${group}`}: running workers as another user needs Monoceros to run as root (it runs as uid ${process.getuid?.() ?? "?"})`);
    const ids: RunAs = {};
    if (user !== null) {
      // getent takes a uid too: a numeric user's primary group comes from its entry, if it has one.
      const entry = this.lookup("passwd", user);
      if (entry === null && !/^\d+$/.test(user)) throw new Error(`user ${user}: no such user`);
      if (entry === null && group === null) throw new Error(`user ${user}: no passwd entry to take its primary group from; set group too (the workers would keep Monoceros's group otherwise)`);
      ids.uid = entry === null ? Number(user) : Number(entry[2]);
      if (group === null && entry !== null) ids.gid = Number(entry[3]);
    }
    if (group !== null) {
      const entry = /^\d+$/.test(group) ? null : this.lookup("group", group);
      if (!/^\d+$/.test(group) && entry === null) throw new Error(`group ${group}: no such group`);
      ids.gid = entry === null ? Number(group) : Number(entry[2]);
    }
    this.known.set(key, ids);
    return ids;
  }
}
