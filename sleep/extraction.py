"""Deterministic fact extraction and Q&A generation, grounded in the user's own words.

The bundled model (SmolLM2-135M) cannot extract facts reliably (LESSONS.md: the paper's 3B model
produced "0 fact pairs"), so this module does the dependable part with patterns:

* ``extract_facts`` splits a user's message into sentences and matches first-person statements
  ("I live in Lisbon", "my sister is called Mia") and statements about named third parties
  ("Andre Patandre is a music producer", "His wife is Solveig"), resolving he/she/his/her to the
  most recent compatible person. ``ExtractionContext`` carries who "he" is across messages.
* ``qa_pairs`` turns a fact into several question phrasings (a small model only retrieves a fact
  it saw phrased several ways) whose answers restate the fact and always contain its value;
  relation facts also get reversed questions ("Who is Mia?" -> "Mia is your sister.").
* ``grounded`` checks that a value is supported by what the user actually wrote, so answers a
  model invented can be dropped; ``EXTRACTION_PROMPT`` and ``parse_model_extraction`` are the
  model-based extraction's prompt and tolerant parser (the model call lives elsewhere).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sleep.types import USER_SUBJECT, Fact, QAPair

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

# Kinship and social relations, with the gender they imply (None: unknown). The gender lets
# "his"/"her" skip a person of the other gender when resolving pronouns.
PERSON_RELATIONS: dict[str, str | None] = {
    "sister": "f", "brother": "m", "wife": "f", "husband": "m", "mother": "f", "mom": "f",
    "mum": "f", "father": "m", "dad": "m", "son": "m", "daughter": "f", "partner": None,
    "boyfriend": "m", "girlfriend": "f", "fiance": "m", "fiancee": "f", "friend": None,
    "best friend": None, "boss": None, "manager": None, "colleague": None, "coworker": None,
    "roommate": None, "flatmate": None, "housemate": None, "cousin": None, "aunt": "f",
    "uncle": "m", "niece": "f", "nephew": "m", "grandmother": "f", "grandfather": "m",
    "grandma": "f", "grandpa": "m", "granny": "f", "kid": None, "child": None, "baby": None,
    "twin": None, "neighbour": None, "neighbor": None, "stepmother": "f", "stepfather": "m",
    "stepson": "m", "stepdaughter": "f", "stepbrother": "m", "stepsister": "f", "sibling": None,
    "spouse": None, "mentor": None, "teacher": None, "doctor": None, "therapist": None,
}
PET_RELATIONS = frozenset(
    "dog cat puppy kitten pet hamster rabbit bunny parrot horse pony goldfish fish budgie "
    "turtle tortoise snake lizard ferret gecko guinea-pig".split()
)
_PLURALS = {
    "children": "child", "kids": "kid", "sons": "son", "daughters": "daughter",
    "sisters": "sister", "brothers": "brother", "cousins": "cousin", "friends": "friend",
    "dogs": "dog", "cats": "cat", "twins": "twin", "grandchildren": "grandchild",
}
_SPOUSES = frozenset({"wife", "husband", "spouse"})
# Adjectives before a relation noun; "best" changes the relation, the others only colour it.
_REL_ADJ = (
    "little|big|older|younger|elder|eldest|oldest|youngest|baby|twin|best|new|old|late|half|"
    "lovely|dear|only|first|second|third|other|beloved"
)
# A relation noun with one of these adjectives is in the past ("his first album was ...").
_PAST_ADJ = frozenset({"first", "debut", "old", "former", "late", "previous", "childhood"})

_JOB_WORDS = frozenset(
    """nurse doctor teacher chef cook lawyer engineer developer designer architect pilot student
    librarian dentist vet veterinarian farmer baker carpenter plumber electrician mechanic
    accountant consultant manager analyst scientist researcher professor lecturer journalist
    writer editor photographer producer musician artist actor actress painter programmer
    firefighter officer paramedic pharmacist therapist surgeon midwife translator interpreter
    tutor coach barista waiter waitress cashier clerk secretary receptionist driver salesperson
    entrepreneur founder intern freelancer composer dj sculptor illustrator animator economist
    physicist chemist biologist geologist historian psychologist psychiatrist nutritionist
    optician physiotherapist physio radiologist cardiologist paediatrician pediatrician
    surveyor banker broker trader cleaner gardener landscaper butcher fishmonger tailor
    jeweller jeweler potter welder roofer bricklayer machinist technician administrator
    director ceo cto cfo founder co-founder owner pastor priest rabbi imam monk nun soldier
    sailor captain ranger guard detective inspector judge solicitor barrister paralegal
    curator archivist zookeeper vet-tech hairdresser barber stylist beautician dancer singer
    rapper comedian magician poet novelist author blogger streamer youtuber influencer
    copywriter marketer recruiter planner organiser organizer caterer bartender sommelier
    housekeeper nanny babysitter caregiver carer doula postman courier miner astronaut
    statistician mathematician linguist philosopher diplomat politician mayor councillor
    minister ambassador investor realtor agent auditor actuary""".split()
)
_JOB_SUFFIXES = (
    "er", "or", "ist", "ian", "ant", "eer", "man", "woman", "smith", "wright", "maker", "keeper",
    "grapher", "logist", "ician",
)
# Nouns that end like job words but describe something else ("I'm a twin", "a big fan").
_NOT_JOBS = frozenset(
    """number sister brother mother father daughter partner lover fan member person paper corner
    dinner summer winter water letter computer order door floor error hour power tower monster
    disaster beginner parent patient resident client moment event giant elephant adult twin
    introvert extrovert vegetarian vegan pescatarian believer dreamer thinker worrier gamer
    reader loner newcomer foreigner stranger user customer supporter follower listener viewer
    romantic optimist pessimist perfectionist minimalist night owl morning person early riser
    leftie lefty human mess wreck fighter survivor sucker talker walker runner swimmer""".split()
)
_INSTRUMENTS = frozenset(
    """piano guitar violin cello viola bass drums drum flute clarinet saxophone sax trumpet
    trombone harp ukulele banjo mandolin accordion harmonica oboe bassoon tuba keyboard
    keyboards synth synthesizer organ vibraphone xylophone marimba harpsichord bagpipes
    didgeridoo sitar tabla oud erhu horn percussion recorder lute zither bouzouki kalimba
    theremin cajon""".split()
)
_LANGUAGES = frozenset(
    """english spanish french german italian portuguese dutch polish russian ukrainian czech
    slovak hungarian romanian greek turkish arabic hebrew persian farsi hindi urdu bengali
    punjabi tamil telugu marathi gujarati swahili yoruba igbo hausa amharic zulu xhosa afrikaans
    chinese mandarin cantonese japanese korean vietnamese thai indonesian malay tagalog filipino
    swedish norwegian danish finnish icelandic estonian latvian lithuanian serbian croatian
    bosnian slovenian bulgarian albanian catalan basque galician welsh irish gaelic latin
    esperanto""".split()
)
_DEMONYMS = frozenset(
    """American British English Scottish Welsh Irish Canadian Mexican Brazilian Argentinian
    Argentine Chilean Colombian Peruvian Venezuelan Cuban Spanish Portuguese French German
    Italian Dutch Belgian Swiss Austrian Polish Czech Slovak Hungarian Romanian Bulgarian Greek
    Turkish Russian Ukrainian Swedish Norwegian Danish Finnish Icelandic Estonian Latvian
    Lithuanian Serbian Croatian Bosnian Slovenian Albanian Israeli Lebanese Syrian Iranian
    Iraqi Egyptian Moroccan Algerian Tunisian Nigerian Ghanaian Kenyan Ethiopian Indian
    Pakistani Bangladeshi Nepali Chinese Japanese Korean Vietnamese Thai Filipino Indonesian
    Malaysian Singaporean Australian Jamaican Haitian""".split()
)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
# Capitalised words that start sentences but are not names.
_CAP_STOP = frozenset(
    """I I'm The A An My Your His Her Our Their This That These Those It Its He She We They You
    Yesterday Today Tomorrow Tonight Now Then There Here What Who Where When Why How Which Hi
    Hello Hey Thanks Thank Yes No Yeah Yep Nope Ok Okay Oh Ah Well So And But Or If Because
    Also Actually Anyway Btw Lol Haha Sorry Please Last Next Every Monday Tuesday Wednesday
    Thursday Friday Saturday Sunday January February March July September October November
    December Just Really Maybe Sure Fine Good Great Not Very Still Back Home
    Mine Dear Mr Mrs Ms Dr Both All Some Any Everyone Everybody Nobody Someone People Since
    Before After During Once Usually Sometimes Honestly Basically Apparently Unfortunately
    Luckily Sadly Happy Glad Excited Busy Tired Done Ready Almost Right Wait Hmm Um Uh""".split()
)
# Values that are never facts on their own ("I love it", "I live there").
_VOID_VALUES = frozenset(
    """it that this these those them him her you me there here one some something anything
    everything nothing lots stuff things so too yes no ok okay sure all both us myself
    yourself himself herself""".split()
)
_VOID_FIRST_WORDS = frozenset(
    """it it's that this these those you your yours them him her how what when where why who
    whatever if whether to with about up out for at on in doing""".split()
)

# --------------------------------------------------------------------------------------------
# Regex building blocks (placeholders are substituted by _rx so the patterns stay readable)
# --------------------------------------------------------------------------------------------

_LETTER = r"[^\W\d_]"
_CAPWORD = rf"[A-ZÀ-ÖØ-Þ]{_LETTER}*(?:-{_LETTER}+)*(?![\w-])"
_NAME = (
    rf"(?<![\w'’-])(?!(?:{'|'.join(sorted(_CAP_STOP))})(?![\w'’-])){_CAPWORD}"
    rf"(?:\s+(?:(?:de|da|van|von|del|di|le|la|al)\s+)?{_CAPWORD}){{0,3}}"
)
_ADV = (
    r"(?:\s+(?i:also|still|now|currently|just|really|actually|recently|originally|mostly|"
    r"usually|even|already|finally|totally|absolutely|honestly|definitely|truly|genuinely|"
    r"only|both|all|kind of|sort of|pretty much|literally|secretly|always|remotely|"
    r"full-time|part-time|mainly|freelance))*"
)
_REL_NOUNS = sorted(
    [*PERSON_RELATIONS, *PET_RELATIONS, *_PLURALS, "guinea pig", "parents", "grandparents"],
    key=len,
    reverse=True,
)
_PLACEHOLDERS = {
    "<SUBJ>": rf"(?P<subj>\b(?:I|[Ww]e|[Hh]e|[Ss]he|[Tt]hey)\b|{_NAME})",
    "<POSS>": rf"(?P<poss>\b(?:[Mm]y|[Oo]ur|[Hh]is|[Hh]er|[Tt]heir)\b|(?P<pname>{_NAME})['’]s)",
    "<NAME>": _NAME,
    "<ADV>": _ADV,
    "<RELADJ>": _REL_ADJ,
    "<REL>": "|".join(re.escape(n) for n in _REL_NOUNS),
    "<NOTPOSS>": r"(?!['’]s\b)",
}


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    for key, value in _PLACEHOLDERS.items():
        pattern = pattern.replace(key, value)
    return re.compile(pattern, flags)


# Where a captured value stops: punctuation, clause openers and trailing time expressions.
_CUTS = [
    r"but", r"because", r"since", r"which", r"who", r"whom", r"whose", r"where", r"when",
    r"while", r"so", r"though", r"although", r"unless", r"if", r"until", r"as well", r"too",
    r"anyway", r"lol", r"haha", r"btw", r"these days", r"nowadays", r"right now",
    r"at the moment", r"currently", r"now", r"already", r"again", r"by the way", r"actually",
    r"i think", r"i guess", r"i suppose", r"originally", r"sometimes", r"often", r"usually",
    r"a lot", r"very much", r"so much", r"most days", r"at (?:the )?weekends?",
    r"on (?:the )?weekends?",
    r"on \w+days", r"every \w+", r"almost every \w+", r"once a \w+", r"twice a \w+",
    r"and (?:i|we|he|she|they|my|our|his|her|their|it|its|then|also|now|that|so|still|have|"
    r"has|am|is|was|are|were|do|did|there|here|honestly|yes|no)",
    r"or (?:i|so|something)", r"with (?:my|our|his|her|their)",
    r"for (?:about |almost |nearly |over |around |the past |the last )?(?:\d+|a|an|one|two|"
    r"three|four|five|six|seven|eight|nine|ten|many|several|a few|years|months|weeks|ages|"
    r"a while|work|a living|fun|now|the weekend)",
    r"(?:about |almost |nearly |over |around )?(?:\d+|a|an|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|a few|several|many|some) (?:years?|months?|weeks?|days?) ago",
    r"last (?:year|month|week|spring|summer|autumn|fall|winter|night|time)",
    r"this (?:year|month|week|spring|summer|autumn|fall|winter|weekend|morning|evening)",
    rf"(?:in|since|around|back in) (?:\d{{4}}|the \d{{4}}s|(?:early|late|mid) \d{{4}}|{_MONTHS})",
    r"in (?:my|his|her|their|our) (?:free|spare) time",
    r"(?-i:I)",  # a new clause: "Paris I would be happy"
]
_CUT_RE = re.compile(
    r"\s*(?:[,;:!?()\[\]\"“”]|\s[-–—]\s|\.(?:\s|$)|\.\.\.|(?<!\w)(?:" + "|".join(_CUTS) + r")\b)",
    re.IGNORECASE,
)
_KIND_CUTS = {
    "name": re.compile(r"\s+(?:and|from|who|is|was)\b", re.IGNORECASE),
    "place": re.compile(r"\s+(?:and|for|with|to|from|because|as|after|before)\b", re.I),
    "job": re.compile(
        r"\s+(?:at|for|in|from|with|who|on|since|by|near|and|based)\b", re.IGNORECASE
    ),
    "play": re.compile(
        r"\s+(?:on|in|at|with|for|and|since|every|when|as|to|professionally)\b", re.IGNORECASE
    ),
    "thing": re.compile(r"\s+(?:for|to|over|rather than|instead of|more than)\s", re.I),
}
_MAX_WORDS = {"name": 4, "place": 6, "job": 6, "play": 4}


# --------------------------------------------------------------------------------------------
# Context: who "he" and "she" can mean
# --------------------------------------------------------------------------------------------


@dataclass
class Person:
    """A person (or pet) named in the conversation; gender is "m", "f" or None (unknown)."""

    name: str
    gender: str | None = None


@dataclass
class ExtractionContext:
    """What pronoun resolution needs to remember across the messages of one conversation."""

    persons: list[Person] = field(default_factory=list)  # most recently mentioned last
    topic: str | None = None  # the person most recently talked *about* (a sentence subject)
    user_name: str | None = None

    def lookup(self, name: str) -> Person | None:
        """The known person ``name`` refers to, matching a first or last name to a full one."""
        for person in reversed(self.persons):
            if person.name == name:
                return person
        tokens = name.split()
        for person in reversed(self.persons):
            parts = person.name.split()
            if len(tokens) == 1 and len(parts) > 1 and tokens[0] in (parts[0], parts[-1]):
                return person
        return None

    def mention(self, name: str, gender: str | None = None, topic: bool = False) -> str:
        """Records a mention of ``name`` and returns its canonical (full) form."""
        person = self.lookup(name)
        if person is None:
            person = self._absorb_partial(name) or Person(name)
        else:
            self.persons.remove(person)
        self.persons.append(person)
        if gender and person.gender is None:
            person.gender = gender
        if topic:
            self.topic = person.name
        return person.name

    def _absorb_partial(self, name: str) -> Person | None:
        # "Andre" first, "Andre Patandre" later: the earlier entry becomes the full name.
        parts = name.split()
        for person in self.persons:
            if len(parts) > 1 and person.name in (parts[0], parts[-1]):
                self.persons.remove(person)
                if self.topic == person.name:
                    self.topic = name
                person.name = name
                return person
        return None

    def resolve(self, gender: str | None) -> str | None:
        """The person a pronoun means: "he"/"she" the most recent compatible person mentioned,
        "their" (gender None) the current topic, else the most recent person."""
        for person in self._candidates(prefer_topic=gender is None):
            if gender is None or person.gender in (None, gender):
                if gender and person.gender is None:
                    person.gender = gender
                return person.name
        return None

    def _candidates(self, prefer_topic: bool) -> list[Person]:
        ordered = [p for p in reversed(self.persons) if p.name != self.user_name]
        topic = next((p for p in ordered if p.name == self.topic), None)
        if not prefer_topic or topic is None:
            return ordered
        return [topic, *[p for p in ordered if p is not topic]]


@dataclass
class _Subject:
    key: str  # "user" or the person's name
    user: bool

    @property
    def name(self) -> str:
        return "You" if self.user else self.key

    @property
    def poss(self) -> str:
        return "Your" if self.user else _possessive(self.key)


@dataclass
class _Found:
    fact: Fact
    span: tuple[int, int]  # where the value came from in the sentence, to avoid double use


_Handler = Callable[[re.Match[str], ExtractionContext, list[int], str], list[_Found]]
_USER = _Subject(USER_SUBJECT, True)
_PRONOUN_GENDER = {"he": "m", "his": "m", "him": "m", "she": "f", "her": "f", "they": None,
                   "their": None}

# --------------------------------------------------------------------------------------------
# Text preparation
# --------------------------------------------------------------------------------------------

_CONTRACTIONS = [
    (r"[’‘`´]", "'"),
    (r"[“”]", '"'),
    (r"\be\.g\.", "eg"),
    (r"\bi\.e\.", "ie"),
    (r"\bi\b", "I"),
    (r"\bI'm\b", "I am"),
    (r"\bI've\b", "I have"),
    (r"\bI'd\b", "I would"),
    (r"\bI'll\b", "I will"),
    (r"\b([Hh]e|[Ss]he)'s (been|got)\b", r"\1 has \2"),
    (r"\b([Hh]e|[Ss]he|[Ii]t|[Tt]hat|[Tt]here|[Ww]hat|[Ww]ho|[Ww]here)'s\b", r"\1 is"),
    (r"\b([Ww]e|[Tt]hey|[Yy]ou)'re\b", r"\1 are"),
    (r"\b([Ww]e|[Tt]hey|[Yy]ou)'ve\b", r"\1 have"),
    (r"\bname's\b", "name is"),
    (r"\b(birthday|hometown|job)'s\b", r"\1 is"),
    (r"\b([A-Z][a-z]+)'s (been|got)\b", r"\1 has \2"),
    (
        r"\b([A-Z][a-z]+)'s (a|an|the|from|originally|living|working|based|married|allergic|"
        r"learning|studying|\d)",
        r"\1 is \2",
    ),
    (r"\b(St|Dr|Mr|Mrs|Ms|Prof|Jr|Sr|Mt|Ave|Rd|vs|etc)\.", r"\1"),
    (r"[ \t]+", " "),
]
_CONTRACTION_RES = [(re.compile(p), r) for p, r in _CONTRACTIONS]
_DISCOURSE_RE = re.compile(
    r"^(?:(?:oh|ah|well|so|ok|okay|anyway|anyways|actually|also|and|but|btw|by the way|no|yes|"
    r"yeah|yep|nope|hmm|um|uh|lol|haha|right|sure|honestly|basically|fun fact|oh and|and also|"
    r"just so you know|for the record|in fact|correction|sorry|to be clear|wait|hey|hi|hello|"
    r"ha|haha|oops|anyhow|plus|then again|funny enough|funnily enough)\b[\s,:;!.-]*)+",
    re.IGNORECASE,
)
_QUESTION_START = frozenset(
    """what who where when why how which whose do does did is are am was were can could would
    will should shall have has had may might tell any remember know guess""".split()
)
_HEDGE_RE = re.compile(
    r"\b(?:if|wish|imagine|suppose|pretend|whether|unless|wonder|dream of|dreamt|dreamed)\b"
    r"[^,;]*$",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Straightens quotes and expands the contractions the patterns rely on."""
    for regex, repl in _CONTRACTION_RES:
        text = regex.sub(repl, text)
    return text.strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (abbreviation periods are dropped by ``normalise`` beforehand)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if p and p.strip()]


