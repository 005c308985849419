"""What ``modsent run`` prints and keeps when its jobs end: how each vocabulary was made, and the
evaluation's headline tables (also written to the run's ``summary.md``)."""

from __future__ import annotations

import json

from modsent.io import atomic_write_text
from modsent.pipeline.plan import Planner

__all__ = ["print_summary", "vocab_table", "MANY_LANGUAGES"]

#: Above this many target languages, the summary is one row per language (``RUN_DIR/languages/``).
MANY_LANGUAGES = 12


def print_summary(planner: Planner, evaluated: bool) -> None:
    """Print the vocabulary table and (when this run evaluated) the results; keep both in ``summary.md``."""
    run = planner.run
    results_file = run.results()
    summary = []
    vocab = vocab_table(planner)
    if vocab:
        summary.append(vocab)
        print(f"\n{vocab}", flush=True)
    if evaluated and results_file.exists():
        from modsent.evaluate.report import headline_table, language_tables, system_table

        from modsent.pipeline.language_report import write_language_report

        results_json = json.loads(results_file.read_text(encoding="utf-8"))
        languages = write_language_report(results_json, planner)
        if len(planner.targets) > MANY_LANGUAGES and languages:
            # A column or a table per language, and every pair of the language matrix, outgrow a summary:
            # one row per language instead (the reports keep everything).
            summary.append(languages)
            print(f"\nResults ({run.root / 'languages'} and {run.reports()} have every table and plot):\n\n"
                  f"{languages.split('### By test set')[0]}", flush=True)
        else:
            systems = system_table(results_json, planner.pivot)
            table = headline_table(results_json)
            per_language = language_tables(results_json, planner.pivot)
            summary += [systems] if systems else []
            summary += [f"## Per language\n\n{per_language}"] if per_language else []
            summary += [table]
            print(f"\nResults ({run.reports()} has every table and heatmap):\n\n{systems or table}", flush=True)
    if summary:
        # Beside the reports, not inside: the evaluation's artifact must stay as the job left it.
        atomic_write_text(run.summary(), "\n".join(summary))


def vocab_table(planner: Planner) -> str:
    """Per language: how the vocabulary was made (FOCUS or random initialisation, or what trimming kept), as Markdown.

    Read from each finished vocab job's report; empty when no vocab output exists.
    """
    from modsent.vocab import REPORT_FILE

    rows, trimmed = [], []
    for lang in planner.languages:
        path = planner.run.output_dir("vocab", lang) / REPORT_FILE
        if planner.enabled("vocab", lang) and path.exists():
            report = json.loads(path.read_text(encoding="utf-8"))
            if report.get("method") == "trim":
                source = report["model_params"] - report["embedding_params"]["target"] + report["embedding_params"]["source"]
                trimmed.append(f"| {lang} | {planner.text_label(lang)} | {report['n_target_tokens']} | "
                               f"{report['model_params'] / 1e6:.1f}M | {report['model_params'] / source:.2f}x |")
                continue
            new, focus, drawn = report["n_new"], report["n_new_focus"], report["n_new_without_fasttext"]
            rows.append(f"| {lang} | {planner.text_label(lang)} | {report['n_target_tokens']} | {report['n_shared']} "
                        f"| {new} | {focus} | {drawn} | {100.0 * drawn / max(1, new):.1f}% |")
    tables = []
    if trimmed:
        tables.append("Trimmed vocabularies (the source's tokens each language's text uses, exact embeddings)\n\n"
                      "| language | text | tokens | parameters | of the source |\n|---|---|---|---|---|\n"
                      + "\n".join(trimmed) + "\n")
    if rows:
        tables.append(_focus_table(rows))
    return "\n".join(tables)


def _focus_table(rows: list[str]) -> str:
    return ("Vocabulary initialisation (new tokens: FOCUS from fastText neighbours, or random without a fastText "
            "vector)\n\n| language | text | tokens | shared | new | FOCUS | random | random share |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
