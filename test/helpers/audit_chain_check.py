"""A second, independent implementation of the audit chain check (docs/audit-log.md), in Python's
standard library: recomputes every hash from the fields and checks the links.

    python3 audit_chain_check.py sqlite FILE.db
    python3 audit_chain_check.py jsonl FILE.jsonl

Prints `ok COUNT SEQ:HASH` (the head) and exits 0, or `broken SEQ REASON` and exits 1.
"""
import hashlib
import json
import sqlite3
import sys

GENESIS = "0" * 64
COLUMNS = ["seq", "at", "actor", "action", "subject", "outcome", "code", "detail", "peer", "prev_hash", "hash"]


def rows_from_sqlite(path):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for row in connection.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq"):
            yield dict(zip(COLUMNS, row))
    finally:
        connection.close()


def rows_from_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            record["prev_hash"] = record.pop("prevHash")
            yield record


def main():
    source, path = sys.argv[1], sys.argv[2]
    rows = rows_from_sqlite(path) if source == "sqlite" else rows_from_jsonl(path)
    previous_seq, previous_hash, count = 0, GENESIS, 0
    for row in rows:
        encoded = json.dumps(
            ["tlsmesh-audit-v1", row["seq"], row["at"], row["actor"], row["action"], row["subject"],
             row["outcome"], row["code"], row["detail"], row["peer"], row["prev_hash"]],
            separators=(",", ":"), ensure_ascii=False,
        )
        if row["seq"] != previous_seq + 1:
            print(f"broken {row['seq']} sequence")
            return 1
        if row["prev_hash"] != previous_hash:
            print(f"broken {row['seq']} link")
            return 1
        if hashlib.sha256(encoded.encode("utf-8")).hexdigest() != row["hash"]:
            print(f"broken {row['seq']} hash")
            return 1
        previous_seq, previous_hash, count = row["seq"], row["hash"], count + 1
    print(f"ok {count} {previous_seq}:{previous_hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
