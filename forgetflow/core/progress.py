"""Progress bars for the long steps (data preparation, training, unlearning, evaluation).

They go to stderr and only when a person is watching: FORGETFLOW_PROGRESS=auto (default) shows
them when stderr is a terminal, `off` never (what `--json` sets), `on` always.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

PROGRESS_ENV = "FORGETFLOW_PROGRESS"
T = TypeVar("T")


def progress_enabled() -> bool:
    mode = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if mode in ("0", "off", "false", "no"):
        return False
    if mode in ("1", "on", "true", "yes"):
        return True
    return sys.stderr.isatty()


def progress_bar(total: int, desc: str, unit: str = "step") -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(),
                leave=False, file=sys.stderr, dynamic_ncols=True)


def progress_iter(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate `items` with a bar that advances once per item."""
    items = list(items) if total is None else items
    with progress_bar(total if total is not None else len(items), desc) as bar:  # type: ignore[arg-type]
        for item in items:
            yield item
            bar.update(1)


def quiet_for_json(argv: list[str]) -> None:
    """`--json` output is for machines: no bars unless FORGETFLOW_PROGRESS says otherwise."""
    if "--json" in argv:
        os.environ.setdefault(PROGRESS_ENV, "off")
