"""Real Salt's local_cache, timed at the returner level (the comparison for bench/jobs.sh).

Run with the real-salt venv's python (salt 3008.4):

    /var/tmp/real-salt-bench/venv/bin/python bench/salt_local_cache.py CACHEDIR JOBS [RETURNS]

Fills CACHEDIR/jobs (Salt's own directory format: jobs/<hash[:2]>/<hash[2:]>/{jid,.load.p,
.minions.p,<minion>/return.p}) through salt.returners.local_cache itself (prep_jid, save_load
with the expected minions, returner), with JOBS jobs shaped like bench_local_cache's (one
expected minion and one return each, the same function mix) plus one job with RETURNS returns
(default 10,000). An existing cache (CACHEDIR/jobs present) is reused as it is, so a master can be
pointed at the same directory afterwards (bench/jobs.sh does).

Then it times, cold-ish (first run) and warm (median of the rest):
  - get_jids()                   what `salt-run jobs.list_jobs` calls (reads every job's load)
  - get_jids_filter(100)         what `salt-run jobs.list_jobs_filter 100` calls (same walk)
  - get_jid(<big jid>)           what `salt-run jobs.lookup_jid` calls
and prints one line of JSON (figures in milliseconds), the big job's jid included.
"""

import datetime
import json
import os
import statistics
import sys
import time

import salt.returners.local_cache as local_cache

FILL_REPORT = 10_000


def jid_of(n):
    """Jids 7 ms apart from 2026-01-01, as bench_local_cache makes them."""
    base = datetime.datetime(2026, 1, 1)
    return (base + datetime.timedelta(milliseconds=7 * n)).strftime("%Y%m%d%H%M%S%f")


def fun_of(n):
    """bench_local_cache's function mix."""
    if n % 100_000 == 50_000:
        return "pkg.install"
    return {0: "test.ping", 1: "test.ping", 2: "test.ping", 3: "test.ping", 4: "test.ping",
            5: "cmd.run", 6: "cmd.run", 7: "state.apply"}.get(n % 10, "saltutil.find_job")


def publish(jid, fun):
    return {"cmd": "publish", "tgt": "web*", "fun": fun, "arg": ["uptime"], "tgt_type": "glob",
            "ret": "", "jid": jid, "user": "root",
            "kwargs": {"show_timeout": True, "show_jid": False, "delimiter": ":",
                       "gather_job_timeout": 10}}


def ret(jid, minion, fun):
    return {"cmd": "_return", "id": minion, "jid": jid, "fun": fun, "fun_args": ["uptime"],
            "user": "root",
            "return": " 10:01:02 up 12 days,  3:04,  1 user,  load average: 0.00, 0.01, 0.05",
            "retcode": 0, "success": True, "_stamp": "2026-01-01T00:00:00.000000"}


def store(jid, fun, minions):
    """One job as the master stores it: prep_jid, save_load (with the expected minions)."""
    local_cache.prep_jid(passed_jid=jid)
    local_cache.save_load(jid, publish(jid, fun), minions=minions)


def timed(f, runs):
    """(first run, median of the other runs, last result) in milliseconds."""
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append((time.perf_counter() - t) * 1e3)
    return times[0], statistics.median(times[1:] if runs > 1 else times), out


def main():
    cachedir, jobs = sys.argv[1], int(sys.argv[2])
    big_returns = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
    # What the loader would give the module: only the keys local_cache reads.
    local_cache.__opts__ = {
        "cachedir": cachedir,
        "hash_type": "sha256",
        "keep_jobs_seconds": 0,
        "job_cache_store_endtime": False,
        "unique_jid": False,
    }
    big = jid_of(jobs + 1)
    report = {"jobs": jobs, "big_returns": big_returns, "big_jid": big}

    if not os.path.isdir(os.path.join(cachedir, "jobs")):
        t = time.perf_counter()
        for n in range(jobs):
            jid, fun, minion = jid_of(n), fun_of(n), "web%d" % (n % 1000)
            store(jid, fun, [minion])
            local_cache.returner(ret(jid, minion, fun))
            if (n + 1) % FILL_REPORT == 0:
                print("%d jobs in %.0f s" % (n + 1, time.perf_counter() - t), file=sys.stderr)
        report["fill_jobs_s"] = time.perf_counter() - t
        ids = ["minion%05d" % i for i in range(big_returns)]
        store(big, "cmd.run", ids)
        t = time.perf_counter()
        for minion in ids:
            local_cache.returner(ret(big, minion, "cmd.run"))
        report["fill_big_s"] = time.perf_counter() - t

    # Fewer runs where one run takes seconds.
    runs = 5 if jobs <= 10_000 else 3
    first, median, out = timed(local_cache.get_jids, runs)
    assert len(out) == jobs + 1, len(out)
    report["get_jids_ms"] = {"first": first, "median": median, "runs": runs}
    first, median, out = timed(lambda: local_cache.get_jids_filter(100), runs)
    not_find_job = sum(fun_of(n) != "saltutil.find_job" for n in range(jobs)) + 1
    assert len(out) == min(100, not_find_job), len(out)
    report["get_jids_filter_100_ms"] = {"first": first, "median": median, "runs": runs}
    first, median, out = timed(lambda: local_cache.get_jid(big), 5)
    assert len(out) == big_returns, len(out)
    report["get_jid_big_ms"] = {"first": first, "median": median, "runs": 5}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