def _strip_discourse(sentence: str) -> str:
    return _DISCOURSE_RE.sub("", sentence).strip()


def _is_question(body: str) -> bool:
    words = body.split(maxsplit=1)
    return body.endswith("?") and bool(words) and words[0].lower() in _QUESTION_START


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _possessive(name: str) -> str:
    return f"{name}'s"


def _article(phrase: str) -> str:
    word = phrase.lower()
    if word.startswith(("uni", "eu", "use", "one", "ur")):
        return "a"
    if word.startswith(("hour", "honest", "heir")):
        return "an"
    return "an" if word[:1] in "aeiou" else "a"


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _words(text: str) -> list[str]:
    return text.split()


def _clean_value(raw: str, kind: str = "free") -> str:
    """Cuts a captured rest-of-sentence down to the value itself; '' when nothing is left."""
    value = raw.strip().strip("\"'")
    cut = _CUT_RE.search(value)
    if cut:
        value = value[: cut.start()]
    extra = _KIND_CUTS.get(kind)
    if extra:
        cut = extra.search(value)
        if cut:
            value = value[: cut.start()]
    value = value.strip(" \t'\"-.,")
    if not value or len(_words(value)) > _MAX_WORDS.get(kind, 8):
        return ""
    return "" if value.lower() in _VOID_VALUES else value


def _void_start(value: str) -> bool:
    first = value.split(maxsplit=1)[0].lower() if value else ""
    return first in _VOID_FIRST_WORDS


def _leading_name(value: str) -> str:
    """The capitalised name at the start of ``value`` ('' when it does not start with one)."""
    match = re.match(_NAME, value)
    return _valid_name(match.group(0)) if match else ""


def _valid_name(name: str) -> str:
    tokens = name.split()
    while tokens and tokens[0] in _CAP_STOP:
        tokens = tokens[1:]
    if not tokens or any(t in ("I", "I'm") for t in tokens):
        return ""
    return " ".join(tokens)


def _is_job(phrase: str) -> bool:
    phrase = phrase.lower().strip()
    if not phrase or phrase in _NOT_JOBS:
        return False
    head = phrase.split()[-1]
    if head in _NOT_JOBS or " ".join(phrase.split()[-2:]) in _NOT_JOBS:
        return False
    return head in _JOB_WORDS or (len(head) > 4 and head.endswith(_JOB_SUFFIXES))


def _relation_noun(noun: str) -> str:
    noun = noun.lower().strip()
    noun = _PLURALS.get(noun, noun)
    return {"fiancé": "fiance", "fiancée": "fiancee", "guinea pig": "guinea-pig"}.get(noun, noun)


