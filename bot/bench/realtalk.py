"""Development fact sets from REALTALK, ten real 21-day messaging-app chats.

Rebuilds, deterministically, one fact set (``sleep/factsets.py`` format) per chat speaker from
``Chat_*.json`` of REALTALK (danny911kr/REALTALK @ b903e06a, ``data/``; see
``../shared/data/SOURCES.md``). Each set replays one speaker as a user talking to the bot:

* ``user_turns``: all of that speaker's own lines (``clean_text``), in chat order;
* ``questions``: REALTALK's single-fact questions about that speaker (category 1 fact and
  2 date; category 3 inference is skipped) whose evidence lines are all lines of that speaker,
  rewritten in the second person ("Where does Kate work?" -> "Where do I work?"), with short
  answer keys derived mechanically from the answer and one mechanical paraphrase each.

Who a question is about comes from its evidence dia_ids (whose lines they are), never from the
name in it: the speaker keys in the files are pseudonyms ("Emi"), while questions and chat use
the in-chat names ("Kate"); ``SPEAKERS`` lists each speaker's in-chat name and its spellings in
the questions. Questions are dropped, with the reason counted, when they ask for a list of
dates or of long items, are yes/no or either/or, name the other speaker or both, are about the chat
itself (photos sent, what was mentioned), have evidence that cannot be resolved to text lines
(photo-only messages, malformed ids), have a long or vague answer, have a pronoun that could
refer to someone else, or have an answer that the evidence lines do not support: no key
occurs in them and, for a date, no evidence line that shares a content word with the question
was written on that date (read with the line's own "yesterday"/"tomorrow"; a line written in the
small hours may be about the day before). A speaker with fewer than ``MIN_QUESTIONS`` kept
questions gets no fact set. In practice nearly all of REALTALK's category-1 questions ask for
lists, so the kept questions are date-anchored category-2 questions; many are answered only by
the timestamp of the turn ("question_support": "time" in the meta file), not by its words.

Next to each ``<name>.json`` goes ``<name>.meta.json`` (the loader rejects unknown top-level
keys): ``source``, ``speaker``, ``chat``, ``in_chat_name``, ``turn_times`` (ISO),
``turn_dia_ids``, and per question ``question_evidence``, ``question_categories``,
``question_original``, ``answer_original`` and ``question_support`` ("text": a key occurs in
the evidence lines; "time": the answer is the date the evidence line was written), in the same
orders as ``user_turns`` and ``questions``.

Run from the repository root (``bench coverage --realtalk`` and ``bench memory --realtalk``
use the sets; ``bench memory --lifelong`` builds them itself)::

    python scripts/realtalk_factsets.py [--realtalk DIR] [--out DIR]

``--realtalk`` defaults to ``../shared/data/realtalk`` next to the repository, ``--out`` to
``data/factsets/realtalk/`` (not committed: the sets hold the speakers' own lines, and the
project never copies the shared chats; anyone with ``../shared`` rebuilds the same bytes).
Only the standard library is needed. The script prints a table:
speaker, user turns, questions kept, questions dropped by reason.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REALTALK = REPO.parent / "shared" / "data" / "realtalk"
DEFAULT_OUT = REPO / "data" / "factsets" / "realtalk"  # data/ is not committed
SOURCE = "danny911kr/REALTALK @ b903e06a"
MIN_QUESTIONS = 3  # a speaker with fewer kept questions gets no fact set
# A line written before this hour may be about the previous day: the chats' timestamps run
# hours ahead of the speakers' evenings (lines saying "today" at 05:00-09:00 about that night).
EARLY_HOURS = 10

# Per chat file: speaker key -> (in-chat names and the spellings the questions use, gender of
# the pronouns the questions use for that person). Read off the chats ("I'm Kate") and the
# questions; the same pseudonym in two chats is not assumed to be the same person.
_ELISE = ("Elise", "Eliza", "Elisa")
_NICOLAS = ("Nicolas", "Nikolas")
_NEBRAAS = ("Nebraas", "Nerbaas")
_AKIB = ("Akib", "Akim", "Aqib", "Akin")
_FAHIM = ("Fahim Khan", "Fahim", "Faheem", "Fahin")
_MUHHAMED = ("Muhhamed", "Muhammad", "Mohammed", "Mohamed", "Muhammed")
SPEAKERS: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "Chat_1_Emi_Elise.json": {"Emi": (("Kate",), "f"), "elise": (_ELISE, "f")},
    "Chat_2_Kevin_Elise.json": {"Kevin": (("Kevin",), "m"), "elise": (_ELISE, "f")},
    "Chat_3_Kevin_Paola.json": {"Kevin": (("Kevin",), "m"), "Paola": (("Paola",), "f")},
    "Chat_4_Emi_Paola.json": {"Emi": (("Emi",), "f"), "Paola": (("Paola",), "f")},
    "Chat_5_Nicolas_Nebraas.json": {"Nicolas": (_NICOLAS, "m"), "Nebraas": (_NEBRAAS, "f")},
    "Chat_6_Vanessa_Nicolas.json": {"Nicolas": (_NICOLAS, "m"), "Vanessa": (("Vanessa",), "f")},
    "Chat_7_Nebraas_Vanessa.json": {"Vanessa": (("Vanessa",), "f"), "Nebraas": (_NEBRAAS, "m")},
    "Chat_8_Akib_Muhhamed.json": {"Akib": (_AKIB, "m"), "Muhhamed": (_MUHHAMED, "m")},
    "Chat_9_Fahim_Akib.json": {"Akib": (_AKIB, "m"), "Fahim Khan": (_FAHIM, "m")},
    "Chat_10_Fahim_Muhhamed.json": {"Fahim Khan": (_FAHIM, "m"), "Muhhamed": (_MUHHAMED, "m")},
}

# Drop reasons, in table order.
REASONS = {
    "inference": "category 3 (inference)",
    "evidence": "evidence not resolvable to text lines",
    "other": "evidence is the other speaker's lines, or both",
    "names": "names the other speaker, both or nobody",
    "meta": "about the chat itself (photos, mentions)",
    "form": "yes/no, either/or or not a wh-question",
    "list": "asks for a list of dates or of long items",
    "answer": "long, vague or unparsed answer",
    "pronoun": "ambiguous pronoun or compound subject",
    "unsupported": "answer not supported by the evidence lines",
}

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
_MONTH_RE = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
             r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                "seventeen", "eighteen", "nineteen", "twenty"]

_AUX_AGREE = {"does": "do", "is": "am", "has": "have", "was": "was", "did": "did",
              "do": "do", "will": "will", "can": "can", "could": "could", "would": "would",
              "should": "should", "had": "had", "might": "might", "must": "must", "are": "am",
              "were": "was", "have": "have", "am": "am"}
_YES_NO_START = {"does", "did", "is", "was", "can", "could", "do", "have", "has", "are", "were",
                 "will", "would", "should", "had"}
_WH = {"what", "when", "where", "which", "who", "whom", "whose", "how", "why"}
_PREPOSITIONS = {"to", "with", "for", "from", "of", "at", "on", "in", "by", "about", "into",
                 "onto", "off", "after", "before", "than", "like", "without", "toward",
                 "towards", "upon", "near", "behind", "against", "between", "among", "as"}
# Words after "her" that make it an object ("with her") rather than a possessive ("her cat").
_AFTER_OBJECT_HER = _PREPOSITIONS | {"and", "or", "up", "out", "down", "back", "again", "when",
                                     "because", "recently", "last", "first", "today", "that",
                                     "if", "so", "the", "a", "an"}
# Nouns for people: a third-person pronoun of the same gender after one of them is ambiguous.
_PERSON_NOUNS = {
    "f": {"girlfriend", "wife", "sister", "mom", "mother", "aunt", "girl", "woman", "daughter",
          "grandma", "grandmother", "niece", "lady"},
    "m": {"boyfriend", "husband", "brother", "dad", "father", "uncle", "guy", "man", "son",
          "grandpa", "grandfather", "nephew"},
    "?": {"friend", "friends", "crush", "ex", "partner", "owner", "coworker", "coworkers",
          "boss", "roommate", "teacher", "cousin", "family", "parents", "people", "person",
          "ex-partner", "newbie", "colleague", "someone", "somebody"},
}
_PRONOUNS = {"he": ("m", "I"), "she": ("f", "I"), "him": ("m", "me"), "his": ("m", "my"),
             "hers": ("f", "mine"), "himself": ("m", "myself"), "herself": ("f", "myself"),
             "her": ("f", None)}
_META_WORDS = re.compile(r"\b(photos?|pictures?|mention(?:s|ed)?|discuss(?:es|ed|ing)?|"
                         r"conversations?|sen[dt]|sends|tell|told|talk(?:s|ed)?|chat(?:s|ted)?|"
                         r"share[ds]?|recommend(?:s|ed)?|say|says|said)\b", re.I)
_VAGUE_WORDS = re.compile(r"\b(before|after|ago|recently|next|couple|few|several|many|some|"
                          r"weekend|around|about|approximately|probably|maybe|until|every|"
                          r"during|later|soon|usually|often|sometimes)\b", re.I)
_DATE_VAGUE = re.compile(r"\b(ago|recently|next|couple|few|several|many|weekend|every|usually|"
                         r"often|sometimes|probably|maybe|later|soon|between|or)\b")
_DATE_RELATIVE = re.compile(r"\b(before|after|around|about|approximately|since|until|by)\b")
_UNIT = r"(second|minute|hour|day|week|month|year|decade)"
_GENERIC_HEAD = {"movie", "film", "game", "class", "series", "show", "book", "saga", "dish",
                 "city", "country", "park", "restaurant", "cafe", "store", "shop"}
_IRREGULAR_PAST = {
    "be": "was", "begin": "began", "break": "broke", "bring": "brought", "build": "built",
    "buy": "bought", "catch": "caught", "choose": "chose", "come": "came", "cut": "cut",
    "do": "did", "drink": "drank", "drive": "drove", "eat": "ate", "fall": "fell",
    "feel": "felt", "find": "found", "fly": "flew", "forget": "forgot", "get": "got",
    "give": "gave", "go": "went", "grow": "grew", "have": "had", "hear": "heard", "hit": "hit",
    "hold": "held", "keep": "kept", "know": "knew", "lead": "led", "leave": "left",
    "let": "let", "lose": "lost", "make": "made", "meet": "met", "pay": "paid", "put": "put",
    "read": "read", "ride": "rode", "run": "ran", "say": "said", "see": "saw", "sell": "sold",
    "send": "sent", "set": "set", "sit": "sat", "sleep": "slept", "speak": "spoke",
    "spend": "spent", "stand": "stood", "swim": "swam", "take": "took", "teach": "taught",
    "tell": "told", "think": "thought", "throw": "threw", "understand": "understood",
    "wake": "woke", "wear": "wore", "win": "won", "write": "wrote", "dye": "dyed",
    "plan": "planned", "stop": "stopped", "shop": "shopped", "jog": "jogged", "drop": "dropped",
    "chat": "chatted", "prefer": "preferred", "admit": "admitted", "quit": "quit",
    "refer": "referred", "travel": "traveled", "hang": "hung", "shut": "shut",
}


@dataclass
class Line:
    dia_id: str
    speaker: str
    text: str
    when: datetime


@dataclass
class Kept:
    question: str
    reworded: str
    keys: list[str]
    evidence: list[str]
    category: int
    original: str
    answer: str
    support: str  # "text": a key is in the evidence lines; "time": the date a line was written


@dataclass
class SpeakerResult:
    chat: str
    speaker: str
    names: tuple[str, ...]
    lines: list[Line]
    kept: list[Kept] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)

    @property
    def name(self) -> str:
        number = re.match(r"Chat_(\d+)_", self.chat).group(1)
        slug = re.sub(r"[^a-z0-9]+", "_", self.speaker.lower()).strip("_")
        return f"realtalk_chat{int(number):02d}_{slug}"


class Drop(Exception):
    """A question that is not used; ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


