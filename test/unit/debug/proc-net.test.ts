import { describe, expect, it } from "vitest";
import { formatIpv6, parseInetAddress, parseInetTable, parseUnixTable, socketInode } from "../../../src/debug/proc-net.js";

// Captured from Linux 6.x on x86-64 (little-endian); trailing spaces as the kernel pads them.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:07E8 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1597 1 00000000c50b5e28 100 0 0 10 0                      
   1: 0100007F:1F90 0100007F:C536 01 0000000A:00000000 00:00000000 00000000  1000        0 41528 1 0000000000000000 20 4 30 10 -1                     
   2: 0100007F:C536 0100007F:A5F1 06 00000000:00000000 03:0000078B 00000000     0        0 0 3 000000003ddaf5d9                                      
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 20 4 30 10 -1
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 7001 2 0000000000000000 0
`;
const UNIX = `Num       RefCount Protocol Flags    Type St Inode Path
00000000627b0d07: 00000003 00000000 00000000 0001 03  1594
000000009a0e0c3f: 00000002 00000000 00010000 0001 01 22010 /run/app/control socket.sock
00000000883470db: 00000002 00000000 00000000 0002 01 22011 @abstract-name
00000000aaaaaaaa: 00000002 00000000 00000000 0005 01 22012
`;

describe("proc socket tables", () => {
  it("reads IPv4 and IPv6 addresses in the machine's byte order", () => {
    expect(parseInetAddress("0100007F:1F90", true)).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseInetAddress("7F000001:1F90", false)).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseInetAddress("00000000000000000000000001000000:0050", true)).toEqual({ host: "::1", port: 80 });
    expect(parseInetAddress("B80D0120000000000000000001000000:0050", true)).toEqual({ host: "2001:db8::1", port: 80 });
    expect(parseInetAddress("0000000000000000FFFF00000100007F:0050", true)).toEqual({ host: "::ffff:127.0.0.1", port: 80 });
    expect(parseInetAddress("xyz:0050", true)).toBeNull();
    expect(parseInetAddress("0100007F", true)).toBeNull();
  });

  it("writes IPv6 as RFC 5952 does: the longest zero run as ::, a single zero group kept", () => {
    const bytes = (groups: number[]) => groups.flatMap((group) => [group >> 8, group & 0xff]);
    expect(formatIpv6(bytes([0, 0, 0, 0, 0, 0, 0, 0]))).toBe("::");
    expect(formatIpv6(bytes([0x2001, 0xdb8, 0, 1, 0, 0, 0, 1]))).toBe("2001:db8:0:1::1");
    expect(formatIpv6(bytes([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe("2001:db8::1:0:0:1");
    expect(formatIpv6(bytes([0xfe80, 0, 0, 0, 0xa, 0xb, 0xc, 0xd]))).toBe("fe80::a:b:c:d");
  });

  it("keeps only the sockets asked about, with state, peer and queues", () => {
    const tcp = parseInetTable(TCP, "tcp", new Set([1597, 41528, 99]), true);
    expect([...tcp.keys()]).toEqual([1597, 41528]);
    expect(tcp.get(1597)).toEqual({ protocol: "tcp", local: "0.0.0.0:2024", peer: null, state: "LISTEN", rxQueue: 3, txQueue: 0 });
    expect(tcp.get(41528)).toEqual({ protocol: "tcp", local: "127.0.0.1:8080", peer: "127.0.0.1:50486", state: "ESTABLISHED", rxQueue: 0, txQueue: 10 });
    const tcp6 = parseInetTable(TCP6, "tcp6", new Set([5001, 5002]), true);
    expect(tcp6.get(5001)).toMatchObject({ local: "[::1]:8080", peer: null, state: "LISTEN" });
    expect(tcp6.get(5002)).toMatchObject({ local: "[::ffff:127.0.0.1]:8080", peer: "[::ffff:127.0.0.1]:54321", state: "ESTABLISHED" });
    expect(parseInetTable(UDP, "udp", new Set([7001]), true).get(7001)).toMatchObject({ protocol: "udp", local: "0.0.0.0:5353", peer: null, state: "UNCONNECTED" });
    expect(parseInetTable("garbage\nmore garbage", "tcp", new Set([1]), true).size).toBe(0);
  });

  it("reads unix sockets: listening, connected, abstract, unnamed, paths with spaces", () => {
    const unix = parseUnixTable(UNIX, new Set([1594, 22010, 22011, 22012]));
    expect(unix.get(1594)).toEqual({ protocol: "unix", local: "", peer: null, state: "CONNECTED", type: "STREAM" });
    expect(unix.get(22010)).toMatchObject({ local: "/run/app/control socket.sock", state: "LISTEN", type: "STREAM" });
    expect(unix.get(22011)).toMatchObject({ local: "@abstract-name", state: "UNCONNECTED", type: "DGRAM" });
    expect(unix.get(22012)).toMatchObject({ local: "", type: "SEQPACKET" });
  });

  it("finds the inode in an fd link", () => {
    expect(socketInode("socket:[41528]")).toBe(41528);
    expect(socketInode("pipe:[41528]")).toBeNull();
    expect(socketInode("/tmp/socket:[1]")).toBeNull();
  });
});
