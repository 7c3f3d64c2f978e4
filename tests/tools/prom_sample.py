#!/usr/bin/env python3
"""prom_sample.py - reads a Prometheus text exposition (format 0.0.4) and prints what a
test asks about it, so shell tests compare numbers instead of grepping lines.

  prom_sample.py FILE NAME [LABEL=VALUE...]   sum of the samples of NAME whose labels
                                               include every LABEL=VALUE ("none" if none)
  prom_sample.py --count FILE NAME [...]       how many samples match
  prom_sample.py --labels FILE NAME LABEL      the distinct values of LABEL, one a line

Label values are unescaped as the format defines (\\\\, \\", \\n), so a test can ask
for a hostile value exactly as it was sent. A line that does not parse is an error
(exit 2): the exposition must be well formed for any of this to mean something.
"""
import sys


def parse_labels(text, i, line):
    labels = {}
    while True:
        while text[i] in " ,":
            i += 1
        if text[i] == "}":
            return labels, i + 1
        eq = text.index("=", i)
        name = text[i:eq].strip()
        if text[eq + 1] != '"':
            raise ValueError("label value not quoted: " + line)
        i, value = eq + 2, []
        while text[i] != '"':
            if text[i] == "\\":
                nxt = text[i + 1]
                value.append({"\\": "\\", '"': '"', "n": "\n"}.get(nxt))
                if value[-1] is None:
                    raise ValueError("bad escape \\%s: %s" % (nxt, line))
                i += 2
            else:
                value.append(text[i])
                i += 1
        labels[name] = "".join(value)
        i += 1


def samples(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            brace = line.find("{")
            space = line.find(" ")
            if brace != -1 and (space == -1 or brace < space):
                name = line[:brace]
                labels, i = parse_labels(line, brace + 1, line)
                rest = line[i:].split()
            else:
                name, labels, rest = line[:space], {}, line[space:].split()
            yield name, labels, float(rest[0])


def main(argv):
    mode = "sum"
    if argv and argv[0] in ("--count", "--labels"):
        mode, argv = argv[0][2:], argv[1:]
    path, name, rest = argv[0], argv[1], argv[2:]
    try:
        found = [(l, v) for n, l, v in samples(path) if n == name]
    except (ValueError, IndexError) as e:
        print("prom_sample.py: %s: %s" % (path, e), file=sys.stderr)
        return 2
    if mode == "labels":
        for value in sorted({l.get(rest[0], "") for l, _ in found}):
            print(value)
        return 0
    want = dict(arg.split("=", 1) for arg in rest)
    match = [v for l, v in found if all(l.get(k) == w for k, w in want.items())]
    if mode == "count":
        print(len(match))
    elif not match:
        print("none")
    else:
        total = sum(match)
        print(int(total) if total == int(total) else repr(total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