# ---------------------------------------------------------------- reading the chats


def read_chat(path: Path) -> tuple[dict, list[Line]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    sessions = sorted((int(k.split("_")[1]), k) for k in data if re.fullmatch(r"session_\d+", k))
    lines = []
    for _, key in sessions:
        for msg in data[key]:
            when = datetime.strptime(msg["date_time"], "%d.%m.%Y, %H:%M:%S")
            lines.append(Line(msg["dia_id"], msg["speaker"], msg["clean_text"], when))
    if len({ln.dia_id for ln in lines}) != len(lines):
        raise SystemExit(f"{path.name}: duplicate dia_ids")
    return data, lines


def parse_evidence(raw: list[str], by_id: dict[str, Line]) -> list[str]:
    """Dia ids of the evidence; ``Drop`` unless every entry is a clean id of a text line."""
    ids: list[str] = []
    for entry in raw:
        for part in re.split(r"[;,\s]+|\.\s*(?=D)", entry.strip().rstrip(".")):
            if not part:
                continue
            span = re.fullmatch(r"D(\d+):(\d+)(?:-D(\d+):(\d+))?", part)
            if not span or (span.group(3) and span.group(3) != span.group(1)):
                raise Drop("evidence", f"malformed evidence {entry!r}")
            first, last = int(span.group(2)), int(span.group(4) or span.group(2))
            ids += [f"D{span.group(1)}:{n}" for n in range(first, last + 1)]
    if not ids:
        raise Drop("evidence", "no evidence")
    for dia_id in ids:
        line = by_id.get(dia_id)
        if line is None or not line.text.strip():
            raise Drop("evidence", f"no text line {dia_id}")
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------- text helpers


def fold(text: str) -> str:
    """Lower case, accents and typographic quotes folded, spacing collapsed."""
    text = text.replace("’", "'").replace("`", "'").replace("‘", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.lower().split())


def name_pattern(names: tuple[str, ...]) -> re.Pattern:
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:{alts})(?P<poss>['’`]s\b|['’`](?=\s|$)|s['’`]s\b)?")


