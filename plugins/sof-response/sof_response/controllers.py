"""The shipped generation controller (SAM's TPV hook): stop on a token budget or on loops.

``StopController`` ends generation when the answer reaches ``max_tokens`` pieces or when the
same run of ``ngram`` words has appeared ``max_repeats`` times (a model stuck in a loop).
Enable it with ``use_tpv_control = true`` (or ``SOF_USE_TPV_CONTROL=1``); ``controller``
(``SOF_TPV_CONTROLLER``) picks a controller by name, "stop" by default.
"""

from __future__ import annotations

from collections import Counter

from sof_response.protocols import GenerationContext, GenerationResult
from sof_response.settings import ResponseSettings


class StopController:
    """Stops a generation that runs too long or starts repeating itself.

    One object per generation: ``fresh()`` returns a new one with the same limits, and the
    response skill calls it each time, so concurrent runs never share counters.
    """

    name = "stop"

    def __init__(self, max_tokens: int = 512, max_repeats: int = 3, ngram: int = 4) -> None:
        if max_tokens < 1 or max_repeats < 1 or ngram < 1:
            raise ValueError("max_tokens, max_repeats and ngram must all be at least 1")
        self.max_tokens = max_tokens
        self.max_repeats = max_repeats
        self.ngram = ngram
        self.stop_reason: str | None = None
        self.tokens = 0
        self._consumed = 0  # chars of text_so_far already split into words
        self._words: list[str] = []
        self._seen: Counter[tuple[str, ...]] = Counter()

    def with_settings(self, settings: ResponseSettings) -> StopController:
        return StopController(settings.tpv_max_tokens, settings.tpv_max_repeats, settings.tpv_ngram)

    def fresh(self) -> StopController:
        return StopController(self.max_tokens, self.max_repeats, self.ngram)

    # --- the controller protocol ---------------------------------------------------------

    def on_start(self, context: GenerationContext) -> None:
        self.stop_reason = None
        self.tokens = 0
        self._consumed = 0
        self._words.clear()
        self._seen.clear()

    def on_token(self, token: str, text_so_far: str) -> bool:
        """Continue unless this token exceeds the budget or completes a repeated n-gram."""
        self.tokens += 1
        if self.tokens > self.max_tokens:
            self.stop_reason = f"max_tokens ({self.max_tokens}) reached"
            return False
        if self._repeating(text_so_far):
            self.stop_reason = (
                f"repetition: {' '.join(self._words[-self.ngram:])!r} "
                f"seen {self.max_repeats} times"
            )
            return False
        return True

    def on_end(self, result: GenerationResult) -> None:
        if self.stop_reason:
            result.metadata["controller_stop_reason"] = self.stop_reason

    # --- helpers -------------------------------------------------------------------------

    def _repeating(self, text: str) -> bool:
        """Count n-grams of complete words only (the last word may still be growing)."""
        end = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
        if end <= self._consumed:
            return False
        for word in text[self._consumed:end].split():
            self._words.append(word.lower().strip(".,;:!?\"'()[]"))
            if len(self._words) >= self.ngram:
                gram = tuple(self._words[-self.ngram:])
                self._seen[gram] += 1
                if self._seen[gram] >= self.max_repeats:
                    self._consumed = end
                    return True
        self._consumed = end
        return False


__all__ = ["StopController"]
