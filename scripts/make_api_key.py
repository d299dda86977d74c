"""Make an API key: prints the key (give it to its owner, once) and the entry for the keys file.

    python scripts/make_api_key.py alice --scopes explain,jobs [--rate-limit 120] [--max-jobs 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.keys import SCOPES, KeyEntry, hash_key, new_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--scopes", default="explain,jobs", help=f"comma-separated, of {', '.join(SCOPES)}")
    parser.add_argument("--rate-limit", type=int, default=None)
    parser.add_argument("--max-jobs", type=int, default=None)
    args = parser.parse_args()
    key = new_key()
    entry = KeyEntry.model_validate({"name": args.name, "sha256": hash_key(key), "scopes": args.scopes.split(","),
                                     "rate_limit": args.rate_limit, "max_jobs": args.max_jobs})
    print(f"key (shown once): {key}", file=sys.stderr)
    print(json.dumps(entry.model_dump(exclude_none=True)))


if __name__ == "__main__":
    main()
