"""Real Salt's mysql returner (saltext-mysql, through PyMySQL), timed at the returner level:
the comparison for bench_returners' "Salt's way" rows.

Run with the real-salt venv's python (salt 3008.4, saltext.mysql 1.1.0, PyMySQL 1.2.4):

    /var/tmp/real-salt-bench/venv/bin/python bench/salt_mysql_returner.py [RETURNS] [RUNS]

Creates a database and a user on the MariaDB server at BENCH_MYSQL_HOST:BENCH_MYSQL_PORT
(default 127.0.0.1:3306, administered as root without a password), with Salt's schema (the
schema command's utf8mb4 variant of Salt's DDL, as bench_returners uses), and loads Salt's
returner through Salt's own loader (salt.loader.returners), so `__context__` keeps its one
cached connection as it does in a master or minion process. Then, RUNS times (default 5), with
the tables emptied before each run and the stored row count checked after it, it times RETURNS
returns (default 1,000) of one job, the same ~300-byte master-side return bench_returners stores:

  - returner:          mysql.returner(ret) per return (minion-side `--return mysql`; Salt's
                       returner does ping + INSERT + COMMIT each time)
  - master_job_cache:  mysql.save_load(jid, ret) then mysql.returner(ret) per return, which is
                       what salt.utils.job.store_job does for every return when
                       `master_job_cache: mysql` (two commits per return)

and prints one line of JSON: returns/s, median of the runs. The database and user are dropped
at the end.
"""

import datetime
import importlib.metadata
import json
import os
import statistics
import sys
import time

import pymysql
import salt.config
import salt.loader

HOST = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
PORT = int(os.environ.get("BENCH_MYSQL_PORT", "3306"))
DB = f"saltpy_bench_ret_{os.getpid()}"
USER = f"saltpy_bench_{os.getpid()}"
PASSWORD = "salt"

# Salt's documented salt_returns and jids tables, in utf8mb4 (as our schema command makes them).
DDL = [
    """CREATE TABLE `jids` (
  `jid` varchar(255) NOT NULL,
  `load` mediumtext NOT NULL,
  UNIQUE KEY `jid` (`jid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE `salt_returns` (
  `fun` varchar(50) NOT NULL,
  `jid` varchar(255) NOT NULL,
  `return` mediumtext NOT NULL,
  `id` varchar(255) NOT NULL,
  `success` varchar(10) NOT NULL,
  `full_ret` mediumtext NOT NULL,
  `alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  KEY `id` (`id`),
  KEY `jid` (`jid`),
  KEY `fun` (`fun`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
]


def master_return(jid, n):
    """bench_returners' return: the transcript's cmd.run full_ret, as the master stores it."""
    return {"cmd": "_return", "id": f"minion{n:04d}", "success": True,
            "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
            "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "user": "root",
            "_stamp": "2026-11-25T00:39:16.909909+00:00", "ts": 1795567156}


def jid_for(run):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(milliseconds=7 * run)
    return t.strftime("%Y%m%d%H%M%S%f")


def admin(db=None):
    return pymysql.connect(host=HOST, port=PORT, user="root", database=db, autocommit=True)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = max(1, int(sys.argv[2]) if len(sys.argv) > 2 else 5)

    with admin() as c, c.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{DB}` DEFAULT CHARACTER SET utf8mb4")
        cur.execute(f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT ALL ON `{DB}`.* TO '{USER}'@'%'")
    try:
        with admin(DB) as c, c.cursor() as cur:
            for stmt in DDL:
                cur.execute(stmt)

        opts = salt.config.minion_config(None)
        opts.update({"mysql.host": HOST, "mysql.port": PORT, "mysql.user": USER,
                     "mysql.pass": PASSWORD, "mysql.db": DB})
        returners = salt.loader.returners(opts, {})
        returner = returners["mysql.returner"]
        save_load = returners["mysql.save_load"]

        def run_returner(rets):
            for ret in rets:
                returner(ret)

        def run_master_job_cache(rets):
            for ret in rets:
                save_load(ret["jid"], ret)
                returner(ret)

        result = {"returns": n, "runs": runs, "salt": salt.version.__version__,
                  "saltext.mysql": importlib.metadata.version("saltext.mysql"),
                  "PyMySQL": importlib.metadata.version("PyMySQL")}
        for name, fn in [("returner", run_returner), ("master_job_cache", run_master_job_cache)]:
            rates = []
            for run in range(runs):
                with admin(DB) as c, c.cursor() as cur:
                    cur.execute("TRUNCATE TABLE salt_returns")
                    cur.execute("TRUNCATE TABLE jids")
                jid = jid_for(run)
                rets = [master_return(jid, i) for i in range(n)]
                start = time.perf_counter()
                fn(rets)
                elapsed = time.perf_counter() - start
                with admin(DB) as c, c.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM salt_returns WHERE jid = %s", (jid,))
                    stored = cur.fetchone()[0]
                if stored != n:
                    sys.exit(f"{name}: {stored} returns stored, {n} expected")
                rates.append(n / elapsed)
                print(f"{name} run {run}: {n / elapsed:.0f} returns/s", file=sys.stderr)
            result[name] = round(statistics.median(rates))
        print(json.dumps(result))
    finally:
        with admin() as c, c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DB}`")
            cur.execute(f"DROP USER IF EXISTS '{USER}'@'%'")


if __name__ == "__main__":
    main()
