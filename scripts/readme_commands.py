"""Print command N (1: the main job, 2: the tests) of the README's "Two commands" block.

CI runs these exact lines (`.ci/run`), so the README and CI cannot drift apart.
Usage: python scripts/readme_commands.py N [README]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(readme: Path = README) -> list[str]:
    """[command 1, command 2]: under "## Two commands", the line after the comment "# 1." and
    the line after "# 2." in the bash blocks (the venv line before them is no command of
    its own: both assume the fresh venv it makes)."""
    text = readme.read_text()
    section = re.search(r"^## Two commands\n(.*?)(?=^## )", text, re.S | re.M)
    if section is None:
        raise ValueError(f'{readme}: no "## Two commands" section')
    blocks = re.findall(r"^```bash\n(.*?)^```", section.group(1), re.S | re.M)
    lines = [ln.strip() for block in blocks for ln in block.splitlines() if ln.strip()]
    commands = {}
    for here, after in zip(lines, lines[1:], strict=False):
        numbered = re.match(r"# ([12])\.", here)
        if numbered and not after.startswith("#"):
            commands[int(numbered.group(1))] = after
    if sorted(commands) != [1, 2]:
        raise ValueError(f'{readme}: "## Two commands" must hold "# 1." and "# 2.", each '
                         f"followed by its command (found {sorted(commands)})")
    return [commands[1], commands[2]]


if __name__ == "__main__":
    number = int(sys.argv[1])
    print(readme_commands(Path(sys.argv[2]) if len(sys.argv) > 2 else README)[number - 1])
