#!/usr/bin/python3
"""Reads a Prometheus scrape on stdin and prints its samples as a JSON array of
{"name", "labels", "value", "type"}. The text is parsed by the Prometheus client library's
parser, so a scrape that parser cannot read fails here (exit 1, the parser's message). (It is
more lenient than the server's: duplicate series, for one, are checked by the unit tests.)"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    if not text:
        sys.exit("metrics.py: empty scrape")
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.append({"name": s.name, "labels": s.labels, "value": s.value,
                                "type": family.type})
    except ValueError as e:
        sys.exit(f"metrics.py: not valid Prometheus text: {e}")
    json.dump(samples, sys.stdout)
    print()


if __name__ == "__main__":
    main()
