"""``vqa-shap import-paper``: the paper's per-question Shapley CSVs -> an attributions dataset config.

Reads ``<q_uid>_<budget>_<mode>.csv`` for every question of a questions config, rebuilds the
features with the protocol (and checks the CSV's rows against them), and writes the rows with
:func:`vqa_shap.hub.folder.write_config` (``kind="attributions"``). See :mod:`vqa_shap.analysis.paper_csv` for
what an import knows (prediction for FrozenBiLM/InternVideo, no value_full/value_empty).
"""

from __future__ import annotations

import argparse

from vqa_shap.commands import argtypes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv_dir", metavar="CSV_DIR", type=argtypes.folder,
                        help="folder of the paper's <q_uid>_<budget>_<mode>.csv files for one model × benchmark")
    parser.add_argument("--questions", required=True, type=argtypes.folder, metavar="QUESTIONS",
                        help="Hub-style questions dataset folder (vqa-shap build)")
    parser.add_argument("--config", required=True, type=argtypes.config_name, metavar="C", help="questions config, e.g. egoschema")
    parser.add_argument("--model", required=True, metavar="NAME",
                        help="model name stored in the rows, e.g. frozenbilm or internvideo")
    parser.add_argument("--out", required=True, type=argtypes.out_folder, metavar="FOLDER",
                        help="Hub-style attributions folder to write (created or extended)")
    parser.add_argument("--out-config", metavar="NAME", type=argtypes.config_name,
                        help="attributions config name (default: <model>__<config>, as vqa-shap explain names them)")
    parser.add_argument("--protocol", default="pollard2025", type=argtypes.protocol, help="protocol that names the text features")
    parser.add_argument("--loader", default="pollard2025-csv",
                        help="loader column of the rows (default marks them as imported)")
    parser.add_argument("--prediction", choices=("auto", "sums", "none"), default="auto",
                        help="prediction from the CSV's column sums: auto = only for FrozenBiLM/InternVideo (default)")
    parser.add_argument("--budget", type=argtypes.budget, default=5000, help="the paper's max_evals (file name and budget column)")
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="the paper's shap seed")
    parser.add_argument("--mode", default="joint", help="feature mode in the file names (the paper's tables use joint)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write questions without a CSV as error rows instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing config in --out")


def run(args: argparse.Namespace) -> int:
    from vqa_shap.hub import folder as hub
    from vqa_shap.explain.workdir import attributions_config
    from vqa_shap.analysis.paper_csv import PAPER_ESTIMATOR, import_csv_dir, sums_determine_prediction
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema.arrow import attribution_features

    argtypes.refuse_foreign_card(args.out, args.overwrite)
    questions = hub.load_questions(args.questions, args.config)
    protocol = get_protocol(args.protocol)
    derive = {"auto": None, "sums": True, "none": False}[args.prediction]
    out_config = args.out_config or attributions_config(args.model, args.config)
    result = import_csv_dir(args.csv_dir, questions, protocol, args.model, mode=args.mode,
                            budget=args.budget, allow_missing=args.allow_missing, progress=True,
                            loader=args.loader, derive_prediction=derive, seed=args.seed)
    predicted = derive if derive is not None else sums_determine_prediction(args.model)
    card_vars = {
        "model": args.model, "loader": args.loader, "protocol": protocol.name,
        "estimator": PAPER_ESTIMATOR, "budget": args.budget, "seed": args.seed,
        "questions_config": args.config, "config": out_config,
        "source": "imported from the published per-question Shapley CSVs of Pollard & Wray (2025)",
        "prediction_note": ("Prediction = argmax of the CSV column sums (ties to the lowest index)"
                            if predicted else
                            "Prediction is null: the CSV alone does not determine it for this model"),
    }
    rows = [a.to_row() for a in result.attributions]
    hub.write_config(args.out, out_config, rows, features=attribution_features(), kind="attributions",
                     card_vars=card_vars, overwrite=args.overwrite)
    n_err = sum(r["error"] is not None for r in rows)
    print(f"wrote config {out_config!r} to {args.out}: {len(rows)} rows ({n_err} error rows), "
          f"prediction {'derived from the CSV sums' if predicted else 'null'}")
    if result.stray:
        print(f"note: {len(result.stray)} CSVs in {args.csv_dir} are not questions of {args.config!r} and were "
              f"not imported (e.g. {', '.join(result.stray[:3])})")
    return 0
