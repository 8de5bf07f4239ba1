#!/usr/bin/python3
"""All-reduce timing with PyTorch's Gloo backend, the baseline of `moco-bench allreduce`.

Run with Debian's interpreter (/usr/bin/python3, package python3-torch). Starts --world processes on this
machine, joined through a file store, and for each size all-reduces (sum) a float32 tensor of zeros:
--warmup untimed calls, then a barrier, then the timed calls. Rank 0 prints one JSON line per size with
the slowest rank's mean time per call and the CPU time per call summed over the ranks:
  {"procs": W, "bytes": B, "iters": N, "seconds": T, "cpu_seconds": C}
the same line moco-bench's own ranks print, so both sides are measured the same way.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_main(rank, world, store_path, sizes, iters, warmup):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + store_path, rank=rank, world_size=world)
    try:
        for size, count in zip(sizes, iters):
            elements = size // 4
            # correctness once per size: rank r contributes r + 1 everywhere
            check = torch.full((elements,), float(rank + 1), dtype=torch.float32)
            dist.all_reduce(check)
            expected = world * (world + 1) / 2
            if not bool((check == expected).all()):
                raise RuntimeError(f"gloo all-reduce of {size} bytes gave a wrong sum")
            tensor = torch.zeros(elements, dtype=torch.float32)
            for _ in range(warmup):
                dist.all_reduce(tensor)
            dist.barrier()
            cpu0 = time.process_time()
            start = time.perf_counter()
            for _ in range(count):
                dist.all_reduce(tensor)
            mean = (time.perf_counter() - start) / count
            cpu = (time.process_time() - cpu0) / count
            # every rank's mean time and CPU time: [time_0 .. time_W-1, cpu_0 .. cpu_W-1]
            shared = torch.zeros(2 * world, dtype=torch.float64)
            shared[rank] = mean
            shared[world + rank] = cpu
            dist.all_reduce(shared)
            if rank == 0:
                line = {"procs": world, "bytes": size, "iters": count,
                        "seconds": shared[:world].max().item(), "cpu_seconds": shared[world:].sum().item()}
                print(json.dumps(line), flush=True)
    finally:
        dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=int, required=True, help="number of processes")
    parser.add_argument("--sizes", required=True, help="comma-separated sizes in bytes (multiples of 4)")
    parser.add_argument("--iters", required=True, help="comma-separated timed calls, one per size")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    iters = [int(s) for s in args.iters.split(",")]
    if len(sizes) != len(iters) or any(s % 4 for s in sizes):
        sys.exit("--sizes and --iters need the same number of entries, and sizes must be multiples of 4 bytes")
    with tempfile.TemporaryDirectory(prefix="moco-gloo-") as directory:
        store = os.path.join(directory, "store")
        mp.spawn(rank_main, args=(args.world, store, sizes, iters, args.warmup), nprocs=args.world, join=True)


if __name__ == "__main__":
    main()
