"""A small CNN trained with PyTorch while chase chooses the GPU power limit.

The network really trains (on the CPU, on synthetic images: is the bright square in the top half?).
With --simulate (the default) the GPUs are simulated in virtual time: each step stands for
--step-seconds of GPU work at the highest limit and takes longer at lower limits, so a run of a few
seconds covers hours of (synthetic) carbon intensity and the controller profiles every limit, then
follows the policy. With --real the controller drives this machine's GPUs through NVML (the model
moves to CUDA) and reads the carbon intensity from --carbon (a provider name or a CSV).
The last line printed is the run report as JSON (all numbers simulated with --simulate).

    python3 examples/python/pytorch_loop.py [--epochs 3] [--steps 40] [--policy chase]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import chase  # noqa: E402
import chase.pytorch  # noqa: E402
from _common import SimulatedJob, make_cnn, synthetic_batch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--simulate", dest="simulate", action="store_true", default=True)
    mode.add_argument("--real", dest="simulate", action="store_false")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--gpus", type=int, default=1, help="simulated GPUs")
    parser.add_argument("--step-seconds", type=float, default=120.0)
    parser.add_argument("--policy", default="chase", choices=chase.policy_names())
    parser.add_argument("--carbon", default=None, help="--real: provider name or CSV")
    args = parser.parse_args()
    torch.manual_seed(0)

    if args.simulate:
        job = SimulatedJob(args.gpus, args.step_seconds)
        controller = chase.TrainingController(
            job.gpus, policy=args.policy, carbon=job.carbon, clock=job.clock,
            total_steps=args.epochs * args.steps, warmup_steps=2, profile_steps=3)
        device = torch.device("cpu")
    else:
        job = None
        controller = chase.TrainingController(
            chase.open_nvml(), policy=args.policy, carbon=args.carbon,
            total_steps=args.epochs * args.steps)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    model = make_cnn(torch).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = range(args.steps)
    with controller:
        for epoch in chase.pytorch.epochs(controller, args.epochs):
            loss_sum = 0.0
            for _ in chase.pytorch.steps(controller, batches):
                images, labels = synthetic_batch(torch, args.batch)
                loss = loss_fn(model(images.to(device)), labels.to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss_sum += loss.item()
                if job:
                    job.run_step()
            print(f"epoch {epoch}: mean loss {loss_sum / args.steps:.4f}", flush=True)

    with torch.no_grad():
        images, labels = synthetic_batch(torch, 512)
        accuracy = (model(images.to(device)).argmax(1).cpu() == labels).double().mean().item()
    print(f"held-out accuracy {accuracy:.3f}")
    if job:
        print(f"SIMULATED GPU, {job.carbon.source}:")
    print(json.dumps(controller.report()))


if __name__ == "__main__":
    main()
