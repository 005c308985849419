"""``modsent configs list | show | copy``: the configs an install carries, as torchtune's ``tune ls`` / ``tune cp``."""

from pathlib import Path

from modsent import cli

REPO = Path(__file__).resolve().parents[1]


def test_list_names_every_example_and_deepspeed_config_of_the_checkout(capsys):
    assert cli.main(["configs", "list"]) == 0
    listed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    examples = {str(p.relative_to(REPO / "configs").with_suffix("")) for p in (REPO / "configs").rglob("*.yaml")}
    deepspeed = {p.stem for p in (REPO / "ds_configs").glob("*.json")}
    assert listed == {**dict.fromkeys(examples, "example"), **dict.fromkeys(deepspeed, "deepspeed")}
    assert {"demo", "paper/train_mono", "zero2"} <= listed.keys()


def test_show_prints_the_file(capsys):
    assert cli.main(["configs", "show", "paper/train_mono"]) == 0
    assert capsys.readouterr().out == (REPO / "configs" / "paper" / "train_mono.yaml").read_text()
    assert cli.main(["configs", "show", "zero2.json"]) == 0
    assert capsys.readouterr().out == (REPO / "ds_configs" / "zero2.json").read_text()


def test_copy_into_a_directory_refuses_to_overwrite_without_force(tmp_path, capsys):
    demo = (REPO / "configs" / "demo.yaml").read_bytes()
    assert cli.main(["configs", "copy", "demo", str(tmp_path)]) == 0
    assert (tmp_path / "demo.yaml").read_bytes() == demo

    (tmp_path / "demo.yaml").write_text("edited: true\n")
    assert cli.main(["configs", "copy", "demo", str(tmp_path)]) == 2
    assert f"{tmp_path / 'demo.yaml'} exists; give --force" in capsys.readouterr().err
    assert (tmp_path / "demo.yaml").read_text() == "edited: true\n"

    assert cli.main(["configs", "copy", "demo", str(tmp_path / "demo.yaml"), "--force"]) == 0
    assert (tmp_path / "demo.yaml").read_bytes() == demo
    assert cli.main(["configs", "copy", "zero3_offload", str(tmp_path / "new" / "ds.json")]) == 0
    assert (tmp_path / "new" / "ds.json").read_bytes() == (REPO / "ds_configs" / "zero3_offload.json").read_bytes()


def test_an_unknown_name_gets_one_line_naming_the_close_ones(tmp_path, capsys):
    assert cli.main(["configs", "copy", "paper/train_mnoo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no bundled config named 'paper/train_mnoo'; close names: paper/train_mono" in err
    assert not list(tmp_path.iterdir())