def base_form(verb: str) -> str:
    """Third-person singular present -> base form ("likes" -> "like"); others unchanged."""
    low = verb.lower()
    special = {"is": "am", "has": "have", "does": "do", "was": "was", "goes": "go"}
    if low in special:
        return special[low]
    if not low.endswith("s") or low.endswith("ss") or len(low) < 4:
        return verb
    if low.endswith("ies"):
        return verb[:-3] + "y"
    if re.search(r"(ch|sh|x|z|o)es$", low):
        return verb[:-2]
    return verb[:-1]


def past_tense(verb: str) -> str:
    low = verb.lower()
    if low in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[low]
    if low.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ied"
    return verb + "ed"


# ---------------------------------------------------------------- rewriting questions


_PAST_FORMS = set(_IRREGULAR_PAST.values())
_WH_PREFIX = re.compile(r"^\s*((?:at |in |on |for )?(?:when|where|what time|what|which|who|how "
                        r"\w+|why)(?: \w+)?)\s+$", re.I)


def _looks_like_verb(word: str) -> bool:
    """A finite verb right after a name: the name is then the subject ("before Vanessa got")."""
    low = word.lower()
    return (low in _AUX_AGREE or low in _PAST_FORMS or low.endswith("ed") or
            (base_form(low) != low and low not in {"always", "is"}))


def _is_participle(word: str) -> bool:
    low = word.lower()
    return low.endswith(("ed", "en")) or low in _PAST_FORMS or low in {
        "been", "done", "gone", "seen", "had", "made", "got", "taken", "eaten", "given"}


def _unpast(verb: str) -> str | None:
    """Base form of a past-tense verb written after "did" ("finished" -> "finish"), or None
    when it cannot be told safely."""
    low = verb.lower()
    for base, past in _IRREGULAR_PAST.items():
        if past == low and base not in {"be"}:
            return base
    if low.endswith("ied"):
        return verb[:-3] + "y"
    if not low.endswith("ed") or low.endswith("eed"):
        return verb
    stem = verb[:-2]
    if re.search(r"(sh|ch|ck|ss|[^aeiou][^aeiouy]|[aeiou][aeiou][^aeiou]|[aeiou][yw])$",
                 stem.lower()) and not re.search(r"([^aeiou])\1$", stem.lower()):
        return stem
    return None


