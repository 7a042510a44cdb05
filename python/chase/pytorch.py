"""The usual PyTorch loop under a TrainingController, without changing its body:

    controller = chase.TrainingController(gpus, policy="chase", carbon="electricitymaps")
    for epoch in chase.pytorch.epochs(controller, num_epochs):
        for images, labels in chase.pytorch.steps(controller, loader):
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad(); loss.backward(); optimizer.step()
    print(controller.report())

epochs() calls on_train_begin before the first epoch, on_epoch_begin/on_epoch_end around each and
on_train_end after the last; steps() calls on_step_begin before handing out a batch and
on_step_end when the body asks for the next one. A loop left early (break, an exception,
KeyboardInterrupt) closes the controller, which restores the power limits.
Nothing here needs torch itself: any iterable of batches works (a DataLoader, a list).

PyTorch Lightning: a Callback forwarding on_train_start / on_train_epoch_start /
on_train_batch_start / on_train_batch_end / on_train_epoch_end / on_train_end to the controller's
hooks of the same meaning (docs/PYTHON.md shows it).
"""


def epochs(controller, count):
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int, got {type(count).__name__}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    finished = False
    try:
        controller.on_train_begin()
        for epoch in range(count):
            controller.on_epoch_begin()
            yield epoch
            controller.on_epoch_end()
        controller.on_train_end()
        finished = True
    finally:
        if not finished:
            controller.close()


def steps(controller, iterable):
    finished = False
    try:
        for batch in iterable:
            controller.on_step_begin()
            yield batch
            controller.on_step_end()
        finished = True
    finally:
        if not finished:
            controller.close()