def _is_person_or_pet(relation: str) -> bool:
    head = relation.split()[-1] if relation else ""
    return relation in PERSON_RELATIONS or head in PERSON_RELATIONS or head in PET_RELATIONS


_MODALS = frozenset({"can", "can't", "cannot", "could", "used", "was", "were", "will", "would"})
_IRREGULAR_PAST = frozenset(
    "grew came went ran made wrote built bought got had did taught began saw met won".split()
)


def _conj(verb_phrase: str, user: bool) -> str:
    """Conjugates a verb phrase the user said ("love", "am into") for the statement's subject."""
    words = verb_phrase.split()
    head, rest = words[0].lower(), words[1:]
    if head in ("don't", "doesn't"):
        head = "don't" if user else "doesn't"
    elif head in ("do", "does"):
        head = "do" if user else "does"
    elif head in ("am", "is", "are"):
        head = "are" if user else "is"
    elif head in ("have", "has"):
        head = "have" if user else "has"
    elif not (head.endswith("ed") or head in _MODALS or head in _IRREGULAR_PAST):
        base = _base_form(head)
        head = base if user else _third_person(base)
    return " ".join([head, *rest])


def _base_form(verb: str) -> str:
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "oes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith("ss") and len(verb) > 3:
        return verb[:-1]
    return verb


def _third_person(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "o")):
        return base + "es"
    if base.endswith("y") and base[-2:-1] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


# --------------------------------------------------------------------------------------------
# Default statements per relation: (about the user, about a named person)
# --------------------------------------------------------------------------------------------

_STATEMENTS: dict[str, tuple[str, str]] = {
    "name": ("Your name is {v}.", "{s}'s name is {v}."),
    "lives_in": ("You live in {v}.", "{s} lives in {v}."),
    # not "You used to live in ...": sharing "You live in" with lives_in, the small model
    # mixed up the current and the former city (paper's lesson: relations, not associations)
    "previous_city": ("Before your move, your home was {v}.", "Before moving, {s}'s home was {v}."),
    "hometown": ("You are from {v}.", "{s} is from {v}."),
    "birthplace": ("You were born in {v}.", "{s} was born in {v}."),
    "job": ("You are {a} {v}.", "{s} is {a} {v}."),
    "previous_job": ("You used to work as {a} {v}.", "{s} used to work as {a} {v}."),
    "employer": ("You work at {v}.", "{s} works at {v}."),
    "field": ("You work in {v}.", "{s} works in {v}."),
    "studied": ("You studied {v}.", "{s} studied {v}."),
    "studied_at": ("You studied at {v}.", "{s} studied at {v}."),
    "teaches": ("You teach {v}.", "{s} teaches {v}."),
    "likes": ("You love {v}.", "{s} loves {v}."),
    "dislikes": ("You hate {v}.", "{s} hates {v}."),
    "allergy": ("You are allergic to {v}.", "{s} is allergic to {v}."),
    "speaks": ("You speak {v}.", "{s} speaks {v}."),
    "learning": ("You are learning {v}.", "{s} is learning {v}."),
    "instrument": ("You play the {v}.", "{s} plays the {v}."),
    "plays": ("You play {v}.", "{s} plays {v}."),
    "hobby": ("Your hobby is {v}.", "{s}'s hobby is {v}."),
    "birth_year": ("You were born in {v}.", "{s} was born in {v}."),
    "birthday": ("Your birthday is {v}.", "{s}'s birthday is {v}."),
    "age": ("You are {v} years old.", "{s} is {v} years old."),
    "nationality": ("You are {v}.", "{s} is {v}."),
    "diet": ("You are {v}.", "{s} is {v}."),
    "drives": ("You drive {a} {v}.", "{s} drives {a} {v}."),
    "description": ("You are {a} {v}.", "{s} is {a} {v}."),
}


def _make_fact(
    subj: _Subject,
    relation: str,
    value: str,
    ids: list[int],
    statement: str | None = None,
) -> Fact:
    if statement is None:
        statement = _default_statement(subj, relation, value)
    statement = _sentence(statement)
    if value not in statement:  # a statement must carry the value verbatim (tests rely on it)
        statement = _sentence(_default_statement(subj, relation, value))
    return Fact(subj.key, relation, value, statement, list(ids), "pattern")


def _default_statement(subj: _Subject, relation: str, value: str) -> str:
    if relation.startswith(("favourite ", "favorite ")):
        return f"{subj.poss} {relation} is {value}."
    if relation in _STATEMENTS:
        you, third = _STATEMENTS[relation]
        return (you if subj.user else third).format(s=subj.key, v=value, a=_article(value))
    be = "was" if relation.split()[0] in _PAST_ADJ else "is"
    called = "" if relation in PERSON_RELATIONS else " called"
    return f"{subj.poss} {relation} {be}{called} {value}."


# --------------------------------------------------------------------------------------------
# Rules: each is a regex over one sentence and a handler that turns a match into facts
# --------------------------------------------------------------------------------------------


@dataclass
class _Rule:
    name: str
    regex: re.Pattern[str]
    handler: _Handler


def _subject(
    m: re.Match[str], ctx: ExtractionContext, allow_we: bool = False, topic: bool = True
) -> _Subject | None:
    raw = m.group("subj")
    lower = raw.lower()
    if lower == "i" or (allow_we and lower == "we") or raw.split()[-1] == "I":
        return _USER  # "Sadly I ..." reaches here as a capitalised run ending in "I"
    if lower in ("we", "they"):
        return None  # plural subjects are too ambiguous to attribute
    if lower in ("he", "she"):
        name = ctx.resolve(_PRONOUN_GENDER[lower])
        return _Subject(name, False) if name else None
    name = _valid_name(raw)
    if not name:
        return None
    if name == ctx.user_name:
        return _USER  # "Maya is ..." from Maya herself
    return _Subject(ctx.mention(name, topic=topic), False)


def _possessor(m: re.Match[str], ctx: ExtractionContext) -> _Subject | None:
    raw = m.group("poss")
    lower = raw.lower()
    if lower in ("my", "our"):
        return _USER
    if lower in _PRONOUN_GENDER:
        name = ctx.resolve(_PRONOUN_GENDER[lower])
        return _Subject(name, False) if name else None
    name = _valid_name(m.group("pname") or "")
    if not name:
        return None
    if name == ctx.user_name:
        return _USER
    return _Subject(ctx.mention(name, topic=True), False)


def _span(m: re.Match[str], group: str, value: str) -> tuple[int, int]:
    start = m.start(group)
    offset = m.group(group).find(value)
    start += max(offset, 0)
    return (start, start + len(value))


def _found(m: re.Match[str], group: str, fact: Fact) -> _Found:
    return _Found(fact, _span(m, group, fact.value))


def _sentence_initial_unknown(m: re.Match[str], ctx: ExtractionContext) -> bool:
    """A lone capitalised word opening the sentence may be a common noun ("Music is a ...")."""
    raw = m.group("subj")
    return m.start("subj") == 0 and len(raw.split()) == 1 and ctx.lookup(raw) is None


# -- where the user lives, lived and comes from ------------------------------------------------


def _h_moved(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx, allow_we=True)
    if subj is None:
        return []
    found = []
    groups = m.groupdict()
    to = _clean_value(groups.get("to") or "", "place")
    if to and to.lower() not in ("here", "there", "town", "the city"):
        found.append(_found(m, "to", _make_fact(subj, "lives_in", to, ids)))
    origin = _clean_value(groups.get("frm") or "", "place")
    if origin:
        found.append(_found(m, "frm", _make_fact(subj, "previous_city", origin, ids)))
    return found


def _place_handler(relation: str, verb: str | None = None, allow_we: bool = True) -> _Handler:
    """Handler for "<subject> <verb> <place>" rules; ``verb`` restates how the user said it."""

    def handler(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
        subj = _subject(m, ctx, allow_we=allow_we)
        value = _clean_value(m.group("v"), "place")
        if subj is None or not value or _void_start(value):
            return []
        statement = None
        if verb:
            prep = (m.groupdict().get("prep") or "in").lower()
            statement = f"{subj.name} {_conj(verb, subj.user)} {prep} {value}."
        return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]

    return handler


# -- names and people ----------------------------------------------------------------------------


