"""Render the report's front figure of a study to a PNG (for README).

Plotly's image export needs Kaleido; Kaleido 1.x drives a Chrome it downloads, which a
machine without internet lacks, and Kaleido 0.2.1 (which bundles its own Chromium) works
only with plotly < 6. So this runs in two steps, the second in a small separate venv:

    python benchmarks/render_front.py --storage studies/reference.journal --json /tmp/front.json
    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install "kaleido==0.2.1" "plotly<6"
    /tmp/kvenv/bin/python benchmarks/render_front.py --from-json /tmp/front.json --png studies/reference-front.png

The figure is exactly `search.results.document.front_figure`, the one the HTML report and the
dashboard show.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", help="step 1: the study's storage")
    ap.add_argument("--study-name", default="search")
    ap.add_argument("--json", help="step 1: where to write the figure as plotly JSON")
    ap.add_argument("--from-json", help="step 2: the JSON written by step 1")
    ap.add_argument("--png", help="step 2: the PNG to write")
    args = ap.parse_args()
    if args.from_json:
        import plotly.io as pio

        fig = pio.read_json(args.from_json, skip_invalid=True)
        fig.write_image(args.png, width=1000, height=600, scale=1)
        print(f"wrote {args.png}")
        return
    import optuna

    from search.execution.storage import open_storage, storage_url
    from search.results import document

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=args.study_name, storage=open_storage(storage_url(args.storage)))
    with open(args.json, "w") as f:
        f.write(document.front_figure(study).to_json())
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
