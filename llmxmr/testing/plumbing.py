"""A plumbing check of the whole graph in seconds, without a key or a model: `llmxmr run` against the
project's loopback scripted server (every stage, every file, the summary). The article's text is
placeholder written by a script, not a survey.

    .venv/bin/python -m llmxmr.testing.plumbing examples/mini.jsonl -o out/plumbing [any `llmxmr run` flags]
"""

from __future__ import annotations

import os
import sys

BANNER = ("plumbing check: every stage runs against a loopback scripted server on 127.0.0.1; the article's "
          "text is placeholder, not a survey (use --model for a real one)")


def main(argv: list[str] | None = None) -> int:
    from llmxmr import cli
    from llmxmr.testing.scripted_server import scripted_server

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    os.environ.setdefault("OPENAI_API_KEY", "not-needed")  # the scripted server ignores it
    print(BANNER, file=sys.stderr)
    with scripted_server() as server:
        return cli.main(["run", *args, "--model", "openai:scripted", "--base-url", server.base_url])


if __name__ == "__main__":
    sys.exit(main())