def to_second_person(question: str, names: tuple[str, ...], gender: str) -> str:
    """The question about the named speaker, asked by that speaker ("my", "I", "me")."""
    pattern = name_pattern(names)
    out: list[str] = []
    pos = 0
    mentions = 0
    for m in pattern.finditer(question):
        before = question[pos:m.start()]
        prev_words = re.findall(r"[A-Za-z]+", question[:m.start()])
        prev = prev_words[-1].lower() if prev_words else ""
        after = question[m.end():]
        next_words = re.findall(r"[A-Za-z']+", after)
        nxt = next_words[0] if next_words else ""
        at_start = not question[:m.start()].strip()
        if nxt.lower() in {"and", "or"} or prev in {"and", "or", "both"}:
            raise Drop("pronoun", "compound subject")
        mentions += 1
        if m.group("poss"):
            out.append(before + ("My" if at_start else "my"))
        elif prev in _AUX_AGREE and re.search(r"[A-Za-z]+\s+$", before):
            aux_match = re.search(r"([A-Za-z]+)(\s+)$", before)
            agreed = _AUX_AGREE[aux_match.group(1).lower()]
            if aux_match.group(1)[0].isupper():
                agreed = agreed.capitalize()
            out.append(before[:aux_match.start(1)] + agreed + aux_match.group(2) + "I")
        elif _looks_like_verb(nxt):
            # Subject without an auxiliary: "When Emi went ...", "before Vanessa got it".
            verb_match = re.match(r"(\s+)([A-Za-z']+)", after)
            verb = verb_match.group(2)
            wh = _WH_PREFIX.match(question[:m.start()]) if not out else None
            following = re.match(r"\s+([A-Za-z']+)", after[verb_match.end():])
            main_have = verb.lower() in {"has", "had", "have"} and not (
                following and _is_participle(following.group(1)))
            if wh:  # "When Emi went ...?" is not a question yet: make it one
                head = wh.group(1)
                if verb.lower() in _AUX_AGREE and not main_have:
                    out.append(f"{head} {_AUX_AGREE[verb.lower()]} I")
                elif base_form(verb) != verb and verb.lower() != "was":
                    out.append(f"{head} do I {base_form(verb)}")
                else:
                    out.append(f"{head} was it that I {verb}")
            else:
                out.append(before + "I" + verb_match.group(1) + base_form(verb))
            pos = m.end() + verb_match.end()
            continue
        elif prev in _PREPOSITIONS or prev_words and _looks_like_verb(prev) and not at_start:
            if not out and _WH_PREFIX.match(question[:m.start()]) and prev not in _PREPOSITIONS:
                raise Drop("form", "verb before the subject")  # "When goes Elise on ...?"
            out.append(before + "me")
        else:
            raise Drop("form", "cannot tell the name's role")
        pos = m.end()
    out.append(question[pos:])
    if not mentions:
        raise Drop("names", "does not name the speaker")
    text = "".join(out)
    text = re.sub(r"^(When|Where) (my\b)", r"\1 was it that \2", text)
    text = _rewrite_pronouns(text, gender)
    did = re.search(r"\bdid I ([A-Za-z]+)\b", text)
    if did:
        base = _unpast(did.group(1))
        if base is None:
            raise Drop("form", "past tense after did")
        text = text[:did.start(1)] + base + text[did.end(1):]
    if re.search(r"\b(has|have) (I|my [\w' ]+?) (a|an|the|my)\b", text):
        raise Drop("form", "no participle after has/have")
    return text[0].upper() + text[1:]


def _rewrite_pronouns(text: str, gender: str) -> str:
    """He/she/him/his/her of the speaker's gender -> I/me/my, unless someone else could be
    meant (a person noun between the speaker's last mention and the pronoun)."""
    edits: list[tuple[int, int, str]] = []
    last_self = None
    rivals = _PERSON_NOUNS.get(gender, set()) | _PERSON_NOUNS["?"]
    words = list(re.finditer(r"[A-Za-z]+(?:-[A-Za-z]+)?", text))
    for i, m in enumerate(words):
        low = m.group(0).lower()
        if low in {"i", "me", "my", "mine", "myself"}:
            last_self = m.end()
            continue
        if low not in _PRONOUNS:
            continue
        p_gender, replacement = _PRONOUNS[low]
        if p_gender != gender:
            continue  # someone else, of the other gender ("my boyfriend ... him")
        between = re.findall(r"[A-Za-z-]+", text[last_self or 0:m.start()].lower())
        if last_self is None or any(w in rivals for w in between):
            raise Drop("pronoun", f"ambiguous {m.group(0)!r}")
        nxt = words[i + 1] if i + 1 < len(words) else None
        if replacement is None:  # "her": object ("with her") or possessive ("her cat")
            follows = text[m.end():nxt.start()] if nxt else text[m.end():]
            is_object = nxt is None or follows.strip() or nxt.group(0).lower() in _AFTER_OBJECT_HER
            replacement = "me" if is_object else "my"
        edits.append((m.start(), m.end(), replacement))
        if replacement == "I" and nxt is not None:
            edits.append((nxt.start(), nxt.end(), base_form(nxt.group(0))))
        last_self = m.end()
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


# ---------------------------------------------------------------- answer keys

_NUM_RE = re.compile(r"(?<![\d:.-])\b(\d+|" + "|".join(NUMBER_WORDS) + r")\b(?![:.-]?\d)(?!-)",
                     re.I)


def _number_variants(text: str) -> list[str]:
    """The text with its numbers as digits and as words (1-20), both."""
    digits = _NUM_RE.sub(lambda m: m.group(1) if m.group(1).isdigit() else
                         str(NUMBER_WORDS.index(m.group(1).lower())), text)
    words = _NUM_RE.sub(lambda m: NUMBER_WORDS[int(m.group(1))] if m.group(1).isdigit()
                        and int(m.group(1)) < len(NUMBER_WORDS) else m.group(1), digits)
    return list(dict.fromkeys([digits, words]))


def _month(token: str) -> int:
    low = token.lower()[:3]
    return [m[:3] for m in MONTHS].index(low) + 1


@dataclass
class ParsedDate:
    year: int | None
    month: int | None = None
    day: int | None = None
    season: str | None = None