def _h_my_name(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    name = _valid_name(m.group("v"))
    if not name:
        return []
    ctx.user_name = name
    statement = "You like to be called {v}." if "call" in m.group(0).lower() else None
    statement = statement.format(v=name) if statement else None
    return [_found(m, "v", _make_fact(_USER, "name", name, ids, statement))]


def _h_i_am_name(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    raw = m.group("v")
    first = raw.split()[0]
    if first in _DEMONYMS:
        return [_found(m, "v", _make_fact(_USER, "nationality", first, ids))]
    name = _valid_name(raw)
    if not name or name != raw or first.lower() in _LANGUAGES:
        return []
    ctx.user_name = name
    return [_found(m, "v", _make_fact(_USER, "name", name, ids))]


def _h_his_name(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    name = _valid_name(m.group("v"))
    if name:
        gender = _PRONOUN_GENDER.get(m.group("pp").lower())
        ctx.mention(name, gender=gender, topic=True)
    return []  # it introduces a person; the facts about them come from later sentences


def _relation_fact(
    owner: _Subject,
    relation: str,
    value: str,
    ids: list[int],
    ctx: ExtractionContext,
    statement: str | None = None,
) -> Fact | None:
    """A "<owner>'s <relation> is <value>" fact; people and pets must have a real name."""
    if _is_person_or_pet(relation):
        names = [_valid_name(n) for n in re.split(r",\s*|\s+and\s+", value)]
        names = [_leading_name(value)] if len(names) == 1 else names
        if not all(names) or ctx.user_name in names or owner.key in names:
            return None
        for name in names:
            ctx.mention(name, gender=PERSON_RELATIONS.get(relation))
        value = value if len(names) > 1 else names[0]
    return _make_fact(owner, relation, value, ids, statement)


def _rel_key(m: re.Match[str]) -> str:
    noun = _relation_noun(m.group("rel"))
    adj = (m.groupdict().get("adj") or "").strip().lower()
    return f"best {noun}" if adj == "best" and noun == "friend" else noun


def _h_rel_is(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    if owner is None:
        return []
    relation = _rel_key(m)
    value = m.group("v") if " and " in m.group("v") else _clean_value(m.group("v"), "name")
    fact = _relation_fact(owner, relation, value, ids, ctx, _rel_statement(m, owner, value))
    return [_found(m, "v", fact)] if fact else []


def _rel_statement(m: re.Match[str], owner: _Subject, value: str) -> str:
    adj = (m.groupdict().get("adj") or "").strip()
    noun = m.group("rel").lower()
    verb = m.groupdict().get("verb") or ("are" if noun in _PLURALS else "is")
    phrase = f"{adj} {noun}".strip()
    if noun in PET_RELATIONS:
        return f"{owner.poss} {phrase} {verb} called {value}."
    return f"{owner.poss} {phrase} {verb} {value}."


def _h_rel_fact(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    """A relation fact from a match with a possessor and a ``v`` group (both word orders)."""
    owner = _possessor(m, ctx)
    if owner is None:
        return []
    relation = _rel_key(m)
    fact = _relation_fact(owner, relation, m.group("v"), ids, ctx)
    if fact is None:
        return []
    fact.statement = _sentence(_rel_statement(m, owner, fact.value))
    return [_found(m, "v", fact)]


def _h_have_rel(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    """"I have a sister, Mia", "I have two kids, Sam and Ella"."""
    subj = _subject(m, ctx, allow_we=True)
    if subj is None:
        return []
    relation = _rel_key(m)
    names = [_valid_name(n) for n in re.split(r",\s*|\s+and\s+", m.group("v"))]
    if not names or not all(names):
        return []
    value = " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    for name in names:
        ctx.mention(name, gender=PERSON_RELATIONS.get(relation))
    verb = "have" if subj.user else "has"
    statement = f"{subj.name} {verb} {m.group('det')} {m.group('rel')}, {value}."
    return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]


def _h_married(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    name = _valid_name(m.group("v"))
    if subj is None or not name:
        return []
    name = ctx.mention(name)
    statement = f"{subj.name} {'are' if subj.user else 'is'} married to {name}."
    return [_found(m, "v", _make_fact(subj, "spouse", name, ids, statement))]


def _h_named_thing(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str
) -> list[_Found]:
    """"I have a dog named Biscuit", "Andre runs a little studio called Kestrel Room"."""
    subj = _subject(m, ctx, allow_we=True)
    if subj is None:
        return []
    relation = _relation_noun(m.group("rel"))
    value = _clean_value(m.group("v"), "name" if _is_person_or_pet(relation) else "free")
    if not value or _void_start(value):
        return []
    det = (m.group("det") or "").strip()
    adjs = (m.group("adjs") or "").strip()
    verb = _conj(m.group("verb").lower(), subj.user)
    statement = f"{subj.name} {verb} {det} {adjs} {m.group('rel')} called {value}."
    fact = _relation_fact(subj, relation, value, ids, ctx, statement)
    return [_found(m, "v", fact)] if fact else []


def _h_generic_poss(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str
) -> list[_Found]:
    """"His first album was called X", "my band is called X": named things and attributes."""
    attr = m.group("attr").lower()
    if attr.split()[0] in ("favourite", "favorite", "fave", "name", "own", "job", "birthday"):
        return []
    owner = _possessor(m, ctx)
    called = m.group("called") or ""
    value = _clean_value(m.group("v"), "free")
    if called:
        value = value.strip("\"'")
    elif not re.match(r"[\"A-ZÀ-Þ0-9]", m.group("v")):
        return []  # without "called", only a name-like value is a fact ("my car is red" is not)
    if owner is None or not value or _void_start(value):
        return []
    if "language" in attr or "tongue" in attr:
        statement = f"{owner.poss} {attr} is {value}."
        return [_found(m, "v", _make_fact(owner, "speaks", value, ids, statement))]
    statement = f"{owner.poss} {attr} {m.group('verb')} {called} {value}."
    fact = _relation_fact(owner, _relation_noun(attr), value, ids, ctx, statement)
    return [_found(m, "v", fact)] if fact else []


# -- work and study -------------------------------------------------------------------------


def _job_facts(
    m: re.Match[str],
    subj: _Subject,
    ids: list[int],
    past: bool = False,
    article: str | None = None,
) -> list[_Found]:
    raw = m.group("v")
    job = _clean_value(raw, "job")
    job = re.sub(r"^(?:an?|the)\s+", "", job, flags=re.IGNORECASE)
    if not job or _void_start(job):
        return []
    relation = "previous_job" if past else "job"
    statement = None
    if article == "the" and not past:
        statement = f"{subj.name} {'are' if subj.user else 'is'} the {job}."
    found = [_found(m, "v", _make_fact(subj, relation, job, ids, statement))]
    rest = _clean_value(raw, "free")
    place = re.search(r"\b(at|for)\s+(.+)$", rest)
    if place and not past:
        found.extend(_workplace(m, subj, job, place.group(1), place.group(2), ids))
    return found


def _workplace(
    m: re.Match[str], subj: _Subject, job: str, prep: str, raw: str, ids: list[int]
) -> list[_Found]:
    value = _clean_value(raw, "place")
    if not value or _void_start(value):
        return []
    if job.lower() == "student":
        verb = "study" if subj.user else "studies"
        fact = _make_fact(subj, "studied_at", value, ids, f"{subj.name} {verb} at {value}.")
    else:
        verb = "work" if subj.user else "works"
        fact = _make_fact(subj, "employer", value, ids, f"{subj.name} {verb} {prep} {value}.")
    return [_found(m, "v", fact)]


def _h_work_as(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    past = m.group("verb").lower() == "worked"
    return _job_facts(m, subj, ids, past=past)


_TEMPORAL_CLAUSE = re.compile(
    r"\b(?:since|when|while|until|after|before|as|once|whenever)\s*$", re.IGNORECASE
)


def _h_be_a(m: re.Match[str], ctx: ExtractionContext, ids: list[int], body: str) -> list[_Found]:
    """"I am a nurse at X", "Andre Patandre is a music producer", "He is a twin"."""
    if _TEMPORAL_CLAUSE.search(body[: m.start()]):
        return []  # "since I was a kid" describes a time, not the person
    risky = _sentence_initial_unknown(m, ctx)  # checked before _subject registers the name
    job = _clean_value(m.group("v"), "job")
    if risky and not _is_job(job):
        return []  # "Music is a big part of my life" is not about a person called Music
    subj = _subject(m, ctx, topic=False)
    if subj is None:
        return []
    article = m.group("art").lower()
    past = m.group("be").lower() == "was"
    if _is_job(job):
        if not subj.user:
            ctx.mention(subj.key, topic=True)
        return _job_facts(m, subj, ids, past=past and subj.user, article=article)
    return _description(m, ctx, subj, ids, article, past)


def _description(
    m: re.Match[str],
    ctx: ExtractionContext,
    subj: _Subject,
    ids: list[int],
    article: str,
    past: bool,
) -> list[_Found]:
    value = _clean_value(m.group("v"), "free")
    first = value.split(maxsplit=1)[0].lower() if value else ""
    if not value or _void_start(value) or first in ("bit", "little", "lot", "few", "couple"):
        return []
    if not subj.user:
        ctx.mention(subj.key, topic=True)
    be = ("were" if subj.user else "was") if past else ("are" if subj.user else "is")
    statement = f"{subj.name} {be} {article} {value}."
    return [_found(m, "v", _make_fact(subj, "description", value, ids, statement))]


def _h_appos_job(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    name = _valid_name(m.group("name"))
    job = _clean_value(m.group("v"), "job")
    if not name or not _is_job(job):
        return []
    subj = _Subject(ctx.mention(name, topic=True), False)
    return [_found(m, "v", _make_fact(subj, "job", job, ids))]


def _h_job_is(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    return _job_facts(m, owner, ids) if owner else []


def _h_work_at(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "place")
    if subj is None or not value or _void_start(value):
        return []
    prep = m.group("prep").lower()
    relation = "employer"
    if prep == "in" and not re.match(r"[A-ZÀ-Þ]", value):
        relation = "field"  # "I work in marketing" is a field, "I work in Lisbon" a place
    verb = _conj(m.group("verb").split()[-1].lower(), subj.user)
    statement = f"{subj.name} {verb} {prep} {value}."
    named = re.match(r"(?:an?|the)\s+(?:[\w-]+\s+){0,2}?(?:called|named)\s+(.+)", value)
    value = named.group(1) if named else value  # "a startup called Brightleaf" -> Brightleaf
    found = [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]
    role = re.search(r"\bas\s+(?:an?\s+)?(.+)$", m.group("v"))
    job = _clean_value(role.group(1), "job") if role else ""
    if job and not _void_start(job):  # "I work at St Mary's as a nurse"
        found.append(_Found(_make_fact(subj, "job", job, ids), (m.end("v"), m.end("v"))))
    return found


def _h_teach(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "job")
    if subj is None or not value or _void_start(value):
        return []
    found = [_found(m, "v", _make_fact(subj, "teaches", value, ids))]
    place = re.search(r"\bat\s+(.+)$", _clean_value(m.group("v"), "free"))
    if place:
        found.extend(_workplace(m, subj, "teacher", "at", place.group(1), ids))
    return found


def _h_study(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "job")
    if subj is None or not value or _void_start(value):
        return []
    verb = m.group("verb").lower()
    said = f"{subj.name} {_conj(verb, subj.user) if verb in ('study', 'studies') else verb}"
    if verb.startswith(("am ", "is ", "are ")):
        said = f"{subj.name} {'are' if subj.user else 'is'} studying"
    elif not verb.startswith(("studied", "study", "studies")):
        said = f"{subj.name} studied"
    found = [_found(m, "v", _make_fact(subj, "studied", value, ids, f"{said} {value}."))]
    rest = _clean_value(m.group("v"), "free")
    place = re.search(r"\b(?:at|in)\s+((?:the\s+)?[A-ZÀ-Þ].+)$", rest)
    if place:
        found.extend(_workplace(m, subj, "student", "at", place.group(1), ids))
    return found


def _h_school(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "place")
    if subj is None or not re.search(r"universit|college|school|academy|institute|conservato",
                                     value, re.IGNORECASE):
        return []
    return [_found(m, "v", _make_fact(subj, "studied_at", value, ids))]


# -- dates, age, body -------------------------------------------------------------------------

_YEAR_RE = re.compile(r"\b(1[89]\d\d|20[0-2]\d)\b")
_DATE_RE = re.compile(
    rf"\b((?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b(?:\s+\d{{4}})?|"
    rf"(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?)",
    re.IGNORECASE,
)


def _h_born(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    # The first clause, uncut: "born in Nairobi in 1988" holds both a place and a year.
    rest = re.split(r"[,;]|\s(?:but|because|and I|so)\s", m.group("v"))[0]
    found = []
    date = _DATE_RE.search(rest)
    if date:
        value = re.sub(r"^the\s+", "", date.group(1), flags=re.I)
        statement = f"{subj.name} {'were' if subj.user else 'was'} born on {date.group(1)}."
        found.append(_found(m, "v", _make_fact(subj, "birthday", value, ids, statement)))
    year = _YEAR_RE.search(rest)
    if year and not date:
        found.append(_found(m, "v", _make_fact(subj, "birth_year", year.group(1), ids)))
    place = re.search(r"\bin\s+(?!\d)(?!the\s+\d)([A-ZÀ-Þ].*)", rest)
    if place:
        value = _clean_value(re.split(r"\s+in\s+\d", place.group(1))[0], "place")
        if value:
            found.append(_found(m, "v", _make_fact(subj, "birthplace", value, ids)))
    return found


def _h_birthday(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    date = _DATE_RE.search(m.group("v"))
    if owner is None or not date:
        return []
    value = re.sub(r"^the\s+", "", date.group(1), flags=re.I)
    return [_found(m, "v", _make_fact(owner, "birthday", value, ids))]


def _h_age(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx, topic=False)
    age = int(m.group("v"))
    if subj is None or not 1 <= age <= 120:
        return []
    if not subj.user and _sentence_initial_unknown(m, ctx):
        return []
    return [_found(m, "v", _make_fact(subj, "age", m.group("v"), ids))]


def _h_allergy(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "thing")
    if subj is None or not value or _void_start(value):
        return []
    statement = None
    if m.group(0).rstrip().lower().endswith("allergy"):
        verb = "have" if subj.user else "has"
        statement = f"{subj.name} {verb} {_article(value)} {value} allergy."
    return [_found(m, "v", _make_fact(subj, "allergy", value, ids, statement))]


def _h_diet(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    return [_found(m, "v", _make_fact(subj, "diet", m.group("v").lower(), ids))]


def _h_nationality(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str
) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    return [_found(m, "v", _make_fact(subj, "nationality", m.group("v"), ids))]


# -- languages, music, hobbies, tastes ------------------------------------------------------


def _h_speak(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "free")
    if subj is None or not value or _void_start(value):
        return []
    words = re.findall(r"[\w-]+", value.lower())
    if not any(w in _LANGUAGES for w in words) and not re.search(r"[A-ZÀ-Þ]", value):
        return []
    return [_found(m, "v", _make_fact(subj, "speaks", value, ids))]


def _h_learn(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    raw = m.group("v")
    skill = re.match(r"(?:how\s+)?to\s+(.+)", raw)
    value = _clean_value(skill.group(1) if skill else raw, "thing")
    if m.group("verb").lower() == "taking":
        lesson = re.match(r"(.+?)\s+(?:lessons|classes|courses?)\b", value)
        value = lesson.group(1) if lesson else ""
    if subj is None or not value or _void_start(value):
        return []
    be = "are" if subj.user else "is"
    statement = f"{subj.name} {be} learning {'to ' if skill else ''}{value}."
    return [_found(m, "v", _make_fact(subj, "learning", value, ids, statement))]


def _h_play(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "play")
    if subj is None or not value or _void_start(value):
        return []
    has_the = bool(m.groupdict().get("the"))
    is_instrument = has_the or value.lower().split()[-1] in _INSTRUMENTS
    relation = "instrument" if is_instrument else "plays"
    verb = _conj(m.group("verb").split()[-1].lower(), subj.user)
    the = "the " if has_the else ""
    statement = f"{subj.name} {verb} {the}{value}."
    return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]


def _h_go_ing(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = m.group("v")
    if subj is None or value.lower() in ("going", "nothing", "something", "shopping"):
        return []
    verb = _conj(m.group("verb").lower(), subj.user)
    statement = f"{subj.name} {verb} {value}."
    return [_found(m, "v", _make_fact(subj, "hobby", value, ids, statement))]


def _h_hobby(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    value = _clean_value(m.group("v"), "thing")
    if owner is None or not value or _void_start(value):
        return []
    statement = f"{owner.poss} {m.group('what').lower()} {m.group('verb').lower()} {value}."
    return [_found(m, "v", _make_fact(owner, "hobby", value, ids, statement))]


def _h_favourite(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    value = _clean_value(m.group("v"), "free")
    if owner is None or not value or _void_start(value):
        return []
    fav = "favorite" if m.group("fav").lower() == "favorite" else "favourite"
    thing = m.group("thing").lower()
    if thing in ("hobby", "pastime"):
        return _hobby_fact(m, owner, value, ids, f"{fav} {thing}")
    if m.start("v") == 0:  # "Pierogi are my favourite food": a sentence-initial capital
        value = _decapitalise(value, ctx)
    verb = "was" if m.group("verb").lower() == "was" else "is"
    statement = f"{owner.poss} {fav} {thing} {verb} {value}."
    fact = _make_fact(owner, f"{fav} {thing}", value, ids, statement)
    return [_found(m, "v", fact)]


def _hobby_fact(
    m: re.Match[str], owner: _Subject, value: str, ids: list[int], what: str
) -> list[_Found]:
    statement = f"{owner.poss} {what} is {value}."
    return [_found(m, "v", _make_fact(owner, "hobby", value, ids, statement))]


def _decapitalise(value: str, ctx: ExtractionContext) -> str:
    words = value.split()
    if ctx.lookup(value) or any(w[:1].isupper() for w in words[1:]):
        return value
    return value[:1].lower() + value[1:]


def _h_like(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    return _taste(m, ctx, ids, "likes")


def _h_dislike(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    return _taste(m, ctx, ids, "dislikes")


def _taste(m: re.Match[str], ctx: ExtractionContext, ids: list[int], relation: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "thing")
    if subj is None or not value or _void_start(value):
        return []
    verb = re.sub(r"\s+", " ", m.group("verb").lower())
    statement = f"{subj.name} {_conj(verb, subj.user)} {value}."
    return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]


def _h_drive(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "play")
    value = re.sub(r"^(?:an?|the|my)\s+", "", value, flags=re.IGNORECASE)
    bad = ("to", "home", "around", "everywhere", "me", "carefully", "fast", "slowly", "a lot")
    if subj is None or not value or _void_start(value) or value.lower().startswith(bad):
        return []
    return [_found(m, "v", _make_fact(subj, "drives", value, ids))]


# -- the rule table, most specific first -------------------------------------------------------

_MOVE = (
    r"<SUBJ><ADV>(?:\s+(?:have|has|had))?<ADV>\s+(?:moved|relocated)"
    r"(?:\s+(?:here|over|back|away))?"
)
_BE = r"(?P<be>am|is|are|was|were)"
_RULES: list[_Rule] = [
    _Rule("moved_to_from", _rx(_MOVE + r"\s+to\s+(?P<to>.+?)\s+from\s+(?P<frm>.+)"), _h_moved),
    _Rule("moved_from_to", _rx(_MOVE + r"\s+from\s+(?P<frm>.+?)\s+to\s+(?P<to>.+)"), _h_moved),
    _Rule("moved_to", _rx(_MOVE + r"\s+to\s+(?P<to>.+)"), _h_moved),
    _Rule("moved_from", _rx(_MOVE + r"\s+from\s+(?P<frm>.+)"), _h_moved),
    _Rule(
        "call_home",
        _rx(r"<SUBJ><ADV>\s+(?:call|calls)\s+(?P<v><NAME>)\s+home\b"),
        _place_handler("lives_in"),
    ),
    _Rule(
        "used_to_live",
        _rx(r"<SUBJ><ADV>\s+(?:used to|no longer)\s+(?:live|lives)\s+(?:in|near)\s+(?P<v>.+)"),
        _place_handler("previous_city"),
    ),
    _Rule(
        "lived",
        _rx(r"<SUBJ><ADV>\s+(?:lived|was living|were living)\s+(?:in|near)\s+(?P<v>.+)"),
        _place_handler("previous_city"),
    ),
    _Rule(
        "lives",
        _rx(
            r"<SUBJ><ADV>\s+(?:live|lives|am living|is living|are living|have lived|has lived|"
            r"have been living|has been living|am based|is based|are based|am staying|is staying|"
            r"reside|resides|am settled|is settled)<ADV>\s+(?:in|near|outside|outside of|on)"
            r"\s+(?P<v>.+)"
        ),
        _place_handler("lives_in"),
    ),
    _Rule(
        "my_name",
        _rx(r"\b[Mm]y\s+(?:full\s+|first\s+|real\s+|nick)?name\s+is\s+(?P<v><NAME>)"),
        _h_my_name,
    ),
    _Rule("call_me", _rx(r"(?i:\b(?:call|calls|called)\s+me)\s+(?P<v><NAME>)"), _h_my_name),
    _Rule("his_name", _rx(r"\b(?P<pp>[Hh]is|[Hh]er)\s+name\s+is\s+(?P<v><NAME>)"), _h_his_name),
    _Rule("i_am_name", _rx(r"\bI\s+am\s+(?P<v><NAME>)<NOTPOSS>"), _h_i_am_name),
    _Rule(
        "married",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|was|got|have been|has been)\s+(?:happily\s+)?"
            r"married\s+to\s+(?P<v><NAME>)"
        ),
        _h_married,
    ),
    _Rule(
        "rel_is",
        _rx(
            r"<POSS>\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>)(?:'s\s+name|'\s+names|\s+names?)?"
            r"\s+(?P<verb>is|was|are|were)\s+(?:(?:called|named)\s+)?"
            r"(?P<v><NAME><NOTPOSS>(?:\s+and\s+<NAME>)?)<NOTPOSS>"
        ),
        _h_rel_is,
    ),
    _Rule(
        "have_rel",
        _rx(
            r"<SUBJ><ADV>\s+(?:have|has|have got|has got)\s+(?P<det>an?|one|two|three|four|"
            r"five|\d)\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>),?\s+"
            r"(?P<v><NAME>(?:(?:,\s*|,?\s+and\s+)<NAME>)*)<NOTPOSS>"
        ),
        _h_have_rel,
    ),
    _Rule(
        "rel_appos",
        _rx(
            r"<POSS>\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>),?\s+(?P<v><NAME>)<NOTPOSS>"
        ),
        _h_rel_fact,
    ),
    _Rule(
        "name_is_rel",
        _rx(
            r"(?P<v><NAME>)\s+(?:is|was)\s+<POSS>\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>)\b"
            r"<NOTPOSS>"
        ),
        _h_rel_fact,
    ),
    _Rule(
        "named_thing",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>have got|has got|have|has|got|adopted|own|owns|run|runs|"
            r"started|founded|co-founded|opened|manage|manages|play in|plays in|sing in|sings in|"
            r"wrote|released|made|built|bought|host|hosts)\s+"
            r"(?P<det>an?|one|two|three|this|the|my|his|her|their|our)?\s*"
            r"(?P<adjs>(?:[a-z][\w-]*\s+){0,2}?)(?P<rel>[a-z][\w-]*)"
            r"(?:\s+(?:there|here|now))?,?\s+(?:called|named)\s+(?P<v>.+)"
        ),
        _h_named_thing,
    ),
    _Rule(
        "hobby",
        _rx(
            r"<POSS>\s+(?P<what>hobby|hobbies|(?:favou?rite\s+)?pastime|passion)\s+"
            r"(?P<verb>is|are|includes?)\s+(?P<v>.+)"
        ),
        _h_hobby,
    ),
    _Rule(
        "favourite",
        _rx(
            r"<POSS>\s+(?P<fav>(?i:favou?rite|fave))\s+(?P<thing>[a-z][\w-]*(?:\s+[a-z][\w-]*)"
            r"{0,2}?)\s+(?P<verb>is|are|was|has always been|would be|has to be)\s+(?P<v>.+)"
        ),
        _h_favourite,
    ),
    _Rule(
        "favourite_inverse",
        _rx(
            r"^(?P<v>[^,;]{1,40}?)\s+(?P<verb>is|are)\s+(?:definitely\s+|probably\s+)?"
            r"<POSS>\s+(?:all-time\s+)?(?P<fav>(?i:favou?rite|fave))\s+"
            r"(?P<thing>[a-z][\w-]*(?:\s+[a-z][\w-]*){0,2}?)(?=\s*(?:[,.!;]|$|\s+(?:and|but|"
            r"so|of|ever|in|because)\b))"
        ),
        _h_favourite,
    ),
    _Rule(
        "work_as",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>work|works|worked|am working|is working|are working|"
            r"have worked|has worked|have been working|has been working|am employed|"
            r"is employed)<ADV>\s+as\s+(?P<v>.+)"
        ),
        _h_work_as,
    ),
    _Rule(
        "job_is",
        _rx(r"<POSS>\s+(?:day\s+)?(?:job|profession|occupation)\s+is\s+(?:being\s+)?(?P<v>.+)"),
        _h_job_is,
    ),
    _Rule(
        "allergic",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|was|have been|has been)\s+(?:(?i:very|severely|"
            r"really|quite|mildly|seriously|deathly|extremely|super|badly|slightly)\s+)?"
            r"allergic\s+to\s+(?P<v>.+)"
        ),
        _h_allergy,
    ),
    _Rule(
        "allergy_to",
        _rx(r"<SUBJ><ADV>\s+(?:have|has|have got|has got)\s+an?\s+allergy\s+to\s+(?P<v>.+)"),
        _h_allergy,
    ),
    _Rule(
        "x_allergy",
        _rx(
            r"<SUBJ><ADV>\s+(?:have|has|have got|has got)\s+an?\s+(?:(?:severe|serious|bad|"
            r"mild|slight)\s+)?(?P<v>[\w-]+(?:\s+[\w-]+)?)\s+allergy\b"
        ),
        _h_allergy,
    ),
    _Rule(
        "diet",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|have been|has been)\s+(?:an?\s+)?(?:strict\s+)?"
            r"(?P<v>(?i:vegetarian|vegan|pescatarian|lactose intolerant|gluten[- ]free|coeliac|"
            r"celiac|diabetic|teetotal))\b"
        ),
        _h_diet,
    ),
    _Rule(
        "nationality",
        _rx(r"<SUBJ>\s+(?:am|is|are)\s+(?:half\s+)?(?P<v>" + "|".join(_DEMONYMS) + r")\b"),
        _h_nationality,
    ),
    _Rule(
        "from",
        _rx(r"<SUBJ><ADV>\s+(?:am|is|are|was)\s+(?:originally\s+)?from\s+(?P<v>.+)"),
        _place_handler("hometown", allow_we=True),
    ),
    _Rule(
        "come_from",
        _rx(r"<SUBJ><ADV>\s+(?:come|comes)\s+from\s+(?P<v>.+)"),
        _place_handler("hometown", verb="come", allow_we=True),
    ),
    _Rule(
        "grew_up",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>grew up|was raised|were raised|was brought up)\s+"
            r"(?P<prep>in|on|near|outside|around|between)\s+(?P<v>.+)"
        ),
        _place_handler("hometown", verb="grew up", allow_we=True),
    ),
    _Rule(
        "hometown",
        _rx(r"<POSS>\s+(?:home\s?town|home city)\s+is\s+(?P<v>.+)"),
        lambda m, ctx, ids, s: _poss_place(m, ctx, ids, "hometown"),
    ),
    _Rule("born", _rx(r"<SUBJ>\s+(?:was|were)\s+born\s+(?P<v>.+)"), _h_born),
    _Rule(
        "birthday",
        _rx(r"<POSS>\s+(?:birthday|bday|b-day)\s+is\s+(?:on\s+)?(?P<v>.+)"),
        _h_birthday,
    ),
    _Rule(
        "age",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|turned|turn)\s+(?P<v>\d{1,3})(?![\d.,]\d|\w)"
            r"(?:\s+years?\s+old|\s+y/?o\b)?(?!\s*(?:%|percent|minutes?|mins?|hours?|km|miles|"
            r"kg|lbs|cm|euros|dollars|times|th|st|nd|rd)\b)"
        ),
        _h_age,
    ),
    _Rule(
        "study",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>studied|study|studies|am studying|is studying|are studying|"
            r"majored in|major in|did (?:my|a|his|her) (?:degree|masters|master's|phd|PhD|"
            r"bachelor's|doctorate) in|(?:have|has) (?:a|my|his|her) (?:degree|masters|"
            r"master's|phd|PhD|bachelor's|doctorate) in)\s+(?P<v>.+)"
        ),
        _h_study,
    ),
    _Rule(
        "school",
        _rx(r"<SUBJ><ADV>\s+(?:went to|go to|goes to|attended|attend|attends|graduated from)"
            r"\s+(?P<v>.+)"),
        _h_school,
    ),
    _Rule(
        "teach",
        _rx(r"<SUBJ><ADV>\s+(?:teach|teaches)\s+(?P<v>.+)"),
        _h_teach,
    ),
    _Rule(
        "work_at",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>work|works|am working|is working|are working|have worked|"
            r"has worked|have been working|has been working)<ADV>\s+(?P<prep>at|for|in)\s+"
            r"(?P<v>.+)"
        ),
        _h_work_at,
    ),
    _Rule(
        "speak",
        _rx(
            r"<SUBJ><ADV>\s+(?:speak|speaks|can speak|am fluent in|is fluent in|are fluent in|"
            r"grew up speaking)\s+(?:fluent\s+)?(?P<v>.+)"
        ),
        _h_speak,
    ),
    _Rule(
        "learn",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|have been|has been|started|began)\s+"
            r"(?:(?i:currently|slowly|still|also|trying to)\s+)*"
            r"(?P<verb>learning|learn|taking)\s+(?P<v>.+)"
        ),
        _h_learn,
    ),
    _Rule(
        "play_the",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>play|plays|can play|have played|has played)\s+"
            r"(?P<the>the)\s+(?P<v>.+)"
        ),
        _h_play,
    ),
    _Rule(
        "play",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>play|plays|can play)\s+(?P<v>(?!(?:the|with|in|on|at|for|"
            r"it|them|around|a lot|some|along|games? with|music|a game|this|that)\b).+)"
        ),
        _h_play,
    ),
    _Rule(
        "go_ing",
        _rx(r"<SUBJ><ADV>\s+(?P<verb>go|goes)\s+(?P<v>[a-z]+ing)\b"),
        _h_go_ing,
    ),
    _Rule(
        "like",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>love|loves|like|likes|enjoy|enjoys|adore|adores|prefer|"
            r"prefers|am into|is into|are into|am obsessed with|is obsessed with|"
            r"am passionate about|is passionate about|am (?:a\s+)?(?:big\s+|huge\s+|massive\s+)?"
            r"fan of|is (?:a\s+)?(?:big\s+|huge\s+|massive\s+)?fan of)\s+(?P<v>.+)"
        ),
        _h_like,
    ),
    _Rule(
        "dislike",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>hate|hates|dislike|dislikes|detest|detests|loathe|loathes|"
            r"can't stand|cannot stand|can not stand|don't like|do not like|doesn't like|"
            r"does not like|don't enjoy|do not enjoy|am not (?:a\s+)?(?:big\s+)?fan of|"
            r"is not (?:a\s+)?(?:big\s+)?fan of)\s+(?P<v>.+)"
        ),
        _h_dislike,
    ),
    _Rule("drive", _rx(r"<SUBJ><ADV>\s+(?:drive|drives)\s+(?P<v>.+)"), _h_drive),
    _Rule(
        "generic_poss",
        _rx(
            r"<POSS>\s+(?P<attr>[a-z][\w-]*(?:\s+[a-z][\w-]*)?)\s+(?P<verb>is|was)\s+"
            r"(?P<called>called|named|titled)?\s*(?P<v>.+)"
        ),
        _h_generic_poss,
    ),
    _Rule(
        "appos_job",
        _rx(r"(?P<name><NAME>),\s+(?:an?|the)\s+(?P<v>[^,]+),"),
        _h_appos_job,
    ),
    _Rule(
        "be_a",
        _rx(r"<SUBJ><ADV>\s+" + _BE + r"<ADV>\s+(?P<art>an?|the)\s+(?P<v>.+)"),
        _h_be_a,
    ),
]


