"""Shared by the examples: the simulated job (GPUs, virtual clock, synthetic carbon) and the CNN."""

import chase

START = chase.to_unix_seconds("2026-01-01T00:00:00Z")


def synthetic_carbon():
    """Synthetic, labelled so: 30-min periods alternating 120 and 520 gCO2eq/kWh for two days."""
    times = [START + 1800 * i for i in range(96)]
    values = [120.0 if i % 2 == 0 else 520.0 for i in range(96)]
    return chase.CarbonSeries(times, values, 1800,
                              "synthetic alternating intensity (made-up numbers)")


class SimulatedJob:
    """GPUs without hardware, in virtual time: each step stands for ``step_seconds`` of GPU work at
    the highest limit and takes longer at lower limits, as the power-limit profile says."""

    def __init__(self, gpu_count=1, step_seconds=120.0, power_scale=1.0):
        self.carbon = synthetic_carbon()
        self.clock = chase.ManualClock(self.carbon.start)
        self.profile = chase.synthetic_demo_profile()
        if power_scale != 1.0:  # the same speed, another power draw (another rank's GPUs)
            self.profile = chase.PowerProfile(
                [(limit, speed, power * power_scale) for limit, speed, power in self.profile.points],
                self.profile.gpu, self.profile.workload + " (power scaled)")
        self.gpus = chase.simulated_gpus(gpu_count, self.profile, self.clock)
        self.gpus.set_all_busy(True)
        self.samples_per_step = step_seconds * self.profile.throughput_at(self.profile.max_limit_w)

    def run_step(self):
        """The GPU's share of a step: advance virtual time by the step's duration at its limit."""
        self.clock.advance(self.samples_per_step / self.gpus.throughput(0))


def make_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 2))


def synthetic_batch(torch, n):
    """16x16 noise with a bright 4x4 square; label 1 when the square is in the top half."""
    images = 0.3 * torch.rand(n, 1, 16, 16)
    rows = torch.randint(0, 13, (n,))
    cols = torch.randint(0, 13, (n,))
    for i in range(n):
        images[i, 0, rows[i]:rows[i] + 4, cols[i]:cols[i] + 4] += 1.0
    labels = (rows + 2 < 8).long()
    return images, labels
