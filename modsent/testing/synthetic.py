"""Deterministic, learnable multilingual paraphrase data for tests, benchmarks and dry runs.

Nothing here downloads anything. English comes from a small template grammar (about 500 distinct
words, billions of distinct sentences); every other language is a *synthetic* language: a
deterministic word-for-word cipher of English into pseudo-words written in the script named by
the NLLB code's suffix (``rus_Cyrl`` -> Cyrillic, ``zho_Hans`` -> Han, unknown scripts -> Latin),
plus a per-language choice of word order (adjective after noun, verb-final, postpositions,
no articles). Because the cipher is word-level and fixed per language, a model can learn the
"translation", and sentence ``i`` translates the same way wherever it appears.

Paraphrases keep the meaning and change the surface (synonyms, active/progressive/passive voice,
moving the place or time phrase to the front); hard negatives keep the anchor's surface choices
but change the meaning (subject and object swapped, or one content word replaced)::

    anchor    The old man reads a book in the park.
    positive  In the park, a book is read by the elderly man.
    negative  The old man sells a book in the park.

Public API: :func:`synthetic_sentences`, :func:`translate_synthetic`,
:func:`synthetic_paraphrase_rows`, :func:`write_synthetic_corpus`, :func:`write_parallel_text`.

One module, over 500 lines, because the synthetic languages' word-order rules work on the tags of the
English grammar's own words (``_word_tags``): apart, the grammar's internals would become an API.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from modsent.errors import ModsentError
from modsent.io import atomic_write_text

__all__ = [
    "ENGLISH",
    "SYNTHETIC_VERSION",
    "synthetic_sentences",
    "translate_synthetic",
    "synthetic_paraphrase_rows",
    "write_synthetic_corpus",
    "write_parallel_text",
]

#: Bump whenever the grammar, the cipher or the word-order rules change: cache keys of models
#: trained on this text (see ``modsent.testing.tiny_models``) include it.
SYNTHETIC_VERSION = 1

ENGLISH = "eng_Latn"

# --------------------------------------------------------------------------------------------
# English grammar. Each concept is a tuple of interchangeable surface forms (synonyms).
# --------------------------------------------------------------------------------------------

PEOPLE: tuple[tuple[str, ...], ...] = (
    ("man", "gentleman"), ("woman", "lady"), ("boy", "lad"), ("girl",), ("child", "kid"),
    ("teacher", "instructor"), ("doctor", "physician"), ("farmer",), ("student", "pupil"),
    ("artist", "painter"), ("dog", "hound"), ("cat",), ("friend", "pal"), ("neighbor",),
    ("singer", "vocalist"), ("driver", "chauffeur"), ("baker",), ("nurse",), ("cook", "chef"),
    ("lawyer", "attorney"), ("tourist", "traveler"), ("writer", "author"), ("king", "monarch"),
    ("queen",), ("sailor", "mariner"), ("pilot", "aviator"), ("scientist", "researcher"),
    ("waiter",), ("grandmother", "granny"), ("grandfather", "grandpa"), ("baby", "infant"),
    ("horse",), ("soldier", "warrior"), ("priest",), ("thief", "robber"), ("clown",),
)

THINGS: tuple[tuple[str, ...], ...] = (
    ("book",), ("letter", "message"), ("car", "automobile"), ("house", "home"),
    ("bicycle", "bike"), ("picture", "image"), ("meal", "dish"), ("apple",), ("table",),
    ("window",), ("door",), ("phone", "telephone"), ("song", "tune"), ("chair", "seat"),
    ("box", "crate"), ("bag", "sack"), ("newspaper",), ("cake", "pastry"), ("boat", "vessel"),
    ("map",), ("lamp",), ("computer",), ("shirt",), ("hat", "cap"), ("key",), ("ball",),
    ("bottle", "flask"), ("gift", "present"), ("ticket",), ("clock",), ("story", "tale"),
    ("cup", "mug"), ("carpet", "rug"), ("shoe",), ("basket",), ("flower", "blossom"),
    ("stone", "rock"), ("umbrella",), ("guitar",), ("kite",), ("envelope",), ("jacket", "coat"),
)

PERSON_ADJECTIVES: tuple[tuple[str, ...], ...] = (
    ("old", "elderly"), ("young", "youthful"), ("happy", "cheerful"), ("tall",),
    ("tired", "exhausted"), ("quiet", "silent"), ("angry", "furious"), ("clever", "smart"),
    ("rich", "wealthy"), ("poor",), ("kind", "friendly"), ("busy",), ("famous", "renowned"),
    ("brave", "courageous"), ("shy", "timid"), ("sick", "ill"), ("strong", "powerful"),
    ("calm", "relaxed"), ("lazy", "idle"), ("polite", "courteous"), ("hungry", "starving"),
    ("nervous", "anxious"), ("honest", "truthful"), ("proud",), ("lonely", "solitary"),
    ("funny", "amusing"), ("sad", "unhappy"),
)

THING_ADJECTIVES: tuple[tuple[str, ...], ...] = (
    ("big", "large"), ("small", "little"), ("red",), ("blue",), ("green",), ("new",),
    ("cheap", "inexpensive"), ("expensive", "costly"), ("heavy",), ("broken", "damaged"),
    ("clean", "spotless"), ("dirty", "filthy"), ("wooden",), ("tiny", "miniature"),
    ("huge", "enormous"), ("strange", "odd"), ("beautiful", "pretty"), ("modern", "contemporary"),
    ("ancient", "antique"), ("white",), ("black",), ("yellow",), ("round",), ("empty",),
    ("precious", "valuable"), ("simple", "plain"),
)


@dataclass(frozen=True)
class _Verb:
    """A verb concept: its synonyms as (third person, -ing form, past participle) triples."""

    forms: tuple[tuple[str, str, str], ...]
    takes: str  # "thing", "person" or "any": what its object can be


VERBS: tuple[_Verb, ...] = (
    _Verb((("reads", "reading", "read"),), "thing"),
    _Verb((("buys", "buying", "bought"), ("purchases", "purchasing", "purchased")), "thing"),
    _Verb((("carries", "carrying", "carried"),), "any"),
    _Verb((("cooks", "cooking", "cooked"), ("prepares", "preparing", "prepared")), "thing"),
    _Verb((("repairs", "repairing", "repaired"), ("fixes", "fixing", "fixed")), "thing"),
    _Verb((("paints", "painting", "painted"),), "any"),
    _Verb((("writes", "writing", "written"),), "thing"),
    _Verb((("finds", "finding", "found"), ("discovers", "discovering", "discovered")), "any"),
    _Verb((("sells", "selling", "sold"),), "thing"),
    _Verb((("cleans", "cleaning", "cleaned"), ("washes", "washing", "washed")), "any"),
    _Verb((("builds", "building", "built"), ("constructs", "constructing", "constructed")), "thing"),
    _Verb((("watches", "watching", "watched"), ("observes", "observing", "observed")), "any"),
    _Verb((("likes", "liking", "liked"), ("enjoys", "enjoying", "enjoyed")), "thing"),
    _Verb((("opens", "opening", "opened"),), "thing"),
    _Verb((("closes", "closing", "closed"), ("shuts", "shutting", "shut")), "thing"),
    _Verb((("draws", "drawing", "drawn"), ("sketches", "sketching", "sketched")), "any"),
    _Verb((("brings", "bringing", "brought"), ("fetches", "fetching", "fetched")), "thing"),
    _Verb((("loses", "losing", "lost"), ("misplaces", "misplacing", "misplaced")), "thing"),
    _Verb((("inspects", "inspecting", "inspected"), ("examines", "examining", "examined")), "any"),
    _Verb((("takes", "taking", "taken"), ("grabs", "grabbing", "grabbed")), "thing"),
    _Verb((("hides", "hiding", "hidden"), ("conceals", "concealing", "concealed")), "any"),
    _Verb((("borrows", "borrowing", "borrowed"),), "thing"),
    _Verb((("drops", "dropping", "dropped"),), "thing"),
    _Verb((("throws", "throwing", "thrown"), ("tosses", "tossing", "tossed")), "thing"),
    _Verb((("pushes", "pushing", "pushed"), ("shoves", "shoving", "shoved")), "any"),
    _Verb((("pulls", "pulling", "pulled"), ("drags", "dragging", "dragged")), "any"),
    _Verb((("describes", "describing", "described"),), "any"),
    _Verb((("forgets", "forgetting", "forgotten"),), "any"),
    _Verb((("remembers", "remembering", "remembered"), ("recalls", "recalling", "recalled")), "any"),
    _Verb((("chooses", "choosing", "chosen"), ("selects", "selecting", "selected")), "any"),
    _Verb((("admires", "admiring", "admired"), ("appreciates", "appreciating", "appreciated")), "any"),
    _Verb((("helps", "helping", "helped"), ("assists", "assisting", "assisted")), "person"),
    _Verb((("meets", "meeting", "met"), ("encounters", "encountering", "encountered")), "person"),
    _Verb((("calls", "calling", "called"), ("phones", "phoning", "phoned")), "person"),
    _Verb((("follows", "following", "followed"),), "person"),
    _Verb((("greets", "greeting", "greeted"), ("welcomes", "welcoming", "welcomed")), "person"),
    _Verb((("thanks", "thanking", "thanked"),), "person"),
    _Verb((("teaches", "teaching", "taught"), ("instructs", "instructing", "instructed")), "person"),
    _Verb((("visits", "visiting", "visited"),), "person"),
    _Verb((("ignores", "ignoring", "ignored"), ("disregards", "disregarding", "disregarded")), "person"),
)

PLACES: tuple[tuple[str, ...], ...] = (
    ("in the park",), ("at the station",), ("in the kitchen",), ("at the market", "at the bazaar"),
    ("near the river", "by the river"), ("in the garden", "in the yard"), ("at school",),
    ("in the library",), ("on the beach", "at the seaside"), ("in the city", "in town"),
    ("at the office", "at work"), ("in the forest", "in the woods"), ("at the airport",),
    ("on the bus",), ("in the hospital",), ("at the museum",), ("in the village",),
    ("at the harbor", "at the port"), ("in the classroom",), ("at home",),
    ("in the shop", "in the store"), ("on the mountain",), ("near the bridge",), ("on the train",),
    ("in the hotel",), ("at the zoo",), ("in the church",), ("on the roof",), ("in the cellar",
     "in the basement"), ("at the bakery",), ("in the desert",), ("on the island",),
)

TIMES: tuple[tuple[str, ...], ...] = (
    ("every morning", "each morning"), ("today",), ("in the evening",), ("on monday",),
    ("on sunday",), ("after lunch",), ("before dinner",), ("every day", "daily"),
    ("now", "at the moment"), ("on weekends", "at weekends"), ("in the afternoon",),
    ("at night",), ("in winter", "during winter"), ("in summer", "during summer"),
    ("twice a week",), ("every evening", "each evening"), ("sometimes", "occasionally"),
    ("often", "frequently"), ("tonight",), ("at noon", "at midday"), ("in spring",),
    ("in autumn", "in the fall"),
)

_ARTICLES = frozenset({"the", "a", "an"})
_DETERMINERS = _ARTICLES | {"every", "each"}
_PREPOSITIONS = frozenset({"in", "at", "on", "near", "by", "after", "before", "during"})


def _word_tags() -> dict[str, str]:
    """Part of speech of every English word the grammar can produce (used for word order).

    Raises at import time if a word would get two tags: word-order rules rely on one tag per word.
    """
    tags: dict[str, str] = {"is": "AUX"}
    tags.update({w: "DET" for w in _DETERMINERS})
    tags.update({w: "PREP" for w in _PREPOSITIONS})

    def add(word: str, tag: str) -> None:
        if tags.setdefault(word, tag) != tag:
            raise AssertionError(f"grammar word {word!r} is both {tags[word]} and {tag}")

    for concepts, tag in ((PEOPLE, "NOUN"), (THINGS, "NOUN"), (PERSON_ADJECTIVES, "ADJ"), (THING_ADJECTIVES, "ADJ")):
        for concept in concepts:
            for word in concept:
                add(word, tag)
    for verb in VERBS:
        for forms in verb.forms:
            for word in forms:
                add(word, "VERB")
    for concepts in (PLACES, TIMES):
        for concept in concepts:
            for phrase in concept:
                words = phrase.split()
                for word in words:
                    # A phrase's last word is its noun ("park", "morning"); a lone word or a
                    # leading word outside the closed classes is an adverb ("today", "twice").
                    if word not in tags:
                        add(word, "NOUN" if len(words) > 1 and word == words[-1] else "ADV")
    return tags


WORD_TAGS: dict[str, str] = _word_tags()
VOCABULARY: tuple[str, ...] = tuple(sorted(WORD_TAGS))

# --------------------------------------------------------------------------------------------
# Meanings and their English surface forms
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Meaning:
    """What a sentence says; indices into the concept tables (None = slot absent)."""

    subject: int
    subject_adj: int | None
    verb: int
    object_is_person: bool
    obj: int
    object_adj: int | None
    object_article: str  # "a" or "the"
    place: int | None
    time: int | None


@dataclass(frozen=True)
class _Style:
    """How a meaning is worded: voice, fronted phrase, and which synonym each slot uses."""

    voice: str  # "simple", "progressive" or "passive"
    front: str | None  # None, "place" or "time"
    synonyms: tuple[int, ...]  # one pick per slot: subject, subject_adj, verb, obj, object_adj, place, time


_VOICES = ("simple", "progressive", "passive")
_FRONTS = (None, "place", "time")


def _object_nouns(meaning: _Meaning) -> tuple[tuple[str, ...], ...]:
    return PEOPLE if meaning.object_is_person else THINGS


def _object_adjectives(meaning: _Meaning) -> tuple[tuple[str, ...], ...]:
    return PERSON_ADJECTIVES if meaning.object_is_person else THING_ADJECTIVES


def _random_meaning(rng: random.Random) -> _Meaning:
    verb = rng.randrange(len(VERBS))
    takes = VERBS[verb].takes
    object_is_person = takes == "person" or (takes == "any" and rng.random() < 0.4)
    nouns = PEOPLE if object_is_person else THINGS
    adjectives = PERSON_ADJECTIVES if object_is_person else THING_ADJECTIVES
    return _Meaning(
        subject=rng.randrange(len(PEOPLE)),
        subject_adj=rng.randrange(len(PERSON_ADJECTIVES)) if rng.random() < 0.5 else None,
        verb=verb,
        object_is_person=object_is_person,
        obj=rng.randrange(len(nouns)),
        object_adj=rng.randrange(len(adjectives)) if rng.random() < 0.5 else None,
        object_article=rng.choice(("a", "the")),
        place=rng.randrange(len(PLACES)) if rng.random() < 0.6 else None,
        time=rng.randrange(len(TIMES)) if rng.random() < 0.5 else None,
    )


def _random_style(rng: random.Random) -> _Style:
    return _Style(
        voice=rng.choice(_VOICES),
        front=rng.choice(_FRONTS),
        synonyms=tuple(rng.randrange(1 << 16) for _ in range(7)),
    )


def _noun_phrase(article: str, adjective: str | None, noun: str) -> list[str]:
    words = [adjective, noun] if adjective else [noun]
    if article == "a" and words[0][0] in "aeiou":
        article = "an"
    return [article, *words]


def _render(meaning: _Meaning, style: _Style) -> str:
    """English text of ``meaning`` worded as ``style`` says, e.g. 'The old man reads a book.'"""
    pick = style.synonyms

    def choose(options: Sequence, slot: int):
        return options[pick[slot] % len(options)]

    subject_adj = None if meaning.subject_adj is None else choose(PERSON_ADJECTIVES[meaning.subject_adj], 1)
    object_adj = None if meaning.object_adj is None else choose(_object_adjectives(meaning)[meaning.object_adj], 4)
    subject = _noun_phrase("the", subject_adj, choose(PEOPLE[meaning.subject], 0))
    obj = _noun_phrase(meaning.object_article, object_adj, choose(_object_nouns(meaning)[meaning.obj], 3))
    third, ing, participle = choose(VERBS[meaning.verb].forms, 2)
    if style.voice == "simple":
        clause = [*subject, third, *obj]
    elif style.voice == "progressive":
        clause = [*subject, "is", ing, *obj]
    else:
        clause = [*obj, "is", participle, "by", *subject]

    place = None if meaning.place is None else choose(PLACES[meaning.place], 5).split()
    time = None if meaning.time is None else choose(TIMES[meaning.time], 6).split()
    front = {"place": place, "time": time}.get(style.front or "")
    words = ([*front, ","] if front else []) + clause
    words += [w for phrase in (place, time) if phrase and phrase is not front for w in phrase]
    text = " ".join(words).replace(" ,", ",") + "."
    return text[0].upper() + text[1:]


def _paraphrase_style(meaning: _Meaning, anchor: str, rng: random.Random) -> _Style:
    """A wording of ``meaning`` whose text differs from ``anchor``."""
    while True:  # the three voices alone give three different texts, so this ends quickly
        style = _random_style(rng)
        if _render(meaning, style) != anchor:
            return style


def _hard_negative(meaning: _Meaning, style: _Style, rng: random.Random) -> str:
    """A sentence with a different meaning that shares most of the anchor's words.

    ``style`` is the anchor's wording; the negative keeps it, so only the swapped or replaced
    words differ.
    """
    if meaning.object_is_person and meaning.subject != meaning.obj and rng.random() < 0.4:
        swapped = replace(
            meaning,
            subject=meaning.obj,
            subject_adj=meaning.object_adj,
            obj=meaning.subject,
            object_adj=meaning.subject_adj,
        )
        # Swap the synonym picks too, so each noun phrase keeps its words and only moves.
        s = style.synonyms
        return _render(swapped, replace(style, synonyms=(s[3], s[4], s[2], s[0], s[1], s[5], s[6])))
    return _render(_replace_one_content_word(meaning, rng), style)


def _replace_one_content_word(meaning: _Meaning, rng: random.Random) -> _Meaning:
    """``meaning`` with one present slot (noun, verb, adjective, place or time) changed."""
    optional = ("subject_adj", "object_adj", "place", "time")
    slots = ["subject", "verb", "obj"] + [s for s in optional if getattr(meaning, s) is not None]
    slot = rng.choice(slots)
    if slot == "verb":
        # Keep the object grammatical: the new verb must accept this kind of object.
        kind = "person" if meaning.object_is_person else "thing"
        choices = [i for i, v in enumerate(VERBS) if v.takes in (kind, "any") and i != meaning.verb]
        return replace(meaning, verb=rng.choice(choices))
    table_size = {
        "subject": len(PEOPLE),
        "obj": len(_object_nouns(meaning)),
        "subject_adj": len(PERSON_ADJECTIVES),
        "object_adj": len(_object_adjectives(meaning)),
        "place": len(PLACES),
        "time": len(TIMES),
    }[slot]
    current = getattr(meaning, slot)
    new = rng.choice([i for i in range(table_size) if i != current])
    return replace(meaning, **{slot: new})


def _distinct_meanings(n: int, rng: random.Random) -> list[_Meaning]:
    seen: set[_Meaning] = set()
    meanings: list[_Meaning] = []
    while len(meanings) < n:
        meaning = _random_meaning(rng)
        if meaning not in seen:
            seen.add(meaning)
            meanings.append(meaning)
    return meanings


def _check_count(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ModsentError(f"the number of sentences must be a non-negative int, got {n!r}")


def synthetic_sentences(n: int, seed: int | str = 0) -> list[str]:
    """``n`` distinct English sentences from the template grammar, the same for the same seed.

    >>> synthetic_sentences(2, seed=0)
    ['During winter, the farmer is phoning an instructor in the city.', 'On the roof, the amusing grandfather follows the unhappy queen.']
    """
    _check_count(n)
    rng = random.Random(f"sentences:{seed}")
    # Every grammar word belongs to one concept, so distinct meanings have distinct wordings.
    return [_render(meaning, _random_style(rng)) for meaning in _distinct_meanings(n, rng)]


def synthetic_paraphrase_rows(
    n: int, seed: int | str = 0, triplets: bool = False, repeat_fraction: float = 0.0
) -> list[tuple[str, ...]]:
    """``n`` English rows ``(anchor, positive)`` or, with ``triplets``, ``(anchor, positive, hard_negative)``.

    Rows have distinct meanings, except that each row after the first is, with probability
    ``repeat_fraction``, a *repeat*: its anchor is an exact copy of the anchor or positive of an
    earlier row, with a fresh paraphrase (and hard negative) of that same meaning. Repeats make
    duplicate sentences across rows and columns, as in real paraphrase corpora.

    >>> synthetic_paraphrase_rows(1, seed=0, triplets=True)
    [('The scientist is recalling the famous baby.', 'The famous baby is remembered by the researcher.', 'The scientist is recalling the lonely baby.')]
    """
    _check_count(n)
    if not 0.0 <= repeat_fraction <= 1.0:
        raise ModsentError(f"repeat_fraction must be within [0, 1], got {repeat_fraction!r}")
    rng = random.Random(f"rows:{seed}")
    meanings = _distinct_meanings(n, rng)
    rows: list[tuple[str, ...]] = []
    row_meanings: list[_Meaning] = []
    row_styles: list[tuple[_Style, _Style]] = []  # (anchor, positive) wordings, for repeats
    for i, fresh in enumerate(meanings):
        if i > 0 and rng.random() < repeat_fraction:
            j = rng.randrange(i)
            column = rng.randrange(2)
            meaning, style = row_meanings[j], row_styles[j][column]
        else:
            meaning, style = fresh, _random_style(rng)
        anchor = _render(meaning, style)
        positive_style = _paraphrase_style(meaning, anchor, rng)
        row: tuple[str, ...] = (anchor, _render(meaning, positive_style))
        if triplets:
            row += (_hard_negative(meaning, style, rng),)
        rows.append(row)
        row_meanings.append(meaning)
        row_styles.append((style, positive_style))
    return rows


# --------------------------------------------------------------------------------------------
# Synthetic languages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Script:
    """Letters a synthetic language draws its pseudo-words from.

    A syllable is one consonant followed by one vowel; ``vowels`` are separate letters
    (alphabets), dependent vowel signs (abugidas) or empty (syllabaries and Han, where each
    "consonant" is a whole syllable). ``vowel_optional`` allows bare consonants (abjads,
    abugidas' inherent vowel).
    """

    consonants: str
    vowels: str
    vowel_optional: bool = False
    cased: bool = False
    word_gap: str = " "
    full_stop: str = "."
    comma: str = ","
    max_consonants: int = 24  # per-language subset size, keeps vocabularies of big scripts small
    one_char_syllables: bool = False  # each consonant is a syllable; words are 1-3 syllables


def _chars(start: int, stop: int, step: int = 1) -> str:
    return "".join(chr(c) for c in range(start, stop, step))


_LATIN = _Script("bcdfghjklmnprstvwz", "aeiou", cased=True)
_LATIN_EXTRAS = "áàâäãåæçčćđéèêëěğíìîïıłñňóòôöõøřšşßťúùûüůýžż"
_INDIC_STOP = "\u0964"  # danda

_SCRIPTS: dict[str, _Script] = {
    "Latn": _LATIN,
    "Cyrl": _Script("бвгджзклмнпрстфхцчшщ", "аеиоуыэюяё", cased=True),
    "Grek": _Script("βγδζθκλμνξπρστφχψ", "αεηιουωάέήίόύώ", cased=True),
    "Armn": _Script("բգդզթժլխծկհձղճմյնշչպջռսվտրցփքֆ", "աեէըիո", cased=True),
    "Geor": _Script("ბგდვზთკლმნპჟრსტფქღყშჩცძწჭხჯჰ", "აეიოუ"),
    "Tfng": _Script("ⴱⴳⴷⴹⴼⴽⵀⵃⵄⵅⵇⵊⵍⵎⵏⵔⵕⵖⵙⵚⵛⵜⵟⵡⵢⵣⵥ", "ⴰⴻⵉⵓ"),
    "Arab": _Script("بتثجحخدذرزسشصضطظعغفقكلمنهوي", "اوي", vowel_optional=True, comma="\u060c"),
    "Hebr": _Script("בגדהזחטכלמנסעפצקרשת", "וי", vowel_optional=True),
    "Deva": _Script("कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह", "ािीुूेैोौ", True, full_stop=_INDIC_STOP),
    "Beng": _Script("কখগঘচছজঝটঠডঢণতথদধনপফবভমযরলশষসহ", "ািীুূেৈোৌ", True, full_stop=_INDIC_STOP),
    "Gujr": _Script("કખગઘચછજઝટઠડઢણતથદધનપફબભમયરલવશષસહ", "ાિીુૂેૈોૌ", True),
    "Guru": _Script("ਕਖਗਘਚਛਜਝਟਠਡਢਣਤਥਦਧਨਪਫਬਭਮਯਰਲਵਸਹ", "ਾਿੀੁੂੇੈੋੌ", True, full_stop=_INDIC_STOP),
    "Orya": _Script("କଖଗଘଚଛଜଝଟଠଡଢଣତଥଦଧନପଫବଭମଯରଲଶଷସହ", "ାିୀୁୂେୈୋୌ", True, full_stop=_INDIC_STOP),
    "Knda": _Script("ಕಖಗಘಚಛಜಝಟಠಡಢಣತಥದಧನಪಫಬಭಮಯರಲವಶಷಸಹ", "ಾಿೀುೂೆೇೈೊೋ", True),
    "Mlym": _Script("കഖഗഘചഛജഝടഠഡഢണതഥദധനപഫബഭമയരലവശഷസഹ", "ാിീുൂെേൈൊോ", True),
    "Taml": _Script("கஙசஞடணதநபமயரலவழளறன", "ாிீுூெேைொோ", True),
    "Telu": _Script("కఖగఘచఛజఝటఠడఢణతథదధనపఫబభమయరలవశషసహ", "ాిీుూెేైొో", True),
    "Sinh": _Script("කඛගඝචඡජඣටඨඩඪණතථදධනපඵබභමයරලවශෂසහ", "ාැෑිීුූෙේො", True),
    "Tibt": _Script("ཀཁགངཅཆཇཉཏཐདནཔཕབམཙཚཛཝཞཟའཡརལཤསཧ", "ིེོུ", True, full_stop="\u0f0d"),
    "Mymr": _Script("ကခဂဃငစဆဇညတထဒဓနပဖဗဘမယရလဝသဟ", "ါာိီုူေဲ", True, full_stop="\u104b", comma="\u104a"),
    "Khmr": _Script("កខគឃងចឆជឈញដឋឌឍណតថទធនបផពភមយរលវសហឡអ", "ាិីឹឺុូួើឿៀេែៃោៅ", True, full_stop="\u17d4"),
    "Laoo": _Script("ກຂຄງຈຊຍດຕຖທນບປຜຝພຟມຢຣລວສຫອຮ", "ະາິີຶືຸູ", True),
    "Thai": _Script("กขคฆงจฉชซญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ", "ะาิีึืุู", True),
    "Ethi": _Script(_chars(0x1200, 0x1248), "", max_consonants=48, one_char_syllables=True,
                    full_stop="\u1362", comma="\u1363"),
    "Hang": _Script(_chars(0xAC00, 0xD7A4, 28), "", max_consonants=96, one_char_syllables=True),
    # Han is written without spaces; BERT-style tokenizers split it per character anyway.
    "Hani": _Script(_chars(0x4E00, 0x9FA6), "", max_consonants=160, one_char_syllables=True,
                    word_gap="", full_stop="\u3002", comma="\uff0c"),
    "Jpan": _Script(_chars(0x3042, 0x3094, 2) + _chars(0x4E00, 0x9FA6, 97), "", max_consonants=120,
                    one_char_syllables=True, word_gap="", full_stop="\u3002", comma="\u3001"),
}
_SCRIPT_ALIASES = {"Hans": "Hani", "Hant": "Hani"}

_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


def _script_of(lang: str) -> _Script:
    if not isinstance(lang, str) or not _CODE.match(lang):
        raise ModsentError(f"{lang!r} is not a language code like 'deu_Latn' (ISO 639-3 + '_' + ISO 15924 script)")
    suffix = lang.split("_")[1]
    return _SCRIPTS.get(_SCRIPT_ALIASES.get(suffix, suffix), _LATIN)


def _seeded(*parts: str) -> random.Random:
    """A Random seeded by a stable hash (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True)
class _Language:
    script: _Script
    consonants: str
    vowels: str
    adjective_after_noun: bool
    verb_final: bool
    postpositions: bool
    drops_articles: bool


@functools.lru_cache(maxsize=None)
def _language(lang: str) -> _Language:
    script = _script_of(lang)
    rng = _seeded("language", lang)
    consonant_count = min(script.max_consonants, max(8, round(len(script.consonants) * 0.7)))
    consonants = "".join(sorted(rng.sample(script.consonants, min(consonant_count, len(script.consonants)))))
    vowels = script.vowels
    if len(vowels) > 3:
        vowels = "".join(sorted(rng.sample(vowels, max(3, round(len(vowels) * 0.7)))))
    if script is _LATIN:
        consonants += "".join(rng.sample(_LATIN_EXTRAS, rng.randrange(3)))
        vowels += "".join(rng.sample(_LATIN_EXTRAS, rng.randrange(3)))
    verb_final = rng.random() < 0.35
    return _Language(
        script=script,
        consonants=consonants,
        vowels=vowels,
        adjective_after_noun=rng.random() < 0.4,
        verb_final=verb_final,
        postpositions=verb_final and rng.random() < 0.7,
        drops_articles=rng.random() < 0.4,
    )


class _HashDraws:
    """Deterministic random draws read off a SHA-512 digest of ``parts``.

    Seeding a ``random.Random`` per word dominated lexicon building (202 languages x 500 words).
    """

    def __init__(self, *parts: str) -> None:
        self._key = "\x00".join(parts).encode()
        self._state = 0
        self._refills = 0

    def below(self, n: int) -> int:
        if self._state < (n << 64):  # keep every draw uniform: refill long before running dry
            digest = hashlib.sha512(self._key + self._refills.to_bytes(4, "big")).digest()
            self._state, self._refills = int.from_bytes(digest, "big"), self._refills + 1
        self._state, draw = divmod(self._state, n)
        return draw

    def choice(self, options: str) -> str:
        return options[self.below(len(options))]


def _pseudo_word(language: _Language, lang: str, word: str, attempt: int) -> str:
    draws = _HashDraws("word", lang, word, str(attempt))
    script = language.script
    if script.one_char_syllables:
        syllables = 1 + (len(word) > 4) + (len(word) > 8 and draws.below(2) == 0)
    else:
        syllables = min(4, 1 + len(word) // 4 + draws.below(2))
    # Retries after collisions grow the word, so a small alphabet can never run out of words.
    syllables += attempt // 4
    out = []
    for _ in range(syllables):
        out.append(draws.choice(language.consonants))
        # Abjads and abugidas leave about a third of syllables without a written vowel.
        if language.vowels and not (script.vowel_optional and draws.below(20) < 7):
            out.append(draws.choice(language.vowels))
    return "".join(out)


@functools.lru_cache(maxsize=None)
def _lexicon(lang: str) -> dict[str, str]:
    """English word -> pseudo-word for every grammar word; one-to-one within the language."""
    language = _language(lang)
    lexicon: dict[str, str] = {}
    used: set[str] = set()
    for word in VOCABULARY:
        attempt = 0
        while (pseudo := _pseudo_word(language, lang, word, attempt)) in used:
            attempt += 1
        lexicon[word] = pseudo
        used.add(pseudo)
    return lexicon


def _translate_word(lang: str, word: str) -> str:
    lexicon = _lexicon(lang)
    if word in lexicon:
        return lexicon[word]
    # Words outside the grammar (numbers stay as they are) still translate deterministically;
    # they avoid the grammar words' pseudo-words so those stay unambiguous.
    if word.isdigit():
        return word
    taken = set(lexicon.values())
    attempt = 0
    while (pseudo := _pseudo_word(_language(lang), lang, word, attempt)) in taken:
        attempt += 1
    return pseudo


_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")


def _move_adjectives_after_nouns(tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pending: list[tuple[str, str]] = []
    for item in tagged:
        if item[1] == "ADJ":
            pending.append(item)
        elif pending and item[1] == "NOUN":
            out += [item, *pending]
            pending = []
        else:
            out += [*pending, item]
            pending = []
    return out + pending


def _move_prepositions_after_phrases(tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pending: tuple[str, str] | None = None
    for item in tagged:
        if item[1] == "PREP":
            out += [pending] if pending else []
            pending = item
            continue
        out.append(item)
        if pending is not None and item[1] in ("NOUN", "ADV"):
            out.append(pending)
            pending = None
    return out + ([pending] if pending else [])


def _reorder_clause(language: _Language, tagged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if language.drops_articles:
        tagged = [t for t in tagged if t[0] not in _ARTICLES]
    # Postpositions first: they follow the noun, and the adjectives follow both in that order.
    if language.postpositions:
        tagged = _move_prepositions_after_phrases(tagged)
    if language.adjective_after_noun:
        tagged = _move_adjectives_after_nouns(tagged)
    if language.verb_final:
        tagged = [t for t in tagged if t[1] not in ("AUX", "VERB")] + [t for t in tagged if t[1] in ("AUX", "VERB")]
    return tagged


def _translate_sentence(lang: str, language: _Language, sentence: str) -> str:
    script = language.script
    clauses: list[list[tuple[str, str]]] = [[]]
    marks: list[str] = []  # the punctuation that closes each clause ("" for none)
    for token in _TOKEN.findall(sentence):
        if token.isalnum():
            word = token.lower()
            clauses[-1].append((word, WORD_TAGS.get(word, "OTHER")))
        else:
            marks.append(token)
            clauses.append([])
    marks.append("")
    pieces: list[str] = []
    for clause, mark in zip(clauses, marks):
        words = [_translate_word(lang, w) for w, _ in _reorder_clause(language, clause)]
        text = script.word_gap.join(words)
        mark = {".": script.full_stop, ",": script.comma}.get(mark, mark)
        if pieces and text:
            pieces.append(script.word_gap)
        pieces.append(text + mark)
    text = "".join(pieces).strip()
    return text[:1].upper() + text[1:] if script.cased else text


def translate_synthetic(sentences: Iterable[str], lang: str) -> list[str]:
    """Translate English sentences into the synthetic language ``lang`` (an NLLB code).

    ``eng_Latn`` returns the sentences unchanged. Any well-formed code works: the script suffix
    picks the alphabet (unknown scripts fall back to Latin), the whole code seeds the lexicon and
    word order, so ``deu_Latn`` and ``fra_Latn`` are different languages.

    >>> translate_synthetic(["The old man reads a book."], "rus_Cyrl")
    ['Мысы су щыза дёщаде.']
    """
    if lang == ENGLISH:
        return list(sentences)
    language = _language(lang)
    return [_translate_sentence(lang, language, s) for s in sentences]


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _language_list(langs: Iterable[str]) -> list[str]:
    if isinstance(langs, str):
        raise TypeError(f"langs must be a list of codes, not the string {langs!r}")
    ordered = [ENGLISH]
    for lang in langs:
        _script_of(lang)  # validates the code
        if lang not in ordered:
            ordered.append(lang)
    return ordered


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def write_synthetic_corpus(
    root: str | os.PathLike,
    langs: Iterable[str],
    datasets: dict[str, int],
    seed: int = 0,
    triplet_datasets: Iterable[str] = (),
    repeat_fraction: float = 0.05,
) -> Path:
    """Write paraphrase datasets in the reference layout and return ``root``.

    For every dataset name -> row count in ``datasets``, writes ``root/<dataset>/<lang>_1.txt``
    (anchors) and ``<lang>_2.txt`` (positives), plus ``<lang>_3.txt`` (hard negatives) for
    datasets in ``triplet_datasets``, for ``eng_Latn`` and every language in ``langs``. Line ``i``
    of every file of a dataset is the same row. Each dataset gets its own rows (seeded by
    ``seed`` and its name); ``repeat_fraction`` of rows repeat an earlier sentence (see
    :func:`synthetic_paraphrase_rows`).

    >>> write_synthetic_corpus("seed", ["deu_Latn"], {"quora": 100}, triplet_datasets=["quora"])  # doctest: +SKIP
    PosixPath('seed')   # seed/quora/{eng_Latn,deu_Latn}_{1,2,3}.txt, 100 lines each
    """
    root = Path(root)
    ordered = _language_list(langs)
    triplet_set = set(triplet_datasets)
    unknown = triplet_set - set(datasets)
    if unknown:
        raise ModsentError(f"triplet_datasets {sorted(unknown)} are not among datasets {sorted(datasets)}")
    for name, rows_wanted in datasets.items():
        if not name or "/" in name or name.startswith("."):
            raise ModsentError(f"dataset name {name!r} must be a plain directory name")
        rows = synthetic_paraphrase_rows(
            rows_wanted, seed=f"{seed}:{name}", triplets=name in triplet_set, repeat_fraction=repeat_fraction
        )
        columns = list(zip(*rows)) if rows else [(), ()] + ([()] if name in triplet_set else [])
        for lang in ordered:
            for number, column in enumerate(columns, start=1):
                _write_lines(root / name / f"{lang}_{number}.txt", translate_synthetic(column, lang))
    return root


def write_parallel_text(root: str | os.PathLike, lang: str, n: int, seed: int = 0) -> Path:
    """Write ``n`` line-aligned sentence pairs to ``root/eng_Latn.txt`` and ``root/<lang>.txt``.

    Returns ``root``. The English side is :func:`synthetic_sentences` (distinct sentences).

    >>> write_parallel_text("bitext", "deu_Latn", 50)  # doctest: +SKIP
    PosixPath('bitext')
    """
    root = Path(root)
    _script_of(lang)
    english = synthetic_sentences(n, seed)
    _write_lines(root / f"{ENGLISH}.txt", english)
    if lang != ENGLISH:
        _write_lines(root / f"{lang}.txt", translate_synthetic(english, lang))
    return root
