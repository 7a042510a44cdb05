"""The Hugging Face Trainer callback, driven the way a Trainer drives it.

With transformers installed, pass ``chase.huggingface.ChaseCallback(...)`` in ``Trainer(...,
callbacks=[...])`` and the Trainer calls its methods. This example calls them itself, as the
Trainer would (train begin, per epoch, per optimisation step, train end), over a simulated GPU in
virtual time, so it runs without transformers and without a GPU. The last line is the run report.
"""

import json
import os
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chase.huggingface import ChaseCallback  # noqa: E402
from _common import SimulatedJob  # noqa: E402


def main():
    job = SimulatedJob(gpu_count=1, step_seconds=60.0)
    callback = ChaseCallback(gpus=job.gpus, policy="zeus", clock=job.clock,
                             warmup_steps=2, profile_steps=3)
    args, state, control = SimpleNamespace(local_rank=-1), SimpleNamespace(), SimpleNamespace()
    callback.on_train_begin(args, state, control)
    for _ in range(2):
        callback.on_epoch_begin(args, state, control)
        for _ in range(30):
            callback.on_step_begin(args, state, control)
            job.run_step()  # the Trainer's forward, backward and optimizer step
            callback.on_step_end(args, state, control)
        callback.on_epoch_end(args, state, control)
    callback.on_train_end(args, state, control)
    print(json.dumps(callback.report))


if __name__ == "__main__":
    main()
