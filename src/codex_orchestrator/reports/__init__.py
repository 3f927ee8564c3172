"""Reports where reviewers already look: a GitHub Actions job summary and annotations (`github`), JUnit
XML (`junit`) and one self-contained HTML page per run or over many runs (`html`).

Each renderer is a pure function from a `RunReport` (built once by `collect.run_report` from a manifest
and the tails of its failed stages' logs) to text; the CLI only decides where the text goes.
"""
