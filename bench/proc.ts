/**
 * CPU and system calls by process, from /proc (Linux): what a benchmark's work cost each process on
 * its path (our node process, every PostgreSQL process, nats-server).
 */
import { readdirSync, readFileSync } from 'node:fs';

const HZ = 100; // USER_HZ: /proc/<pid>/stat counts clock ticks of 10 ms

/** utime+stime (+ cutime+cstime: children it reaped) of `pid` in µs, and its parent. */
export function procStat(pid: number): { us: number; childUs: number; ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { us: ((Number(f[11]) + Number(f[12])) * 1e6) / HZ, childUs: ((Number(f[13]) + Number(f[14])) * 1e6) / HZ, ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}
/** write-family system calls (write, writev, pwrite: sockets, pipes and files alike) `pid` has made so far. */
export function writeCalls(pid: number): number {
  try {
    return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}
/** Minor page faults of `pid` so far (/proc/<pid>/stat field 10). */
export function minorFaults(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
  } catch {
    return NaN;
  }
}
export const pids = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
/** The PostgreSQL server's CPU so far: the postmaster (with the backends it reaped) and its live children. */
export const postgresCpu = (postmaster: number) => {
  const pm = procStat(postmaster)!;
  return pm.us + pm.childUs + pids().reduce((sum, p) => { const s = procStat(p); return s?.ppid === postmaster ? sum + s.us : sum; }, 0);
};
export function natsPid(natsUrl: string): number | undefined {
  const candidates = pids().filter((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'nats-server'; } catch { return false; } });
  const port = new URL(natsUrl).port || '4222';
  return candidates.find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').some((a) => a === port || a.endsWith(`:${port}`))) ?? (candidates.length === 1 ? candidates[0] : undefined);
}

/** The PostgreSQL server's postmaster, found as the parent of one of `pool`'s backends. */
export async function postmasterOf(pool: { query: <R>(sql: string) => Promise<{ rows: R[] }> }): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return procStat(Number(rows[0]!.pid))!.ppid;
}

/** CPU µs so far of this process, the PostgreSQL server and nats-server (when found), to subtract. */
export function cpuNow(postmaster: number, nats: number | undefined): { node: number; postgres: number; nats: number } {
  const u = process.cpuUsage();
  return { node: u.user + u.system, postgres: postgresCpu(postmaster), nats: nats ? procStat(nats)!.us : Number.NaN };
}
