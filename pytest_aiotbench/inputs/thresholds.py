"""Accuracy thresholds relative to another case of the same model in the same run (MLPerf's rule: a quantized model
must keep >= 99 % of its FP32 accuracy), e.g. ``min_top1 = "99% of tflite-fp32"``.

An absolute top-1 floor carries the sampling error of the dataset (on 500 images the 95 % interval is about
+-4 points), and a subset can be easier or harder than the full set; the float model measured on the same images in
the same run moves with both, so a variant's loss *relative* to it is what a gate can hold.

Syntax: ``"P% of REF"``. REF names the reference case of the same model: ``FRAMEWORK-QUANT`` (``tflite-fp32``) or
just ``QUANT`` (``fp32``: the same framework's case). The reference is resolved when the catalog is read (a missing
one is a catalog error), runs before the cases that need it (:func:`order_items`), and a case whose reference was
not measured earlier in the run fails with the reason; it never passes unchecked.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*of\s+([A-Za-z0-9_.\-]+)\s*$")


@dataclass(frozen=True)
class RelativeThreshold:
    fraction: float  # 0.99 for "99% of ..."
    reference: str  # as written: "fp32" or "tflite-fp32"
    reference_id: str | None = None  # the resolved case id, e.g. "squeezenet-tflite-fp32"

    @property
    def text(self) -> str:
        return f"{self.fraction * 100:g}% of {self.reference_id or self.reference}"


class ReferenceMissing(Exception):
    """The reference case of a relative threshold has no top-1 in this run; the message says why."""


def parse_relative(value) -> RelativeThreshold | None:
    """A catalog ``min_top1`` value: None for a number (an absolute threshold, checked by the catalog) or absent;
    a RelativeThreshold for ``"P% of REF"``. Raises ValueError for any other string."""
    if not isinstance(value, str):
        return None
    match = _RELATIVE.match(value)
    if not match:
        raise ValueError("expected a number in [0, 1] or 'P% of REF' (e.g. '99% of fp32' or '99% of tflite-fp32')")
    percent = float(match.group(1))
    if not 0 < percent <= 100:
        raise ValueError("the percentage must be in (0, 100]")
    return RelativeThreshold(percent / 100, match.group(2))


def resolve(cases: list, where: str) -> list:
    """Bind every relative threshold of ``cases`` (one catalog) to its reference case's id. Raises ValueError
    naming the case when the reference is not in the catalog, is the case itself, or is relative too."""
    by_id = {c.id: c for c in cases}
    out = []
    for case in cases:
        rule = case.min_top1_rule
        if rule is None:
            out.append(case)
            continue
        candidates = [f"{case.model}-{rule.reference}", f"{case.model}-{case.framework}-{rule.reference}"]
        ref = next((by_id[c] for c in candidates if c in by_id), None)
        if ref is None:
            raise ValueError(f"{where}: {case.id}: min_top1 = '{rule.text}': no case {' or '.join(candidates)} "
                             f"in this catalog")
        if ref.id == case.id or ref.min_top1_rule is not None:
            raise ValueError(f"{where}: {case.id}: min_top1 = '{rule.text}': the reference {ref.id} must be "
                             f"another case with an absolute (or no) threshold")
        out.append(dataclasses.replace(case, min_top1_rule=dataclasses.replace(rule, reference_id=ref.id)))
    return out


@dataclass(frozen=True)
class Requirement:
    """The top-1 one case must reach, and why: the one answer every path reads (the measured entry, a skipped or
    failed case's entry, the check that fails a case)."""
    required: float | None = None  # None: no threshold, or a relative one whose reference is missing
    rule: RelativeThreshold | None = None
    reference_top1: float | None = None  # the reference case's measured top-1 (relative rules)
    missing: str | None = None  # why a relative rule has no reference: the case fails saying this, never passes

    def entry_fields(self) -> dict:
        """The entry's ``min_top1``, ``min_top1_rule``, ``min_top1_reference``."""
        return {"min_top1": self.required, "min_top1_rule": self.rule.text if self.rule else None,
                "min_top1_reference": {"id": self.rule.reference_id, "top1": self.reference_top1}
                if self.rule is not None and self.reference_top1 is not None else None}

    def failure(self, case_id: str, top1: float | None, images: int) -> str | None:
        """Why the case fails its threshold, or None. A case that was not scored (no labels, random weights) has
        nothing to hold to a threshold."""
        if top1 is None:
            return None
        if self.missing is not None:
            return self.missing
        if self.required is not None and top1 < self.required:
            because = f" = {self.rule.text}'s top-1 {self.reference_top1:.4f}" if self.rule is not None else ""
            return f"{case_id}: top-1 {top1:.4f} < required {self.required:.4f}{because} on {images} images"
        return None


def requirement(case, override: float | None = None, reference: dict | None = None) -> Requirement:
    """``case``'s threshold: ``override`` (--aiotbench-min-top1) over every catalog threshold; else the catalog's
    absolute ``min_top1``; else ``P% of REF`` of ``reference``, the entry REF's case recorded earlier in this run
    on the same device (None: not measured)."""
    if override is not None or case.min_top1_rule is None:
        return Requirement(override if override is not None else case.min_top1)
    rule = case.min_top1_rule
    try:
        top1 = _reference_top1(case, reference)
    except ReferenceMissing as exc:
        return Requirement(None, rule, None, str(exc))
    return Requirement(rule.fraction * top1, rule, top1)


def _reference_top1(case, entry: dict | None) -> float:
    """The top-1 the reference case measured earlier in this run. Raises ReferenceMissing when it was not
    measured, did not pass (failed, errored, skipped: e.g. its outputs were not finite), or measured a top-1 that
    is no reference (0 or not finite: a share of it would be a threshold of 0 that anything passes)."""
    rule = case.min_top1_rule
    needs = f"{case.id}: min_top1 = '{rule.text}' needs {rule.reference_id}"
    status = entry.get("status") if entry else None
    if entry is not None and status not in (None, "passed"):
        said = {"skipped": "was skipped", "error": "errored"}.get(status, status)
        raise ReferenceMissing(f"{needs} to pass earlier in this run, and it {said}: "
                               f"{entry.get('reason') or 'no reason recorded'}")
    if entry is None or entry.get("top1") is None:
        raise ReferenceMissing(
            f"{needs} measured earlier in this run, and it was not: select it too (-k), make it runnable, or "
            f"under xdist keep a model's cases on one worker (--dist loadgroup)")
    top1 = entry["top1"]
    if not isinstance(top1, (int, float)) or not math.isfinite(top1) or top1 <= 0:
        raise ReferenceMissing(f"{needs}, whose top-1 is {top1}: a share of it is no threshold (check "
                               f"{rule.reference_id}'s model and preprocessing)")
    return float(top1)


def order_items(items: list, case_of) -> list:
    """The collected items, each relative-threshold case moved right after its reference (same device) when it
    came before it; everything else keeps its order. ``case_of(item)`` -> (case, device) or None."""
    emitted: set = set()
    waiting: dict = {}
    out = []

    def emit(item) -> None:
        out.append(item)
        key = case_of(item)
        if key is not None:
            ident = (key[0].id, key[1])
            emitted.add(ident)
            for waiter in waiting.pop(ident, []):
                emit(waiter)

    for item in items:
        key = case_of(item)
        rule = key[0].min_top1_rule if key is not None else None
        if rule is not None and (rule.reference_id, key[1]) not in emitted:
            waiting.setdefault((rule.reference_id, key[1]), []).append(item)
        else:
            emit(item)
    for waiters in waiting.values():  # reference not collected: they run last and fail saying so
        out.extend(waiters)
    return out