def _poss_place(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], relation: str
) -> list[_Found]:
    owner = _possessor(m, ctx)
    value = _clean_value(m.group("v"), "place")
    if owner is None or not value or _void_start(value):
        return []
    return [_found(m, "v", _make_fact(owner, relation, value, ids))]


# --------------------------------------------------------------------------------------------
# Public extraction API
# --------------------------------------------------------------------------------------------


def extract_facts(
    user_text: str,
    exchange_ids: Sequence[int],
    context: ExtractionContext | None = None,
) -> list[Fact]:
    """Facts the user stated in ``user_text``, in the order they were said.

    Pass the same ``context`` for consecutive messages of one conversation so "he" in a later
    message can refer to a person named in an earlier one.
    """
    ctx = context if context is not None else ExtractionContext()
    ids = list(exchange_ids)
    facts: list[Fact] = []
    for sentence in split_sentences(normalise(user_text)):
        facts.extend(_extract_sentence(sentence, ids, ctx))
    merged = merge_facts(facts)
    log.debug("extracted %d fact(s) from %r", len(merged), user_text[:80])
    return merged


def extract_conversation(turns: Iterable[tuple[str, Sequence[int]]]) -> list[Fact]:
    """Facts from consecutive user messages, resolving pronouns across them."""
    ctx = ExtractionContext()
    facts: list[Fact] = []
    for text, ids in turns:
        facts.extend(extract_facts(text, ids, ctx))
    return merge_facts(facts)


