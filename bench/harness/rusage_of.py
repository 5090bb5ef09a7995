#!/usr/bin/env python3
"""Runs a command niced, its output to LOG, and prints its wall time and
resource usage (wait4) as JSON: `rusage_of.py LOG -- CMD...`.

A process's peak RSS (ru_maxrss) starts at its parent's RSS when it is
forked: a child of the whole-index harness, which holds the listing of a
200,000-project store, would report the harness's memory as its own. This
small process starts the command instead, so the figure is the command's.
"""

import json
import os
import sys
import time


def main() -> None:
    log_path, separator, *cmd = sys.argv[1:]
    if separator != "--" or not cmd:
        raise SystemExit(__doc__)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        log_file = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log_file, 1)
        os.dup2(log_file, 2)
        os.nice(10)
        os.execvp(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - started
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
                      "voluntary_switches": usage.ru_nvcsw, "maxrss_kb": usage.ru_maxrss}))


if __name__ == "__main__":
    main()
