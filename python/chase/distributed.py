"""Data parallel across processes: a chase Coordinator over torch.distributed
(chase/coordinator.h), so a ``torchrun --nproc_per_node N`` job makes one decision.

Every rank builds its TrainingController over its own GPUs (``gpu_indices=[local_rank]``, or
CUDA_VISIBLE_DEVICES) with ``coordinator=TorchDistributedCoordinator()``; the controllers then
call the same collectives at the same steps: combine() gives every rank the job's profiling window
(the slowest rank's time, the sum of energies, failed when any rank failed) and agree() gives every
rank rank 0's limit. The collectives run on the default process group (or ``group``) on CPU tensors
with gloo and on the current CUDA device with nccl; their timeout is the group's (the ``timeout``
of init_process_group). A collective that fails — a rank died or stopped calling the hooks — makes
the controller restore this rank's limits and raise chase.UnavailableError naming the failure.
"""

from . import _chase


class TorchDistributedCoordinator(_chase.Coordinator):
    def __init__(self, group=None):
        import torch
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "TorchDistributedCoordinator: torch.distributed is not initialised; call "
                "torch.distributed.init_process_group() first (torchrun sets the environment)")
        self._torch, self._dist, self._group = torch, dist, group
        super().__init__(dist.get_rank(group), dist.get_world_size(group))
        backend = dist.get_backend(group)
        if backend == "nccl":
            self._device = torch.device("cuda", torch.cuda.current_device())
        else:
            self._device = torch.device("cpu")
        # rank 0 of the group, as a global rank (broadcast names its source globally)
        self._root = 0 if group is None else dist.distributed_c10d.get_global_rank(group, 0)

    def combine(self, time_s, energy_j, failed):
        torch = self._torch
        local = torch.tensor([time_s, energy_j, 1.0 if failed else 0.0], dtype=torch.float64,
                             device=self._device)
        gathered = [torch.empty_like(local) for _ in range(self.size)]
        self._dist.all_gather(gathered, local, group=self._group)
        table = torch.stack(gathered).cpu()
        return (float(table[:, 0].max()), float(table[:, 1].sum()), bool(table[:, 2].max() > 0))

    def agree(self, value):
        torch = self._torch
        tensor = torch.tensor([value], dtype=torch.float64, device=self._device)
        self._dist.broadcast(tensor, src=self._root, group=self._group)
        return float(tensor.item())