def parse_date(answer: str) -> ParsedDate | None:
    """A date written in any of the forms the REALTALK answers use, else None."""
    text = fold(answer)
    if _DATE_VAGUE.search(text) or re.search(r"\d\s*-\s*\d", text):
        return None
    forms = [
        (r"\b(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})\b", (3, 2, 1)),
        (rf"\b(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?{_MONTH_RE}\.?,? (\d{{4}})\b", (3, 2, 1)),
        (rf"\b{_MONTH_RE}\.?,? (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})\b", (3, 1, 2)),
    ]
    for form, (y, mo, d) in forms:
        m = re.search(form, text)
        if not m:
            continue
        if _DATE_RELATIVE.search(" ".join(text[:m.start()].split()[-2:])):
            return None  # "a week before 10.01.2024", "after going to church on ..."
        year = int(m.group(y)) + (2000 if len(m.group(y)) == 2 else 0)
        month = int(m.group(mo)) if m.group(mo).isdigit() else _month(m.group(mo))
        return _checked(year, month, int(m.group(d)))
    m = re.fullmatch(rf"(?:on |in )?(?:the )?{_MONTH_RE},? (\d{{4}})\.?", text)
    if m:
        return ParsedDate(int(m.group(2)), _month(m.group(1)))
    m = re.fullmatch(r"(?:in |during )?(?:the )?(spring|summer|fall|autumn|winter),? (?:of )?"
                     r"(\d{4})\.?", text)
    if m:
        return ParsedDate(int(m.group(2)), season=m.group(1))
    m = re.fullmatch(r"(?:in )?((?:19|20)\d\d)\.?", text)
    if m:
        return ParsedDate(int(m.group(1)))
    m = re.search(r"\bin ((?:19|20)\d\d)\b", text)  # "He plans to visit Japan in 2025."
    if m and len(re.findall(r"\d+", text)) == 1:
        return ParsedDate(int(m.group(1)))
    return None


def _checked(year: int, month: int, day: int) -> ParsedDate | None:
    try:
        date(year, month, day)
    except ValueError:
        return None
    return ParsedDate(year, month, day)


def _ordinal(day: int) -> str:
    if day % 10 in (1, 2, 3) and day not in (11, 12, 13):
        return f"{day}{['st', 'nd', 'rd'][day % 10 - 1]}"
    return f"{day}th"


def date_keys(d: ParsedDate) -> list[str]:
    """Substring keys for a date. Forms that are substrings of another day's forms ("jan 1" of
    "jan 15", "5 january" of "15 january") are left out or written unambiguously."""
    if d.season:
        return [f"{d.season} {d.year}", f"{d.season} of {d.year}"]
    if d.month is None:
        return [str(d.year)]
    name = MONTHS[d.month - 1]
    if d.day is None:
        return [f"{name} {d.year}", f"{name}, {d.year}", f"{name} of {d.year}"]
    day = d.day
    iso = f"{d.year:04d}-{d.month:02d}-{day:02d}"
    dotted = f"{day:02d}.{d.month:02d}.{d.year:04d}"
    keys = []
    if day <= 3:  # "january 3" is part of "january 30": use the ordinal or a comma after it
        suffix = {1: "st", 2: "nd", 3: "rd"}[day]
        for month in (name, name[:3]):
            keys += [f"{month} {day}{suffix}", f"{month} {day},"]
    else:
        keys += [f"{name} {day}", f"{name[:3]} {day}"]
        if day >= 10:  # "5 january" is part of "15 january"
            keys += [f"{day} {name}", f"{day} {name[:3]}", f"{_ordinal(day)} of {name}"]
    keys += [f"{day:02d} {name}", iso, dotted]
    return list(dict.fromkeys(keys))


def _strip_answer(answer: str) -> str:
    text = answer.strip().strip("\"“”'").strip()
    text = re.split(r"\s+(?:because|as|so that)\s+", text, maxsplit=1)[0]
    text = re.sub(r"[.!]+$", "", text).strip().strip("\"“”'").strip()
    text = re.sub(r"^(?:on|in|at|to|with|from|for|since|by|the|a|an)\s+", "", text, flags=re.I)
    text = re.sub(r"^(?:the|a|an)\s+", "", text, flags=re.I)
    return text.strip().strip("\"“”'").strip()


def is_list_question(question: str, answer: str) -> bool:
    low = fold(question)
    if low.startswith("when"):
        answer = ""  # "03 January, 2024" is one date
    if re.search(r"[,;&]|\bor\b|\d\)", answer):
        return True
    if re.search(r"\band\b", answer) and not re.fullmatch(r"[A-Z][\w-]* and [A-Z][\w ]*", answer):
        return True  # "water and breakfast bars"; not "Turks and Caicos"
    if re.search(r"\bboth\b|\bwhat are\b|\bwhich are\b|\bwhat were\b|\bnames\b", low):
        return True
    # "What sports ...", "Which cities ...", "What kind of cuisines ..."
    m = re.match(r"(?:in |for |on |at |from |to )?(?:what|which)\s+(?:(?:kinds?|types?|sorts?)"
                 r"\s+of\s+)?([a-z-]+)", low)
    if m and m.group(1).endswith("s") and not m.group(1).endswith(("ss", "us")) and \
            m.group(1) not in {"is", "was", "does", "has", "this", "series"}:
        return True
    return bool(re.match(r"how many \w+ (?:and|or) ", low))


def list_items(answer: str) -> list[str]:
    """The items of a list answer ("Cooking, skiing, hiking"), or [] when one is long."""
    parts = [p.strip(" .") for p in re.split(r",|;|&|\band\b|\bor\b", answer) if p.strip(" .")]
    if not 2 <= len(parts) <= 6 or any(len(p.split()) > 4 for p in parts):
        return []
    items = []
    for part in parts:
        try:
            answer_keys("what", part)
        except Drop:
            return []
        items.append(part)
    return items