def _extract_sentence(sentence: str, ids: list[int], ctx: ExtractionContext) -> list[Fact]:
    body = _strip_discourse(sentence)
    if not body or _is_question(body):
        return []
    candidates = []
    for priority, rule in enumerate(_RULES):
        for match in rule.regex.finditer(body):
            candidates.append((match.start(), priority, rule, match))
    candidates.sort(key=lambda item: (item[0], item[1]))
    used: list[tuple[int, int]] = []
    facts: list[Fact] = []
    for _, _, rule, match in candidates:
        if _HEDGE_RE.search(body[: match.start()]):
            continue  # "if I lived in Paris" states nothing
        for found in sorted(rule.handler(match, ctx, ids, body), key=lambda f: f.span):
            if any(found.span[0] < end and start < found.span[1] for start, end in used):
                continue
            used.append(found.span)
            facts.append(found.fact)
            log.debug("rule %s: %s", rule.name, found.fact.statement)
    return facts


def merge_facts(facts: Iterable[Fact]) -> list[Fact]:
    """Drops repeated facts (same subject, relation and value), merging their exchange ids."""
    merged: dict[tuple[str, str, str], Fact] = {}
    for fact in facts:
        key = (fact.subject.lower(), fact.relation, fact.value.lower())
        if key in merged:
            kept = merged[key]
            kept.source_exchange_ids = _union(kept.source_exchange_ids, fact.source_exchange_ids)
        else:
            merged[key] = Fact(
                fact.subject, fact.relation, fact.value, fact.statement,
                list(fact.source_exchange_ids), fact.origin,
            )
    return list(merged.values())


def _union(first: list[int], second: list[int]) -> list[int]:
    return first + [i for i in second if i not in first]


# --------------------------------------------------------------------------------------------
# Question templates. A plain string is answered with the fact's statement; ("...", "yes") and
# ("...", "no") prefix the statement with "Yes, " / "No, ". {s} is the person, {v} the value.
# --------------------------------------------------------------------------------------------

_Template = str | tuple[str, str]

