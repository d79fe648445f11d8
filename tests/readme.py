"""The README's shell snippets, as a reader copies them: the tests run them instead of a paraphrase."""

from __future__ import annotations

import re


def bash_block(readme: str, heading: str) -> str:
    """The first ```bash block of ``readme`` after ``heading``."""
    return re.findall(r"```bash\n(.*?)```", readme[readme.index(heading):], re.S)[0]


def shell_functions(block: str, *names: str) -> str:
    """The definitions of the shell functions ``names`` in ``block`` (``name() {`` to the ``}`` at line start)."""
    return "\n".join(re.search(rf"^{name}\(\) \{{.*?^\}}$", block, re.S | re.M).group(0) for name in names)