def answer_keys(question: str, answer: str) -> tuple[list[str], ParsedDate | None]:
    """Keys for the answer and, for a date, the parsed date; ``Drop`` when there are none."""
    low_q = fold(question)
    if low_q.startswith(("when", "since when", "what date", "in what year", "what year")):
        parsed = parse_date(answer)
        if parsed is None:
            raise Drop("answer", "no single definite date")
        return date_keys(parsed), parsed
    one_unit = re.fullmatch(rf"(?:for |in |about )?(?:a|an|one|1) {_UNIT}\.?", fold(answer))
    if one_unit:
        unit = one_unit.group(1)
        return [f"one {unit}", f"1 {unit}", f"a {unit}"], None
    short = _strip_answer(answer)
    if not short or _VAGUE_WORDS.search(short) and not low_q.startswith("how often"):
        raise Drop("answer", "vague")
    if re.search(r"\b(he|she|his|her|him|they|their)\b", short, re.I):
        raise Drop("answer", "sentence answer")
    words = short.split()
    if len(words) > 5:
        raise Drop("answer", "long answer")
    if re.fullmatch(r"\d+|" + "|".join(NUMBER_WORDS), short, re.I):
        m = re.match(r"how many ([a-z-]+)", low_q)
        if not m:
            raise Drop("answer", "bare number")
        short = f"{short} {m.group(1)}"
    keys = [fold(v) for v in _number_variants(short)]
    if re.search(r"\d-\d", short):  # "2-3 times a week" is also said "2 to 3 times a week"
        keys.append(fold(re.sub(r"(\d)-(\d)", r"\1 to \2", short)))
    head = re.split(r"\s+(?:in|at|from|with|by|on)\s+", short, maxsplit=1)[0]
    if head != short and len(head) >= 4:
        keys.append(fold(head))
    last = fold(short).split()
    if len(last) >= 2 and last[-1] in _GENERIC_HEAD:
        keys.append(" ".join(last[:-1]))
    keys = [k for k in dict.fromkeys(keys) if len(k) >= 3 or k.isdigit() and len(k) >= 2]
    if not keys:
        raise Drop("answer", "key too short")
    return keys, None


_OTHER_DAY = re.compile(r"\b(last|next|this) (week|weekend|month|year)\b|\b(mon|tues|wednes|thurs|"
                        r"fri|satur|sun)days?\b|\bin \w+ days\b|\bdays? ago\b|\bweek ago\b")


def supported(question: str, keys: list[str], parsed: ParsedDate | None,
              evidence: list[Line]) -> str | None:
    """How the evidence lines support the answer: "text" when a key occurs in them, "time"
    when the answer is the date a line was written (read with its "yesterday"/"tomorrow"), and
    None when they do not support it."""
    text = fold(" ".join(ln.text for ln in evidence))
    text_plain = re.sub(r"[^\w\s]", " ", text)
    for key in keys:
        if key in text or re.sub(r"[^\w\s]", " ", key).strip() in text_plain:
            return "text"
    if parsed is None:
        return None
    if parsed.day is None:
        if parsed.month is None and parsed.season is None:
            found = str(parsed.year) in text
        elif parsed.season:
            found = parsed.season in text or (parsed.season == "fall" and "autumn" in text)
        else:
            found = MONTHS[parsed.month - 1] in text or MONTHS[parsed.month - 1][:3] + " " in text
        return "text" if found else None
    when = date(parsed.year, parsed.month, parsed.day)
    for line in evidence:
        if when in event_days(line) and about_the_same(question, line.text):
            return "time"
    return None


_STOP = set("""a an the and or of to in on at for with from by about as is am are was were be been
do does did have has had will would can could should i me my mine you your it its this that
these those there what when where which who whom whose how why first last time times day days
go going went get got make made start started plan planned try tried take took some any all
very really just also again was it that""".split())