_QUESTIONS: dict[str, tuple[list[_Template], list[_Template]]] = {
    "name": (
        ["What is my name?", "What am I called?", "Do you remember my name?",
         "What name do I go by?", "What should you call me?", "Who am I?"],
        ["What is {s}'s name?", "What is {s} called?"],
    ),
    "lives_in": (
        ["Where do I live?", "Which city do I live in?", "Where am I living these days?",
         "Where is my home now?", "Where am I based?", "What city do I call home?"],
        ["Where does {s} live?", "Which city does {s} live in?", "Where is {s} based?",
         "Where is {s} living these days?", "What city does {s} call home?",
         "Where is {s}'s home?"],
    ),
    "previous_city": (
        ["Where did I live before?", "Which city did I move from?", "Where did I use to live?",
         "Where was I living before I moved?", "What city did I leave when I moved?",
         "Where was my old home?"],
        ["Where did {s} live before?", "Which city did {s} move from?",
         "Where did {s} use to live?", "Where was {s} living before?",
         "What city did {s} leave?"],
    ),
    "hometown": (
        ["Where am I from?", "Where did I grow up?", "What is my hometown?",
         "Where am I from originally?", "Which town did I grow up in?", "Where was I raised?"],
        ["Where is {s} from?", "Where did {s} grow up?", "What is {s}'s hometown?",
         "Where is {s} from originally?", "Which town did {s} grow up in?",
         "Where was {s} raised?"],
    ),
    "birthplace": (
        ["Where was I born?", "What is my place of birth?", "In which city was I born?",
         "Where did I come into the world?"],
        ["Where was {s} born?", "What is {s}'s place of birth?", "In which city was {s} born?",
         "Where did {s} come into the world?"],
    ),
    "job": (
        ["What do I do for a living?", "What is my job?", "What is my profession?",
         "What do I work as?", "What kind of work do I do?", "What's my occupation?"],
        ["Who is {s}?", "What does {s} do for a living?", "What is {s}'s job?",
         "What is {s}'s profession?", "What does {s} do?", "What kind of work does {s} do?"],
    ),
    "previous_job": (
        ["What did I use to work as?", "What was my previous job?",
         "What job did I have before?", "What did I do for work before?"],
        ["What did {s} use to work as?", "What was {s}'s previous job?",
         "What job did {s} have before?", "What did {s} do for work before?"],
    ),
    "employer": (
        ["Where do I work?", "Which company do I work for?", "Who is my employer?",
         "Who do I work for?", "What is the name of my workplace?"],
        ["Where does {s} work?", "Which company does {s} work for?", "Who is {s}'s employer?",
         "Who does {s} work for?", "What is the name of {s}'s workplace?"],
    ),
    "field": (
        ["What field do I work in?", "What industry am I in?", "What area do I work in?",
         "What sector do I work in?"],
        ["What field does {s} work in?", "What industry is {s} in?",
         "What area does {s} work in?", "What sector does {s} work in?"],
    ),
    "studied": (
        ["What did I study?", "What subject do I study?", "What is my degree in?",
         "What was my major?", "What is my field of study?"],
        ["What did {s} study?", "What subject does {s} study?", "What is {s}'s degree in?",
         "What was {s}'s major?", "What is {s}'s field of study?"],
    ),
    "studied_at": (
        ["Where did I study?", "Which university did I go to?", "Which school did I attend?",
         "Where did I go to university?"],
        ["Where did {s} study?", "Which university did {s} go to?",
         "Which school did {s} attend?", "Where did {s} go to university?"],
    ),
    "teaches": (
        ["What do I teach?", "What subject do I teach?", "Which subject do I teach?",
         "What do I teach my students?"],
        ["What does {s} teach?", "What subject does {s} teach?", "Which subject does {s} teach?",
         "What does {s} teach their students?"],
    ),
    "likes": (
        ["What do I love?", "What is something I enjoy?", "What am I into?",
         "Name something I really like.", ("Do I like {v}?", "yes")],
        ["What does {s} love?", "What is something {s} enjoys?", "What is {s} into?",
         "Name something {s} really likes.", ("Does {s} like {v}?", "yes")],
    ),
    "dislikes": (
        ["What do I hate?", "What can't I stand?", "What do I dislike?",
         "Is there something I really don't like?", ("Do I like {v}?", "no")],
        ["What does {s} hate?", "What can't {s} stand?", "What does {s} dislike?",
         "Is there something {s} really doesn't like?", ("Does {s} like {v}?", "no")],
    ),
    "allergy": (
        ["What am I allergic to?", "Do I have any allergies?", "What allergy do I have?",
         "Is there anything I'm allergic to?", "What should I avoid because of my allergy?"],
        ["What is {s} allergic to?", "Does {s} have any allergies?",
         "What allergy does {s} have?", "Is there anything {s} is allergic to?"],
    ),
    "speaks": (
        ["What languages do I speak?", "Which language do I speak?",
         "What language can I speak?", "Which languages am I fluent in?"],
        ["What languages does {s} speak?", "Which language does {s} speak?",
         "What language can {s} speak?", "Which languages is {s} fluent in?"],
    ),
    "learning": (
        ["What am I learning?", "What am I learning at the moment?",
         "What new skill am I working on?", "What am I trying to learn?"],
        ["What is {s} learning?", "What is {s} learning at the moment?",
         "What new skill is {s} working on?", "What is {s} trying to learn?"],
    ),
    "instrument": (
        ["What instrument do I play?", "Which instrument do I play?",
         "Do I play an instrument?", "What musical instrument can I play?", "What do I play?"],
        ["What instrument does {s} play?", "Which instrument does {s} play?",
         "Does {s} play an instrument?", "What musical instrument can {s} play?",
         "What does {s} play?"],
    ),
    "plays": (
        ["What do I play?", "What sport or game do I play?", "What do I like to play?",
         "What do I play in my free time?"],
        ["What does {s} play?", "What sport or game does {s} play?",
         "What does {s} like to play?", "What does {s} play in their free time?"],
    ),
    "hobby": (
        ["What is my hobby?", "What do I do in my free time?", "What do I do for fun?",
         "How do I spend my free time?"],
        ["What is {s}'s hobby?", "What does {s} do in their free time?",
         "What does {s} do for fun?", "How does {s} spend their free time?"],
    ),
    "birth_year": (
        ["When was I born?", "What year was I born in?", "What is my birth year?",
         "In which year was I born?"],
        ["When was {s} born?", "What year was {s} born in?", "What is {s}'s birth year?",
         "In which year was {s} born?"],
    ),
    "birthday": (
        ["When is my birthday?", "What day is my birthday?", "When do I celebrate my birthday?",
         "What date was I born on?"],
        ["When is {s}'s birthday?", "What day is {s}'s birthday?",
         "When does {s} celebrate their birthday?", "What date was {s} born on?"],
    ),
    "age": (
        ["How old am I?", "What is my age?", "How many years old am I?", "What age am I?"],
        ["How old is {s}?", "What is {s}'s age?", "How many years old is {s}?",
         "What age is {s}?"],
    ),
    "nationality": (
        ["What is my nationality?", "What nationality am I?", "Which nationality do I have?"],
        ["What is {s}'s nationality?", "What nationality is {s}?",
         "Which nationality does {s} have?"],
    ),
    "diet": (
        ["What is my diet?", "What kind of diet do I follow?",
         "Do I have any dietary restrictions?", "How do I eat?"],
        ["What is {s}'s diet?", "What kind of diet does {s} follow?",
         "Does {s} have any dietary restrictions?", "How does {s} eat?"],
    ),
    "drives": (
        ["What car do I drive?", "What do I drive?", "What kind of car do I have?",
         "Which car is mine?"],
        ["What car does {s} drive?", "What does {s} drive?", "What kind of car does {s} have?",
         "Which car is {s}'s?"],
    ),
    "description": (
        ["What kind of person am I?", "What do you know about me?", "How would you describe me?",
         "Tell me something about myself."],
        ["Who is {s}?", "What do you know about {s}?", "Tell me about {s}.",
         "What can you tell me about {s}?", "How would you describe {s}?"],
    ),
}
_LANGUAGE_QUESTIONS = (
    ["Which language am I learning?", "What language am I studying?"],
    ["Which language is {s} learning?", "What language is {s} studying?"],
)


def _render(template: _Template, fact: Fact, statement: str) -> tuple[str, str]:
    question, mode = (template, "s") if isinstance(template, str) else template
    question = question.format(s=fact.subject, v=fact.value)
    if mode == "s":
        return question, statement
    prefix = "Yes" if mode == "yes" else "No"
    return question, f"{prefix}, {statement[:1].lower()}{statement[1:]}"


def _favourite_questions(fact: Fact) -> list[str]:
    fav, _, thing = fact.relation.partition(" ")
    if fact.subject == USER_SUBJECT:
        return [f"What is my {fav} {thing}?", f"Which {thing} do I like best?",
                f"What {thing} do I love the most?", f"Do you know my {fav} {thing}?",
                f"Tell me my {fav} {thing}."]
    s = fact.subject
    return [f"What is {s}'s {fav} {thing}?", f"Which {thing} does {s} like best?",
            f"What {thing} does {s} love the most?", f"Do you know {s}'s {fav} {thing}?",
            f"Tell me {s}'s {fav} {thing}."]


def _named_questions(fact: Fact) -> tuple[list[str], list[tuple[str, str]]]:
    """Forward questions and (question, answer) reversed ones for "<owner>'s <noun> is <X>"."""
    noun, value, user = fact.relation, fact.value, fact.subject == USER_SUBJECT
    owner = "my" if user else f"{fact.subject}'s"
    be = "was" if noun.split()[0] in _PAST_ADJ else "is"
    person = _is_person_or_pet(noun)
    forward = [
        f"What {be} {owner} {noun}'s name?" if person else f"What {be} {owner} {noun} called?",
        f"What {be} {owner} {noun} called?" if person
        else f"What {be} the name of {owner} {noun}?",
        f"What's the name of {owner} {noun}?",
        f"Who is {owner} {noun}?" if person
        else f"Do you remember what {owner} {noun} {be} called?",
        f"Tell me the name of {owner} {noun}.",
    ]
    reverse_answer = f"{value} {be} {'your' if user else owner} {noun}."
    who = "Who" if person else "What"
    reverse = [
        (f"{who} is {value}?", reverse_answer),
        (f"Whose {noun} {be} {value}?", reverse_answer),
    ]
    if user and noun in PERSON_RELATIONS:
        reverse += [(f"How do I know {value}?", reverse_answer),
                    (f"Who is {value} to me?", reverse_answer)]
    elif not user and noun in PERSON_RELATIONS:
        reverse.append((f"How is {value} related to {fact.subject}?", reverse_answer))
    if noun in _SPOUSES:
        married = "you" if user else fact.subject
        forward.append("Who am I married to?" if user else f"Who is {fact.subject} married to?")
        reverse.append((f"Who is {value} married to?", f"{value} is married to {married}."))
    return list(dict.fromkeys(forward)), reverse


def _templates(fact: Fact) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    statement = fact.statement
    if fact.relation.startswith("qa:"):
        return [(fact.relation[3:].strip(), statement)], []
    if fact.relation.startswith(("favourite ", "favorite ")):
        return [(q, statement) for q in _favourite_questions(fact)], []
    if fact.relation == "spouse" or fact.relation not in _QUESTIONS:
        forward, reverse = _named_questions(fact)
        return [(q, statement) for q in forward], reverse
    user_qs, third_qs = _QUESTIONS[fact.relation]
    templates = list(user_qs if fact.subject == USER_SUBJECT else third_qs)
    if fact.relation == "learning" and fact.value.lower() in _LANGUAGES:
        extra = _LANGUAGE_QUESTIONS[0 if fact.subject == USER_SUBJECT else 1]
        templates = [templates[0], *extra, *templates[1:]]
    return [_render(t, fact, statement) for t in templates], []


