"""A Hugging Face Trainer callback driving a chase TrainingController.

    trainer = Trainer(..., callbacks=[chase.huggingface.ChaseCallback(policy="chase",
                                                                       carbon="electricitymaps")])

It subclasses transformers.TrainerCallback when transformers is importable, and is the same
duck-typed object otherwise (the Trainer only calls the methods). The controller is made at
on_train_begin (with ``gpu_indices=[args.local_rank]`` in a distributed run unless given) from the
keyword arguments, which are TrainingController's; ``controller=`` passes a ready one instead.
on_step_begin/on_step_end are the Trainer's optimisation steps. At on_train_end the limits are
restored and ``report`` holds the run report (a dict).
"""

from .control import TrainingController

try:  # pragma: no cover - depends on the environment
    from transformers import TrainerCallback as _Base
except Exception:  # transformers missing or broken: the same methods, duck-typed
    _Base = object


class ChaseCallback(_Base):
    def __init__(self, controller=None, **controller_options):
        if controller is not None and controller_options:
            raise TypeError("ChaseCallback: pass either controller= or TrainingController options")
        if controller is not None and not isinstance(controller, TrainingController):
            raise TypeError(
                f"controller must be a chase.TrainingController, got {type(controller).__name__}")
        self.controller = controller
        self._options = controller_options
        self.report = None

    def _ensure(self, args):
        if self.controller is None:
            options = dict(self._options)
            local_rank = getattr(args, "local_rank", -1)
            if isinstance(local_rank, int) and local_rank >= 0 and "gpu_indices" not in options:
                options["gpu_indices"] = [local_rank]
            self.controller = TrainingController(**options)
        return self.controller

    def on_train_begin(self, args, state, control, **kwargs):
        self._ensure(args).on_train_begin()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self._ensure(args).on_epoch_begin()

    def on_step_begin(self, args, state, control, **kwargs):
        self.controller.on_step_begin()

    def on_step_end(self, args, state, control, **kwargs):
        self.controller.on_step_end()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.controller.on_epoch_end()

    def on_train_end(self, args, state, control, **kwargs):
        try:
            self.controller.on_train_end()
        finally:
            self.controller.close()
            self.report = self.controller.report()
