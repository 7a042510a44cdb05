"""Data-parallel training with torchrun: every rank runs a TrainingController over its own GPU and
the ranks agree through torch.distributed, so the job makes one decision.

    torchrun --nproc_per_node 2 examples/python/ddp_torchrun.py            # simulated, gloo, CPU
    torchrun --nproc_per_node 8 examples/python/ddp_torchrun.py --real     # NVML, nccl, CUDA

(Debian's torch 1.13 on Python 3.11: `python3 -m torch.distributed.run --redirects 2 --tee 2 ...`,
its launcher cannot parse the default "0" there.)

With --simulate (the default) each rank drives one simulated GPU in virtual time (rank r's draws
(r+1)*5 % more power, so the ranks measure different windows; they run in step, as DDP ranks do) and trains the CNN with DDP on the CPU.
Rank 0 prints the run report as JSON on its last line; every rank checks that it ran the same
limits as rank 0.
"""

import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import chase  # noqa: E402
import chase.pytorch  # noqa: E402
from chase.distributed import TorchDistributedCoordinator  # noqa: E402
from _common import SimulatedJob, make_cnn, synthetic_batch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--carbon", default=None, help="--real: provider name or CSV")
    args = parser.parse_args()

    backend = "nccl" if args.real else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=60))
    rank, local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    torch.manual_seed(rank)
    coordinator = TorchDistributedCoordinator()
    if args.real:
        torch.cuda.set_device(local_rank)
        job, device = None, torch.device("cuda", local_rank)
        controller = chase.TrainingController(chase.open_nvml(), gpu_indices=[local_rank],
                                              policy="chase", carbon=args.carbon,
                                              coordinator=coordinator)
    else:
        job = SimulatedJob(1, 60.0, power_scale=1 + 0.05 * (rank + 1))
        device = torch.device("cpu")
        controller = chase.TrainingController(job.gpus, policy="chase", carbon=job.carbon,
                                              clock=job.clock, warmup_steps=2, profile_steps=3,
                                              coordinator=coordinator)

    model = torch.nn.parallel.DistributedDataParallel(make_cnn(torch).to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    limits = []
    with controller:
        for epoch in chase.pytorch.epochs(controller, args.epochs):
            for _ in chase.pytorch.steps(controller, range(args.steps)):
                images, labels = synthetic_batch(torch, 32)
                loss = torch.nn.functional.cross_entropy(model(images.to(device)),
                                                         labels.to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                limits.append(controller.gpus.power_limit_w(0 if job else local_rank))
                if job:
                    job.run_step()
            if rank == 0:
                print(f"epoch {epoch}: loss {loss.item():.4f}", flush=True)

    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, limits)
    if any(other != gathered[0] for other in gathered):
        raise SystemExit(f"rank {rank}: the ranks ran different limits")
    if rank == 0:
        print(json.dumps(controller.report()), flush=True)
    # Every rank leaves together: a rank tearing its process group down while another still talks
    # through it can leave that one waiting.
    dist.barrier()
    dist.destroy_process_group()
    if backend == "gloo":
        # Debian's torch 1.13 can deadlock at interpreter exit with gloo: the DDP reducer's
        # destructor joins a gloo worker thread while holding the GIL, and that thread may be
        # freeing the last collective's tensors, which needs the GIL (seen with gdb in the tests:
        # ~ProcessGroupGloo -> thread::join against TensorImpl::destroy_pyobj_if_needed ->
        # PyEval_AcquireThread). Everything is done and printed, and the controller has restored
        # the limits (its `with` ended), so this process leaves without the teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