def _seed(fact: Fact) -> int:
    key = f"{fact.subject}|{fact.relation}|{fact.value}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def qa_pairs(fact: Fact, phrasings: int = 4) -> list[QAPair]:
    """Up to ``phrasings`` question phrasings of ``fact``, each answered by a full sentence.

    The first (canonical) question is always included and the rest are a seeded, hence
    repeatable, sample. Relation facts get at least one reversed question when ``phrasings``
    is 2 or more. Every answer contains ``fact.value`` verbatim.
    """
    if phrasings <= 0:
        return []
    forward, reverse = _templates(fact)
    rng = random.Random(_seed(fact))
    n_reverse = min(len(reverse), max(1, phrasings // 3)) if phrasings > 1 else 0
    n_forward = min(len(forward), phrasings - n_reverse)
    n_reverse = min(len(reverse), phrasings - n_forward)
    chosen = forward[:1] + rng.sample(forward[1:], max(n_forward - 1, 0)) if n_forward else []
    chosen += rng.sample(reverse, n_reverse)
    pairs = []
    for question, answer in chosen:
        if fact.value not in answer:
            log.warning("dropping %r: answer %r lacks value %r", question, answer, fact.value)
            continue
        pairs.append(QAPair(question, answer, list(fact.source_exchange_ids), "fact"))
    return pairs


def qa_for_facts(facts: Iterable[Fact], phrasings: int = 4) -> list[QAPair]:
    """``qa_pairs`` for every fact, deduplicated."""
    return dedupe_pairs([pair for fact in facts for pair in qa_pairs(fact, phrasings)])


# --------------------------------------------------------------------------------------------
# Grounding and deduplication
# --------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    """a an the of in on at to for from with and or is are was were be been being am i you he
    she it they we my your his her their our me him them this that these those as by its there
    here very really just also not no yes do does did has have had called named s t d ll re ve
    m user users""".split()
)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", _fold(text))


def _stem(token: str) -> str:
    plural = len(token) > 3 and token.endswith("s") and not token.endswith("ss")
    return token[:-1] if plural else token


def grounded(answer_value: str, user_texts: Iterable[str]) -> bool:
    """True when every content word of ``answer_value`` occurs in what the user wrote.

    Case, accents, punctuation, stopwords and a plural "s" are ignored; a value with no content
    words is never grounded.
    """
    words = [t for t in _tokens(answer_value) if t not in _STOPWORDS]
    if not words:
        return False
    available: set[str] = set()
    for text in user_texts:
        for token in _tokens(text):
            available.update((token, _stem(token)))
    return all(w in available or _stem(w) in available for w in words)


def _norm(text: str) -> str:
    return " ".join(_tokens(text))


def dedupe_pairs(pairs: Iterable[QAPair]) -> list[QAPair]:
    """Drops pairs whose normalised question and answer repeat, merging their exchange ids."""
    kept: dict[tuple[str, str], QAPair] = {}
    for pair in pairs:
        key = (_norm(pair.question), _norm(pair.answer))
        if key in kept:
            first = kept[key]
            first.source_exchange_ids = _union(first.source_exchange_ids, pair.source_exchange_ids)
        else:
            kept[key] = QAPair(pair.question, pair.answer, list(pair.source_exchange_ids),
                               pair.kind)
    return list(kept.values())


# --------------------------------------------------------------------------------------------
# Model-based extraction: prompt and tolerant parser
# --------------------------------------------------------------------------------------------

EXTRACTION_PROMPT = (
    "Read the message below and list every fact the user states about themselves or about "
    "people they mention.\n"
    "Write one fact per line, exactly like this:\n"
    "Q: <question about the fact> A: <short answer>\n"
    "Use only what the user wrote. If there are no facts, write NONE.\n\n"
    "Example message: I live in Oslo and my brother is called Finn.\n"
    "Q: Where does the user live? A: Oslo\n"
    "Q: What is the name of the user's brother? A: Finn\n\n"
    "Message: {text}\n"
)

_QA_LINE = re.compile(
    r"^Q(?:uestion)?\s*\d*\s*[:\-]\s*(?P<q>.+?)\s+A(?:nswer)?\s*\d*\s*[:\-]\s*(?P<a>.+)$",
    re.IGNORECASE,
)
_Q_ONLY = re.compile(r"^Q(?:uestion)?\s*\d*\s*[:\-]\s*(?P<q>.+)$", re.IGNORECASE)
_A_ONLY = re.compile(r"^A(?:nswer)?\s*\d*\s*[:\-]\s*(?P<a>.+)$", re.IGNORECASE)
_JUNK_ANSWER_RE = re.compile(
    r"^(?:unknown|none|n/?a|null|nothing|unclear|not (?:mentioned|stated|specified|given|"
    r"provided)|no (?:information|answer|facts?)|i don'?t know|-+|\?+|\.+)\.?$",
    re.IGNORECASE,
)
_CLASSIFIERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), r)
    for p, r in [
        (r"allerg", "allergy"),
        (
            r"\b(?:moved from|used to live|live[d]? before|previous (?:city|home)|old city)",
            "previous_city",
        ),
        (
            r"\b(?:grow up|grew up|hometown|originally from|where (?:is|are|am) .+ from)",
            "hometown",
        ),
        (r"\bbirthday\b", "birthday"),
        (r"\bwhere\b.*\bborn\b|\bplace of birth\b", "birthplace"),
        (r"\b(?:born|birth year|year of birth)\b", "birth_year"),
        (r"\b(?:how old|age)\b", "age"),
        (r"\b(?:live|lives|living|reside|based|city)\b", "lives_in"),
        (r"\b(?:job|profession|occupation|for a living|work as)\b", "job"),
        (
            r"\b(?:employer|company|work for|work at|works for|works at)\b|where do(?:es)? .+ work",
            "employer",
        ),
        (r"\blearn", "learning"),
        (r"\b(?:speak|language)", "speaks"),
        (r"\binstrument", "instrument"),
        (r"\bsport", "plays"),
        (r"\b(?:hobby|hobbies|free time|for fun|pastime)", "hobby"),
        (r"\b(?:study|studied|degree|major)\b", "studied"),
        (r"\b(?:hate|dislike|can't stand)", "dislikes"),
        (r"\b(?:like|love|enjoy)", "likes"),
    ]
]
_REL_WORD_RE = re.compile(r"\b(" + "|".join(re.escape(n) for n in _REL_NOUNS) + r")\b", re.I)
_FAV_RE = re.compile(r"\b(favou?rite)\s+([a-z]+(?:\s+[a-z]+)?)", re.IGNORECASE)
_FIRST_PERSON = [
    (r"\bthe user's\b|\buser's\b", "my"), (r"\bdoes the user\b", "do I"),
    (r"\bis the user\b", "am I"), (r"\bwas the user\b", "was I"), (r"\bhas the user\b", "have I"),
    (r"\bthe user is\b", "I am"), (r"\bthe user has\b", "I have"), (r"\b(?:the )?user\b", "I"),
    (r"\bdo you\b", "do I"), (r"\bare you\b", "am I"), (r"\bwere you\b", "was I"),
    (r"\bhave you\b", "have I"), (r"\byour\b", "my"), (r"\byou\b", "I"),
]


def _first_person(text: str) -> str:
    for pattern, repl in _FIRST_PERSON:
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    return text[:1].upper() + text[1:]


def _strip_markup(line: str) -> str:
    line = line.replace("**", "").replace("__", "").strip()
    return re.sub(r"^(?:[-*•>]+|\d+[.)])\s*", "", line).strip()


def _clean_answer(answer: str) -> str:
    answer = answer.strip().strip("\"'`").strip()
    return re.sub(r"[.!]+$", "", answer).strip()


def _is_junk(value: str) -> bool:
    return not value or bool(_JUNK_ANSWER_RE.match(value)) or len(value.split()) > 12 or (
        "<" in value or "{" in value
    )


def _model_subject(question: str) -> str:
    if re.search(r"\b(?:I|my|me|you|your|user|user's)\b", question, re.IGNORECASE):
        return USER_SUBJECT
    names = [_valid_name(n) for n in re.findall(_NAME, question[1:])]
    return next((n for n in names if n), USER_SUBJECT)


def _classify(text: str) -> str | None:
    fav = _FAV_RE.search(text)
    if fav:
        return f"{fav.group(1).lower()} {fav.group(2).lower()}"
    rel = _REL_WORD_RE.search(text)
    if rel and not re.search(r"\b(?:live|work|born|from)\b", text, re.IGNORECASE):
        return _relation_noun(rel.group(1))
    for regex, relation in _CLASSIFIERS:
        if regex.search(text):
            return relation
    return "name" if re.search(r"\bname\b|\bcalled\b", text, re.IGNORECASE) else None


def _strip_value(value: str, relation: str) -> str:
    value = re.sub(r"^(?:in|at|to|from|near|as)\s+", "", value, flags=re.IGNORECASE)
    if relation in ("job", "previous_job", "description", "drives"):
        value = re.sub(r"^(?:an?|the)\s+", "", value, flags=re.IGNORECASE)
    return value.strip()


def _model_fact(subject: str, relation: str | None, value: str, question: str,
                ids: list[int]) -> Fact | None:
    value = _clean_answer(value)
    if _is_junk(value):
        return None
    subj = _USER if subject == USER_SUBJECT else _Subject(subject, False)
    if relation:
        value = _strip_value(value, relation)
        if value:
            fact = _make_fact(subj, relation, value, ids)
            fact.origin = "model"
            return fact
    statement = _sentence(value)
    return Fact(subj.key, f"qa: {question}", value, statement, list(ids), "model")


def _facts_from_sentence(answer: str, ids: list[int]) -> list[Fact]:
    facts = extract_facts(_first_person(answer), ids)
    for fact in facts:
        fact.origin = "model"
    return facts


def _facts_from_qa(question: str, answer: str, ids: list[int]) -> list[Fact]:
    answer = _clean_answer(answer)
    if _is_junk(answer):
        return []
    question = _first_person(question.strip())
    if len(answer.split()) >= 4:
        facts = _facts_from_sentence(answer, ids)
        if facts:
            return facts
    fact = _model_fact(_model_subject(question), _classify(question), answer, question, ids)
    return [fact] if fact else []


def _facts_from_triple(line: str, ids: list[int]) -> list[Fact]:
    parts = [p.strip() for p in line.strip().strip("|").split("|")]
    if len(parts) != 3 or not all(parts) or set(parts[0].lower().split()) & {"subject"}:
        return []
    subject_raw, relation_raw, value = parts
    if subject_raw.lower() in ("user", "the user", "i", "me", "myself", "you"):
        subject = USER_SUBJECT
    else:
        subject = _valid_name(subject_raw) or ""
    if not subject:
        return []
    relation = _classify(relation_raw) or _relation_noun(relation_raw)
    fact = _model_fact(subject, relation, value, relation_raw, ids)
    return [fact] if fact else []


def parse_model_extraction(raw: str, exchange_ids: Sequence[int]) -> list[Fact]:
    """Facts from a model's answer to ``EXTRACTION_PROMPT``; lines it cannot parse are skipped.

    Understands "Q: ... A: ..." on one line or over two, and "- subject | relation | value";
    bullets, numbering and markdown bold are ignored. Returned facts have origin "model" and
    should still pass ``grounded`` against the user's text before training on them.
    """
    ids = list(exchange_ids)
    facts: list[Fact] = []
    pending: str | None = None
    for raw_line in raw.splitlines():
        line = _strip_markup(raw_line)
        if not line:
            continue
        if qa := _QA_LINE.match(line):
            facts.extend(_facts_from_qa(qa.group("q"), qa.group("a"), ids))
            pending = None
        elif q := _Q_ONLY.match(line):
            pending = q.group("q")
        elif (a := _A_ONLY.match(line)) and pending:
            facts.extend(_facts_from_qa(pending, a.group("a"), ids))
            pending = None
        elif "|" in line:
            facts.extend(_facts_from_triple(line, ids))
    log.debug("parsed %d fact(s) from model extraction output %r", len(facts), raw[:200])
    return merge_facts(facts)
