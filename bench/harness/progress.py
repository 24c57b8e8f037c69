"""Progress bars (tqdm on stderr): lively on a terminal, sparse when stderr is a file."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def bar(total: int, desc: str, unit: str) -> Any:
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5 if interactive else 15.0,
    )
