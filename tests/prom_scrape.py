"""Scrapes a nearcached HTTP endpoint for tests/test_metrics.c.

    prom_scrape.py metrics URL   parses URL's body with prometheus_client's
                                 text parser and prints one line per family
                                 ("family NAME TYPE") and per sample
                                 ("sample NAME{k="v",...} VALUE", labels sorted)
    prom_scrape.py get URL       prints the HTTP status and the body

Exits 1 (with the parser's error on stderr) when the text does not parse.
"""
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    mode, url = sys.argv[1], sys.argv[2]
    status, body = fetch(url)
    if mode == "get":
        sys.stdout.write(f"{status} {body}")
        return 0
    if status != 200:
        print(f"{url}: HTTP {status}", file=sys.stderr)
        return 1
    for fam in text_string_to_metric_families(body):
        print(f"family {fam.name} {fam.type}")
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            print(f"sample {s.name}{{{labels}}} {s.value!r}" if labels else
                  f"sample {s.name} {s.value!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
