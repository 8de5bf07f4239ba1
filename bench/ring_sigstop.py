#!/usr/bin/python3
"""A stopped (SIGSTOP) or killed (SIGKILL) rank must not hang the others: a check of the TCP ring across real processes.

Starts 3 `moco-bench allreduce-rank` processes on 127.0.0.1 with a short operation timeout, acts as their
coordinator (collects the listeners, hands out the ring), lets them all-reduce 64 MiB tensors, then sends
rank 2 the signal, and checks that ranks 0 and 1 exit with an error within the timeout plus slack, naming
rank 2 and its address: rank 0 (its successor, which waits for its data) when it is stopped, at least one of
them when it is killed (rank 1 sees the connection reset and hangs up, so rank 0 may first see rank 1 go).
A stopped rank is noticed when the timeout passes; a killed one at once. Prints what each rank said. Exit code
0 when the check holds.

usage: /usr/bin/python3 bench/ring_sigstop.py [path/to/moco-bench] [--timeout SECONDS] [--signal STOP|KILL]
"""
import os
import secrets
import signal
import subprocess
import sys
import time

BENCH = next((a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and not sys.argv[i - 1].startswith("--")),
             "bench/MoCo.Bench/bin/Release/net10.0/moco-bench")
TIMEOUT = int(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 3
SIGNAL = sys.argv[sys.argv.index("--signal") + 1] if "--signal" in sys.argv else "STOP"
SLACK = 10
WORLD = 3


def main():
    ranks = [subprocess.Popen(
        [BENCH, "allreduce-rank", "--rank", str(r), "--world", str(WORLD), "--sizes", ",".join(["64"] * 20),
         "--warmup", "1", "--timeout", str(TIMEOUT)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(WORLD)]
    try:
        endpoints = []
        for r, p in enumerate(ranks):
            line = p.stdout.readline().split()
            if line[:1] != ["listening"]:
                sys.exit(f"rank {r} printed {line} where 'listening HOST:PORT' was due")
            endpoints.append(line[1])
        ring = f"ring {secrets.token_hex(32)} {' '.join(endpoints)}\n"
        for p in ranks:
            p.stdin.write(ring)
            p.stdin.flush()
        first = ranks[0].stdout.readline()  # rank 0's first measurement: the ring works
        print(f"rank 0 measured: {first.strip()}")
        os.kill(ranks[2].pid, getattr(signal, "SIG" + SIGNAL))
        stopped = time.monotonic()
        print(f"rank 2 (pid {ranks[2].pid}, {endpoints[2]}) sent SIG{SIGNAL}")
        ok = True
        named = []
        for r in (0, 1):
            try:
                ranks[r].wait(timeout=TIMEOUT + SLACK)
            except subprocess.TimeoutExpired:
                print(f"FAIL: rank {r} still running {TIMEOUT + SLACK} s after the stop")
                ok = False
                continue
            took = time.monotonic() - stopped
            said = [l for l in ranks[r].stderr.read().splitlines() if l.startswith("ring failed")][:1]
            print(f"rank {r} exited with {ranks[r].returncode} after {took:.1f} s: {' | '.join(said)}")
            ok &= ranks[r].returncode != 0
            named.append(any(f"rank 2 at {endpoints[2]}" in l for l in said))
        ok &= named[0] if SIGNAL == "STOP" else any(named)
        print("OK" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for p in ranks:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