def _stems(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", fold(text))
    return {w[:4] for w in words if w not in _STOP and len(w) > 2 and fold(w)[:3] not in {
        m[:3] for m in MONTHS}}


def about_the_same(question: str, text: str) -> bool:
    """The line shares a content word with the question (first four letters compared), so a
    date read off its timestamp is the date of what the question asks about."""
    return bool(_stems(question) & _stems(text))


def event_days(line: Line) -> set[date]:
    """The days a line written at ``line.when`` can be talking about, from its own words."""
    low = fold(line.text)
    anchored = re.search(r"\b(today|tonight|yesterday|tomorrow|last night|this (morning|"
                         r"afternoon|evening)|right now)\b", low)
    if _OTHER_DAY.search(low) and not anchored:
        return set()  # "last week", "on Monday": not checkable against the timestamp
    written = line.when.date()
    days = {written}
    if line.when.hour < EARLY_HOURS:
        days.add(written - timedelta(days=1))  # written in the small hours, about the day before
    if re.search(r"\byesterday\b|\blast night\b", low):
        return {d - timedelta(days=1) for d in days}
    if re.search(r"\btomorrow\b", low):
        return {d + timedelta(days=1) for d in days}
    return days


# ---------------------------------------------------------------- paraphrases


def reword(question: str, index: int, parsed: ParsedDate | None) -> str:
    """One mechanical paraphrase: an embedded question ("Do you remember where I work ...?")
    where the structure allows it, else a synonym swap of the question word."""
    body = question.rstrip("?").strip()
    lead = ["Do you remember", "Can you tell me"][index % 2]
    m = re.match(r"(.*?)\b(am|was|have|had|will|can|could|would|should|might) I\b(.*)$", body)
    if m and m.group(1).strip() and fold(m.group(1).split()[0]) in _WH | {"in", "for", "at",
                                                                          "on", "with"}:
        wh = m.group(1).strip()
        return f"{lead} {wh[0].lower() + wh[1:]} I {m.group(2)}{m.group(3)}?"
    m = re.match(r"^(When|Where) was it that (.*)$", body)
    if m:
        return f"{lead} {m.group(1).lower()} {m.group(2)}?"
    m = re.match(r"(.*?)\b(do|did) I ((?:(?:first|ever|last|finally|actually|really|also|"
                 r"usually|just) )?)([A-Za-z-]+)\b(.*)$", body)
    if m and m.group(1).strip() and fold(m.group(1).split()[0]) in _WH | {"in", "for", "at",
                                                                          "on", "with"}:
        wh = m.group(1).strip()
        verb, rest = m.group(4), m.group(5)
        if m.group(2) == "did":
            verb = past_tense(verb)
            rest = _past_after_and(rest)
        return f"{lead} {wh[0].lower() + wh[1:]} I {m.group(3)}{verb}{rest}?"
    m = re.match(r"(What|Where|Who|When|How \w+)\s+(is|are|was|were)\s+(my [^,]+)$", body)
    if m:
        wh = m.group(1)
        return f"{lead} {wh[0].lower() + wh[1:]} {m.group(3)} {m.group(2)}?"
    m = re.match(r"(What|Who)\s+(happened|made|makes|helped|helps)\b(.*)$", body)
    if m:
        return f"{lead} {m.group(1).lower()} {m.group(2)}{m.group(3)}?"
    return _synonym_swap(question, parsed)


def _past_after_and(rest: str) -> str:
    """"... and follow its scene" -> "... and followed its scene" after a past main verb, unless
    the "and" may join two infinitives ("to better grasp and remember")."""
    m = re.search(r"\band ([a-z]+)\b", rest)
    if not m or re.search(r"\bto [a-z]", rest[:m.start()]) or "," in rest[:m.start()]:
        return rest
    word = m.group(1)
    if base_form(word) != word or word.endswith(("ing", "ed")) or word in _PAST_FORMS or word in {
            "the", "a", "an", "my", "then", "also"}:
        return rest
    return rest[:m.start(1)] + past_tense(word) + rest[m.end(1):]


def _synonym_swap(question: str, parsed: ParsedDate | None) -> str:
    when = "On what date"
    if parsed is not None and parsed.day is None:
        when = "In what year" if parsed.month is None and not parsed.season else "When exactly"
    swaps = [(r"^What kind of\b", "What type of"), (r"^What type of\b", "What kind of"),
             (r"^When\b", when), (r"^Where\b", "In what place"), (r"^How long\b", "For how long"),
             (r"^For how long\b", "How long"), (r"^How often\b", "How frequently"),
             (r"^How many\b", "What number of"), (r"^Who\b", "Which person"),
             (r"^Which\b", "What"), (r"^What\b", "Which")]
    for pattern, replacement in swaps:
        new = re.sub(pattern, replacement, question, count=1)
        if new != question:
            return new
    return "Remind me: " + question[0].lower() + question[1:]


# ---------------------------------------------------------------- building


def process_question(qa: dict, lines_by_id: dict[str, Line], speakers: dict) -> tuple[str, Kept]:
    """The speaker a question is about and the kept question; ``Drop`` with a reason."""
    question, answer = " ".join(qa["question"].split()), " ".join(str(qa["answer"]).split())
    # "on 10.01.2024" (day first) -> "on 10 January 2024", which no reader can misread.
    question = re.sub(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b",
                      lambda m: f"{int(m.group(1))} {MONTHS[int(m.group(2)) - 1].capitalize()} "
                                f"{m.group(3)}", question)
    if qa["category"] == 3:
        raise Drop("inference")
    evidence = parse_evidence(qa.get("evidence") or [], lines_by_id)
    owners = {lines_by_id[e].speaker for e in evidence}
    if len(owners) != 1:
        raise Drop("other", "evidence from both speakers")
    subject = owners.pop()
    names, gender = speakers[subject]
    others = [n for s, (ns, _) in speakers.items() if s != subject for n in ns]
    if name_pattern(tuple(others)).search(question):
        raise Drop("names", "names the other speaker")
    if not name_pattern(names).search(question):
        raise Drop("names", "does not name the speaker")
    if _META_WORDS.search(question):
        raise Drop("meta")
    first = fold(question).split()[0]
    if first in _YES_NO_START or re.search(r"\bor\b", question) or first not in _WH | {
            "in", "for", "at", "on", "from", "to", "with", "since"}:
        raise Drop("form")
    listed = is_list_question(question, answer)
    if listed and (fold(question).startswith("when") or not list_items(answer)):
        raise Drop("list")
    rewritten = to_second_person(question, names, gender)
    if not rewritten.endswith("?"):
        rewritten = rewritten.rstrip(".") + "?"
    if listed:  # any one item recalled answers it: each item is a fact the user stated
        keys, parsed = [k for i in list_items(answer) for k in answer_keys(rewritten, i)[0]], None
    else:
        keys, parsed = answer_keys(rewritten, answer)
    support = supported(rewritten, keys, parsed, [lines_by_id[e] for e in evidence])
    if support is None:
        raise Drop("unsupported")
    index = sum(ord(c) for c in question)  # deterministic template choice
    reworded = reword(rewritten, index, parsed)
    assert reworded != rewritten and not name_pattern(names).search(rewritten + reworded)
    return subject, Kept(rewritten, reworded, keys, evidence, qa["category"], question, answer,
                         support)


def attribute_dropped(qa: dict, lines_by_id: dict[str, Line], speakers: dict) -> str | None:
    """Whose row a dropped question is counted in: the evidence owner, else the first name."""
    try:
        owners = {lines_by_id[e].speaker for e in parse_evidence(qa["evidence"], lines_by_id)}
        if len(owners) == 1:
            return owners.pop()
    except (Drop, KeyError):
        pass
    first = None
    for speaker, (names, _) in speakers.items():
        m = name_pattern(names).search(qa["question"])
        if m and (first is None or m.start() < first[1]):
            first = (speaker, m.start())
    return first[0] if first else None


def build_chat(path: Path) -> tuple[list[SpeakerResult], Counter]:
    data, lines = read_chat(path)
    # a chat not in the table (another chat in the same format): speakers go by their keys,
    # with no gender for "he"/"she"
    speakers = SPEAKERS.get(path.name) or {
        data["name"][k]: ((data["name"][k],), "") for k in ("speaker_1", "speaker_2")}
    by_id = {ln.dia_id: ln for ln in lines}
    results = {}
    for speaker in (data["name"]["speaker_1"], data["name"]["speaker_2"]):
        own = [ln for ln in lines if ln.speaker == speaker and ln.text.strip()]
        results[speaker] = SpeakerResult(path.name, speaker, speakers[speaker][0], own)
    unattributed: Counter = Counter()
    for qa in data["qa"]:
        try:
            subject, kept = process_question(qa, by_id, speakers)
            results[subject].kept.append(kept)
        except Drop as drop:
            owner = attribute_dropped(qa, by_id, speakers)
            (results[owner].dropped if owner else unattributed)[drop.reason] += 1
    return list(results.values()), unattributed


def factset_json(result: SpeakerResult) -> dict:
    chat_no = re.match(r"Chat_(\d+)_", result.chat).group(1)
    return {
        "name": result.name,
        "description": (f"REALTALK ({SOURCE}, data/{result.chat}), speaker {result.speaker} "
                        f"(in-chat name {result.names[0]}), chat {chat_no}; development data, "
                        f"rebuilt by scripts/realtalk_factsets.py"),
        "user_turns": [ln.text.strip() for ln in result.lines],
        "questions": [{"question": k.question, "reworded": [k.reworded], "keys": k.keys}
                      for k in result.kept],
    }


def meta_json(result: SpeakerResult) -> dict:
    return {
        "source": f"{SOURCE}, data/{result.chat}",
        "speaker": result.speaker,
        "chat": result.chat,
        "in_chat_name": result.names[0],
        "turn_times": [ln.when.isoformat() for ln in result.lines],
        "turn_dia_ids": [ln.dia_id for ln in result.lines],
        "question_evidence": [k.evidence for k in result.kept],
        "question_categories": [k.category for k in result.kept],
        "question_original": [k.original for k in result.kept],
        "answer_original": [k.answer for k in result.kept],
        "question_support": [k.support for k in result.kept],
    }


def _dump(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def chat_files(realtalk: Path) -> list[Path]:
    files = sorted(realtalk.glob("Chat_*.json"),
                   key=lambda p: int(re.match(r"Chat_(\d+)_", p.name).group(1)))
    unknown = [p.name for p in files if p.name not in SPEAKERS]
    if unknown or not files:
        raise SystemExit(f"unexpected REALTALK files in {realtalk}: {unknown or 'none found'}")
    return files


def build(realtalk: Path, out: Path) -> tuple[list[SpeakerResult], Counter]:
    """Writes the fact sets and their meta files; returns every speaker's result (written or
    not) and the drops that could not be attributed to a speaker."""
    results: list[SpeakerResult] = []
    unattributed: Counter = Counter()
    for path in chat_files(realtalk):
        chat_results, lost = build_chat(path)
        results += chat_results
        unattributed += lost
    out.mkdir(parents=True, exist_ok=True)
    written = set()
    for result in results:
        if len(result.kept) < MIN_QUESTIONS:
            continue
        (out / f"{result.name}.json").write_text(_dump(factset_json(result)), encoding="utf-8")
        (out / f"{result.name}.meta.json").write_text(_dump(meta_json(result)), encoding="utf-8")
        written |= {f"{result.name}.json", f"{result.name}.meta.json"}
    for stale in out.glob("realtalk_chat*.json"):
        if stale.name not in written:
            stale.unlink()
    return results, unattributed


def table(results: list[SpeakerResult], unattributed: Counter) -> str:
    codes = list(REASONS)
    head = ["set", "speaker (in chat)", "turns", "kept", *codes]
    rows = []
    for r in results:
        label = r.name if len(r.kept) >= MIN_QUESTIONS else f"({r.name}: not written)"
        rows.append([label, f"{r.speaker} ({r.names[0]})", str(len(r.lines)), str(len(r.kept)),
                     *(str(r.dropped[c]) for c in codes)])
    if unattributed:
        rows.append(["(no speaker named)", "", "", "0", *(str(unattributed[c]) for c in codes)])
    written = [r for r in results if len(r.kept) >= MIN_QUESTIONS]
    total_drop = sum((r.dropped for r in results), Counter()) + unattributed
    rows.append(["TOTAL written", f"{len(written)} sets", str(sum(len(r.lines) for r in written)),
                 str(sum(len(r.kept) for r in written)), *(str(total_drop[c]) for c in codes)])
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = lambda row: "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True))  # noqa: E731
    lines = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows), ""]
    lines += [f"{code}: {text}" for code, text in REASONS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--realtalk", type=Path, default=DEFAULT_REALTALK,
                        help="directory with REALTALK's Chat_*.json (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where to write the fact sets (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.realtalk.is_dir():
        print(f"no REALTALK directory at {args.realtalk}", file=sys.stderr)
        return 2
    results, unattributed = build(args.realtalk, args.out)
    print(table(results, unattributed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
