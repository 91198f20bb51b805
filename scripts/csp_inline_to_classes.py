"""Move inline style attributes, <style> blocks and onclick="window.print()" out of the templates
(issue 12: the content security policy allows no inline script or style). Idempotent; rerun after a
merge brings new inline styles (tests/lims/test_security.py names any that are left).

    .venv/bin/python scripts/csp_inline_to_classes.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
CSS = ROOT / "static" / "css" / "lims.css"

# style attribute value -> utility classes (defined in lims.css, section "utilities").
CLASSES = {
    "margin-right:auto": "mr-auto",
    "margin:0 auto 0 0": "mr-auto m-0",
    "max-width:40rem": "w-40",
    "max-width:48rem": "w-48",
    "max-width:60rem": "w-60",
    "margin-top:0": "mt-0",
    "margin-top:1rem": "mt-1",
    "margin-top:1rem;max-width:40rem": "mt-1 w-40",
    "font-family:ui-monospace,monospace": "mono",
    "text-align:center": "center",
    "width:100%": "wide",
}
UTILITIES = """
/* utilities (inline style attributes moved here: the content security policy forbids them) */
.mr-auto { margin-right:auto; } .m-0 { margin:0; } .mt-0 { margin-top:0; } .mt-1 { margin-top:1rem; }
.w-40 { max-width:40rem; } .w-48 { max-width:48rem; } .w-60 { max-width:60rem; } .wide { width:100%; }
.mono { font-family:ui-monospace,monospace; } .center { text-align:center; }
"""

TAG = re.compile(r"<[a-zA-Z][^<>]*?\sstyle=\"([^\"]*)\"[^<>]*>")
STYLE_BLOCK = re.compile(r"\{% block head %\}<style>\n(.*?)</style>\{% endblock %\}\n?", re.S)


def convert_tag(match: re.Match) -> str:
    tag, style = match.group(0), match.group(1).strip().rstrip(";")
    if style.startswith("background:{{"):
        value = style.split(":", 1)[1]
        return tag.replace(f'style="{match.group(1)}"', f'data-colour="{value}"')
    if style not in CLASSES:
        raise SystemExit(f"No class for style={style!r} in {tag!r}: add one to CLASSES")
    tag = tag.replace(f' style="{match.group(1)}"', "")
    classes = CLASSES[style]
    if ' class="' in tag:
        return tag.replace(' class="', f' class="{classes} ', 1)
    return tag.replace(">", f' class="{classes}">', 1) if not tag.endswith("/>") else tag[:-2] + f' class="{classes}"/>'


def main() -> int:
    css = CSS.read_text()
    moved = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = original = path.read_text()
        for block in STYLE_BLOCK.findall(text):
            moved.append(f"/* from {path.relative_to(TEMPLATES)} */\n{block.strip()}\n")
        text = STYLE_BLOCK.sub("", text)
        text = TAG.sub(convert_tag, text)
        text = text.replace(' onclick="window.print()"', " data-print")
        if text != original:
            path.write_text(text)
            print("rewrote", path.relative_to(ROOT))
    if "/* utilities" not in css:
        css = css.rstrip("\n") + "\n" + UTILITIES
    for block in moved:
        if block not in css:
            css = css.rstrip("\n") + "\n" + block
    CSS.write_text(css)
    return 0


if __name__ == "__main__":
    sys.exit(main())
