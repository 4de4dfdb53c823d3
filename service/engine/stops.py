"""Stopping some twins of a mixed batch while the others finish.

Owns: the two signals between the engine and its caller. `StopTwins` is what a
`between_steps` hook raises to stop the rows of some twins (a twin revoked while the batch
denoises): in a batch that still has other rows, those twins' rows read the base model's
zero lane from the next step on and their images are thrown away, never marked; when it
names every twin of the batch, the whole batch stops there, as any other exception from the
hook does. `PartialBatch` is what `Engine.generate_batch` raises when some items finished
and others were stopped (by `StopTwins`, or because their twin's adapter could not be
loaded): the finished items' results and each stopped item's error, by generation id. Must
never hold torch or pipeline state.
"""

from __future__ import annotations

from service.rendering import GenerationResult


class StopTwins(Exception):
    """Raised by a `between_steps` hook: stop the rows of these twins (twin id -> the error
    their items fail with). Raising it again for a twin already stopped changes nothing."""

    def __init__(self, errors: dict[str, BaseException]):
        super().__init__(", ".join(sorted(errors)))
        self.errors = dict(errors)


class PartialBatch(Exception):
    """Some items of a batch rendered and others were stopped. `results` holds one entry per
    item in order (None for a stopped item); `errors` maps each stopped item's generation id
    to the error it fails with."""

    def __init__(self, results: list[GenerationResult | None], errors: dict[str, BaseException]):
        super().__init__(f"{len(errors)} of {len(results)} items stopped")
        self.results = results
        self.errors = errors

    def outcome(self, generation_id: str) -> GenerationResult | BaseException:
        if generation_id in self.errors:
            return self.errors[generation_id]
        return next(r for r in self.results if r is not None and r.generation_id == generation_id)


__all__ = ["PartialBatch", "StopTwins"]
