"""Word lists the extraction rules know: relations, jobs, instruments, languages, months."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

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
    # the rest of the family and household words people name someone by ("my grandson
    # Thaddeus"): a closed class, so it is listed whole rather than as sets needed it
    "grandson": "m", "granddaughter": "f", "grandchild": None, "grandkid": None,
    "grandad": "m", "granddad": "m", "nan": "f", "nana": "f", "auntie": "f",
    "godson": "m", "goddaughter": "f", "godmother": "f", "godfather": "m", "godchild": None,
    "mother-in-law": "f", "father-in-law": "m", "sister-in-law": "f", "brother-in-law": "m",
    "son-in-law": "m", "daughter-in-law": "f", "stepchild": None, "stepkid": None,
    "ex-wife": "f", "ex-husband": "m", "ex-boyfriend": "m", "ex-girlfriend": "f", "ex": None,
    "bestie": None, "classmate": None, "landlord": "m", "landlady": "f", "lodger": None,
    # what friends and parents are called in chat ("my best mate Lorcan", "my mama")
    "mate": None, "best mate": None, "buddy": None, "pal": None, "teammate": None,
    "mama": "f", "mommy": "f", "mam": "f", "papa": "m", "daddy": "m", "gran": "f",
    "aunty": "f",
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
