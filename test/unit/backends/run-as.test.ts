// A pool's user and group as spawn ids: names looked up once, a user's primary group, root only.
import { describe, expect, it } from "vitest";
import { RunAsResolver } from "../../../src/backends/os/run-as.js";

const PASSWD: Record<string, string[]> = { "www-data": ["www-data", "x", "33", "33"], "33": ["www-data", "x", "33", "33"] };
const GROUP: Record<string, string[]> = { staff: ["staff", "x", "50", ""] };

function resolver(root = true) {
  const lookups: string[] = [];
  const r = new RunAsResolver((database, name) => {
    lookups.push(`${database}:${name}`);
    return (database === "passwd" ? PASSWD : GROUP)[name] ?? null;
  }, () => root);
  return { r, lookups };
}

describe("run as", () => {
  it("takes a user's uid and primary group, a named or numeric group over it, and looks each name up once", () => {
    const { r, lookups } = resolver();
    expect(r.resolve(null, null)).toEqual({});
    expect(r.resolve("www-data", null)).toEqual({ uid: 33, gid: 33 });
    expect(r.resolve("www-data", null)).toEqual({ uid: 33, gid: 33 });
    expect(r.resolve("www-data", "staff")).toEqual({ uid: 33, gid: 50 });
    expect(r.resolve("1234", "100")).toEqual({ uid: 1234, gid: 100 });
    expect(r.resolve(null, "staff")).toEqual({ gid: 50 });
    expect(lookups.filter((l) => l === "passwd:www-data")).toHaveLength(2); // once alone, once with staff
  });

  it("says why it cannot: not root, no such user or group, a uid without an entry and no group", () => {
    expect(() => resolver(false).r.resolve("www-data", null)).toThrow(/^user www-data: running workers as another user needs Monoceros to run as root/);
    expect(() => resolver().r.resolve("nobody-here", null)).toThrow("user nobody-here: no such user");
    expect(() => resolver().r.resolve(null, "nogroup-here")).toThrow("group nogroup-here: no such group");
    expect(() => resolver().r.resolve("4321", null)).toThrow(/^user 4321: no passwd entry to take its primary group from; set group too/);
  });
});
