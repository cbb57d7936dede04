"""A griffe extension for the API reference: reads the reStructuredText habits of neuromorph's docstrings
as Markdown (mkdocs.yml: ``extensions`` of the mkdocstrings handler).

- ``:class:`~neuromorph.nn.LIF``` (any role) becomes ``LIF`` in code font (``~`` keeps the last name);
- a paragraph ending in ``::`` before an indented block ends in ``:``, and the block stays preformatted;
- a simple reStructuredText table (rows between ``=== ===`` rules) is shown preformatted;
- a list that starts right after a line of text gets the blank line Markdown needs to see a list.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const|ref):`(~?)([^`]+)`")
RULE = re.compile(r"^\s*=+(\s+=+)+\s*$")
ITEM = re.compile(r"^\s*(?:[-*]|\d+\.)\s+\S")


def _role(m: re.Match) -> str:
    name = m.group(2)
    return f"`{name.rsplit('.', 1)[-1] if m.group(1) else name}`"


def markdown(text: str) -> str:
    """The docstring ``text`` with the reStructuredText habits above turned into Markdown."""
    text = ROLE.sub(_role, text)
    lines = text.split("\n")
    out: list[str] = []
    in_table = False
    in_block = False  # inside an indented block after "::"
    block_indent = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if in_block and stripped and indent <= block_indent:
            in_block = False
        if RULE.match(line):
            if not in_table:  # the table starts at its first rule ...
                in_table = True
                if out and out[-1].strip():
                    out.append("")
            elif i + 1 == len(lines) or not lines[i + 1].strip():  # ... and ends at a rule before a blank line
                in_table = False
            out.append("    " + line)
            continue
        if in_table:
            out.append("    " + line)
            continue
        if stripped.endswith("::") and not in_block:
            in_block, block_indent = True, indent
            out.append(line[:-1] if stripped != "::" else "")
            continue
        if (not in_block and ITEM.match(line) and out and out[-1].strip() and not ITEM.match(out[-1])
                and len(out[-1]) - len(out[-1].lstrip()) == indent):
            out.append("")
        out.append(line)
    return "\n".join(out)


class RstAsMarkdown(griffe.Extension):
    """Rewrite every docstring once, before mkdocstrings parses it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
