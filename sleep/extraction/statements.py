"""General statement extraction: any sentence in which the user discloses something becomes a fact.

This is the rule-free path from a user's chat messages to training pairs. It does not know any
relation in advance ("lives in", "sister is called"): it keeps every declarative sentence in
which the user tells something about themselves or their world, restates it in the second
person with absolute dates, and asks about it in many ways. The answer to every question is the
whole restated sentence, so the model learns the fact as a sentence and can be reached from any
of its parts.

Use::

    from sleep.extraction.statements import questions_for, statements_from_turns

    stmts = statements_from_turns([(text, [exchange_id], when), ...])
    for s in stmts:
        if s.superseded_by is None:
            pairs = questions_for(s, n=8, seed=cycle)      # [(question, answer), ...]

Stages (each a plain function, usable on its own):

* ``split_sentences``: chat text to sentences: punctuation, line breaks, emoji, "lol", and
  run-on messages ("i have a cat named mochi my sister has a dog") are split;
  ``message_sentences`` also restates ``label: value`` lines ("dog: Grub. mastiff." → "My dog
  is Grub, mastiff.").
* ``resolve_times`` also dates a weekday named alone ("on Tuesday", "by Friday"): the coming
  one, or the last one when the nearest verb is in the past ("I saw her on Monday").
* ``judge_disclosure`` / ``is_disclosure``: keeps first-person statements (self, family,
  friends, pets, things, plans, wishes, feelings, hobbies, events, numbers) and statements about
  people the user names; rejects small talk, questions, requests and pure reactions.
* ``resolve_times``: "yesterday", "last Friday", "in 3 weeks", "next summer" ... to absolute
  dates, given when the message was sent.
* ``to_second_person``: I/me/my/we/our → you/your (with am→are, was→were), the user's "you"
  (the bot) → I/me; everything else verbatim.
* ``statements_from_turns``: the whole path over a user's turns, with pronouns carried across
  sentences ("I have a dog." "His name is Rex." → "Your dog's name is Rex.") and corrections
  ("actually it's Tim", "I moved to Berlin" after "I live in Paris") marking the replaced
  statements (``supersede``).
* ``questions_for``: (question, answer) pairs: span questions built by a light clause analysis
  ("I live in Ghent" → "Where do I live?"), category questions from a small hypernym lexicon
  ("I'm a nurse" → "What is my job?"), "When ...?" for dated statements, and topic questions
  ("What do you know about my tortoise?"). Questions keep the statement's distinguishing
  context (whose job, which pet).

Word classes come from a compact closed-class vocabulary plus ``lemminflect``'s English lexicon
(lemmas and inflections, shipped inside the package, no download); there is no statistical
tagger, which keeps the module fast and tolerant of lowercase, unpunctuated chat.
"""

from __future__ import annotations

import calendar
import hashlib
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import lemminflect

from sleep.extraction.vocabulary import PERSON_RELATIONS, PET_RELATIONS

USER = "user"  # Statement.subject for statements about the person talking to the bot

# ============================================================================================
# Vocabulary
# ============================================================================================


def _words(s: str) -> frozenset[str]:
    return frozenset(s.split())


_FIRST_PERSON = _words("i me my mine myself we us our ours ourselves i'm im i've ive i'll i'd "
                       "we're we've we'll we'd")
_SUBJ_PRON = _words("i we you he she they it there one someone everyone everybody somebody "
                    "nobody noone")
_OBJ_PRON = _words("me us you him her them it myself yourself himself herself itself "
                   "ourselves themselves")
_POSS = _words("my our your his her its their")
_DET = _words("a an the this that these those some any no every each another all both several "
              "many few much either neither such")
_PREP = _words(
    "in on at to from with without for of about by near into onto over under after before since "
    "until till during through across around behind between among beside besides inside outside "
    "like unlike than via per towards toward against along past within upon beyond throughout "
    "except despite"
)
_CONJ = _words("and or but nor plus")
_SCONJ = _words("because cause cuz coz bc since when while whilst if although though unless "
                "whereas so that whether once as after before until till where")
_WH = _words("what who whom whose which where when why how")
_BE = {"am": "am", "is": "is", "are": "are", "was": "was", "were": "were", "be": "be",
       "been": "been", "being": "being", "'m": "am", "'re": "are"}
_HAVE = {"have": "have", "has": "has", "had": "had", "having": "having", "'ve": "have"}
_DO = {"do": "do", "does": "does", "did": "did"}
_MODAL = {"will": "will", "would": "would", "can": "can", "could": "could", "shall": "shall",
          "should": "should", "may": "may", "might": "might", "must": "must", "'ll": "will",
          "ought": "ought", "cannot": "cannot"}
# n't contractions: surface (apostrophe optional in chat) -> (lemma, is_modal)
_NEG_AUX = {
    "don't": "do", "doesn't": "do", "didn't": "do", "isn't": "be", "aren't": "be",
    "wasn't": "be", "weren't": "be", "haven't": "have", "hasn't": "have", "hadn't": "have",
    "won't": "will", "wouldn't": "would", "can't": "can", "couldn't": "could",
    "shouldn't": "should", "mustn't": "must", "ain't": "be", "mightn't": "might",
    "needn't": "need", "shan't": "shall",
}
_CHAT_FIX = {  # apostrophe-less chat spellings
    "im": "I'm", "ive": "I've", "dont": "don't", "doesnt": "doesn't", "didnt": "didn't",
    "isnt": "isn't", "arent": "aren't", "wasnt": "wasn't", "werent": "weren't",
    "havent": "haven't", "hasnt": "hasn't", "hadnt": "hadn't", "cant": "can't",
    "wouldnt": "wouldn't", "couldnt": "couldn't", "shouldnt": "shouldn't", "i": "I",
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "theyre": "they're",
    "youre": "you're", "thats": "that's", "whats": "what's", "hes": "he's", "shes": "she's",
    "ur": "your", "u": "you", "bc": "because", "cuz": "because", "coz": "because",
    "tho": "though", "thru": "through", "kinda": "kind of", "sorta": "sort of",
    "theyll": "they'll", "theyve": "they've", "theyd": "they'd", "youll": "you'll",
    "youve": "you've", "youd": "you'd", "itll": "it'll", "thatll": "that'll",
    "wont": "won't", "theres": "there's", "heres": "here's",
}
_ADV = _words(
    "really also just still always usually often sometimes never rarely seldom already even only "
    "actually basically literally honestly totally absolutely definitely probably maybe perhaps "
    "very so too quite super mostly mainly currently now then recently finally soon again ever "
    "almost nearly here together alone yet lately nowadays anymore generally normally "
    "typically occasionally constantly barely hardly luckily sadly unfortunately fortunately "
    "obviously apparently originally initially eventually daily weekly monthly yearly nightly "
    "tomorrow today tonight yesterday abroad home overseas somewhat pretty kind sort lowkey "
    "highly especially seriously truly certainly secretly officially finally slowly"
)
_FREQ_ADV = _words("always usually often sometimes never rarely seldom daily weekly monthly "
                   "yearly nightly occasionally constantly regularly")
_PARTICLES = _words("up out off down back away over around")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1000000, "dozen": 12, "half": 0,
}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_LOW = {m.lower(): i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_LOW.update({"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8,
                   "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12})
_WEEKDAY_LOW = {d.lower(): i for i, d in enumerate(_WEEKDAYS)}
_SEASONS = _words("spring summer autumn fall winter")
_TIME_NOUNS = _words(
    "morning mornings afternoon afternoons evening evenings night nights weekend weekends week "
    "weeks month months year years day days decade decades hour hours minute minutes noon "
    "midnight dawn sunrise sunset weekday weekdays lunchtime bedtime childhood holidays holiday "
    "christmas easter birthday"
) | _SEASONS | frozenset(_WEEKDAY_LOW) | frozenset(d + "s" for d in _WEEKDAY_LOW) | frozenset(
    m.lower() for m in _MONTHS)
_DURATION_UNITS = _words("second seconds minute minutes hour hours day days week weeks month "
                         "months year years decade decades")
_MONEY = _words("euro euros dollar dollars pound pounds quid bucks cents yen francs kronor "
                "crowns rupees pesos")
_DISTANCE = _words("km kilometers kilometres mile miles meters metres m k")
# Words that carry no fact on their own: a sentence whose only content words are these is
# small talk or talk about the conversation ("I have a question", "I'm fine", "I see").
_META = _words(
    "thing things stuff something anything everything nothing question questions point lot bit "
    "way sure fine good ok okay alright great well right wrong back here ready done sorry glad "
    "curious wondering wonder think thought guess know knew mean meant see saw agree understand "
    "say said tell told ask asked talk talking chat chatting listening listen kidding joking "
    "bye night morning hello hi hey thanks thank welcome same too yes yeah yep no nope nah lol "
    "haha cool nice awesome interesting funny true exactly course anyway anyways kind sort "
    "help idea answer reply response message go going get got let's let check try bot ai "
    "assistant chatbot much many more most little please problem worries totally definitely "
    "fair enough wow omg oh ah hmm um uh yup sounds sound seems seem looks look bad hear name"
)
# Verbs of liking: a sentence whose only content is one of these plus "it/that" is a reaction.
_REACTION_VERBS = _words("love like hate enjoy appreciate prefer adore dig miss want need feel")
# every word that names someone by their place in the user's life, and the general ones
_PERSON_NOUNS = frozenset(k for k in PERSON_RELATIONS if " " not in k) | _words(
    "parent parents grandparents grandkids grandchildren in-laws family people guy girl man woman "
    "person bf gf hubby sis bro students student boys girls sons daughters sisters brothers "
    "friends cousins nieces nephews aunts uncles kids children siblings co-worker fiancé "
    "fiancée"
)
_PLACE_NOUNS = _words(
    "city town village country house home apartment flat school office garden park beach gym "
    "hospital library church studio bakery restaurant cafe café shop store farm island "
    "mountains mountain coast countryside suburbs suburb area neighbourhood neighborhood "
    "street road university college uni campus lab clinic factory warehouse hotel bar pub "
    "kitchen basement attic garage balcony backyard yard cabin cottage lake river sea "
    "forest woods north south east west downtown centre center abroad capital region state "
    "province county airport station harbour harbor port market museum theatre theater "
    "stadium pool zoo"
)
# Verbs/adjectives whose "in/at/from/to" object is a place.
_PLACE_FRAMES = _words(
    "live lives lived living reside based born raised grow grew grown moved move moving "
    "relocate relocated stay stayed staying settled located situated study studied studying "
    "work works worked working travel traveled travelled going go went visit visited visiting "
    "come came from drive drove fly flew flying trip holiday vacation been gone traveled "
    "travelling traveling travelled back"
)

# Hypernyms: word -> categories, most specific first. A category in _KIND_OF is asked as
# "What kind of dog ..." (the word is a kind of it), the others as "What instrument ...".
_CATEGORY_WORDS: dict[str, str] = {
    "job": """nurse doctor teacher chef cook lawyer attorney engineer developer programmer
        designer architect pilot student librarian dentist vet veterinarian farmer baker
        carpenter plumber electrician mechanic accountant consultant manager analyst scientist
        researcher professor lecturer journalist writer author editor photographer producer
        musician artist actor actress painter firefighter paramedic pharmacist therapist
        surgeon midwife translator interpreter tutor coach barista waiter waitress bartender
        cashier clerk secretary receptionist driver salesperson entrepreneur founder intern
        freelancer composer dj sculptor illustrator animator economist physicist chemist
        biologist geologist historian psychologist psychiatrist nutritionist optician
        physiotherapist radiologist surveyor banker broker trader cleaner gardener landscaper
        butcher tailor jeweller jeweler potter welder roofer bricklayer machinist technician
        administrator director ceo cto cfo owner pastor priest rabbi imam monk nun soldier
        sailor officer policeman policewoman detective judge diplomat politician mayor
        florist hairdresser barber stylist beautician model dancer singer rapper comedian
        magician athlete footballer cyclist swimmer miner fisherman logger courier postman
        mailman janitor caretaker nanny babysitter housekeeper paralegal auditor actuary
        statistician mathematician astronomer zoologist ecologist botanist archaeologist
        curator archivist professor teller underwriter recruiter marketer copywriter blogger
        youtuber streamer influencer podcaster tattooist mason glazier upholsterer
        locksmith plasterer decorator conductor violinist pianist guitarist drummer cellist
        carer caregiver cook sommelier brewer winemaker vintner beekeeper shepherd rancher
        ranger forester lifeguard instructor trainer referee umpire scout chaplain
        missionary dietitian dietician hygienist orthodontist optometrist podiatrist
        chiropractor osteopath anesthesiologist anaesthetist neurologist oncologist
        pathologist pediatrician paediatrician surgeon psychotherapist counselor counsellor
        sociologist anthropologist linguist philosopher theologian economist geographer""",
    "pet": """dog cat puppy kitten hamster rabbit bunny parrot horse pony goldfish fish budgie
        turtle tortoise snake lizard ferret gecko guinea-pig chinchilla hedgehog rat mouse
        canary cockatiel iguana chicken chickens goat axolotl tarantula gerbil pig parakeet
        dogs cats puppies kittens rabbits horses hamsters chickens goats""",
    "dog": """beagle labrador lab poodle terrier retriever husky corgi dachshund pug chihuahua
        collie spaniel bulldog greyhound whippet shepherd rottweiler doberman dalmatian mastiff
        schnauzer shih-tzu pomeranian samoyed akita malamute boxer weimaraner pointer setter
        sheepdog labradoodle cockapoo goldendoodle maltese yorkie havanese papillon basenji
        vizsla newfoundland bernese""",
    "cat": """siamese ragdoll sphynx maine-coon tabby bengal burmese abyssinian""",
    "instrument": """cello piano guitar violin drums drum bass flute saxophone sax trumpet
        ukulele harp clarinet banjo accordion oboe trombone viola harmonica synth synthesizer
        keyboard vibraphone xylophone marimba mandolin bagpipes tuba bassoon horn organ
        recorder sitar didgeridoo cajon""",
    "sport": """football soccer tennis basketball running climbing bouldering swimming cycling
        golf rugby surfing skiing snowboarding skating skateboarding boxing volleyball
        badminton baseball cricket hockey karate judo taekwondo fencing rowing sailing
        kayaking canoeing triathlon marathon marathons jogging athletics gymnastics wrestling
        squash handball lacrosse polo archery diving snorkeling snorkelling mountaineering
        kitesurfing windsurfing crossfit pilates yoga running padel pickleball netball
        softball parkour""",
    "hobby": """knitting painting baking gardening photography reading fishing pottery
        woodworking crocheting sewing birdwatching gaming drawing writing dancing singing
        cooking camping hiking chess origami calligraphy embroidery quilting journaling
        scrapbooking meditation puzzles crosswords sudoku collecting stamps coins vinyl
        records lego cosplay karaoke podcasts blogging vlogging gardening foraging
        stargazing astronomy genealogy beekeeping brewing homebrewing carving sketching
        climbing bouldering running swimming cycling surfing skiing yoga""",
    "game": """chess poker bridge scrabble monopoly sudoku crosswords backgammon checkers
        minecraft fortnite tetris zelda""",
    "food": """pizza sushi pasta ramen tacos taco curry burger burgers chocolate cheese
        sardines salmon tuna steak chicken rice noodles dumplings lasagna lasagne paella risotto
        soup salad sandwich sandwiches pancakes waffles bread croissants croissant cake cookies
        pie ice-cream icecream fries chips kebab falafel hummus pho tofu bacon eggs peanuts
        hazelnuts walnuts almonds nuts peanut shellfish shrimp prawns lobster crab mussels
        oysters gluten dairy lactose wheat soy sesame mushrooms olives avocado avocados
        strawberries strawberry bananas banana apples apple mango mangoes oranges cherries
        pineapple grapes peaches blueberries lemons garlic onions tomatoes potatoes carrots
        spinach broccoli kale beans lentils chickpeas quinoa oatmeal porridge yogurt honey
        cereal bagels donuts doughnuts muffins brownies cupcakes cheesecake tiramisu gelato
        burritos nachos enchiladas quesadillas samosas biryani dal dhal naan kimchi bibimbap
        bulgogi tempura udon gyoza dim-sum goulash pierogi borscht schnitzel bratwurst
        couscous tagine shakshuka baklava moussaka souvlaki gyros spaghetti carbonara
        pesto gnocchi ravioli tortellini""",
    "drink": """coffee tea wine beer whisky whiskey vodka gin rum tequila juice lemonade cola
        soda milk espresso latte cappuccino matcha kombucha cider sake smoothies smoothie
        cocktails""",
    "language": """english french spanish german portuguese japanese mandarin chinese italian
        dutch russian arabic hindi korean polish swedish turkish greek hebrew latin norwegian
        danish finnish czech hungarian romanian ukrainian vietnamese thai indonesian swahili
        urdu bengali punjabi tamil persian farsi catalan basque welsh irish icelandic
        cantonese tagalog esperanto sign-language asl bsl""",
    "programming language": """python javascript typescript java rust golang kotlin swift
        ruby php haskell scala elixir erlang clojure c++ c# fortran cobol perl lua julia
        matlab sql""",
    "country": """france spain germany portugal japan china italy netherlands holland russia
        india korea poland sweden turkey greece israel norway denmark finland ireland iceland
        scotland wales england britain uk usa america canada mexico brazil argentina chile
        peru colombia australia zealand egypt morocco kenya nigeria ghana ethiopia
        switzerland austria belgium czechia hungary romania ukraine vietnam thailand
        indonesia philippines malaysia singapore iran iraq pakistan bangladesh nepal
        croatia serbia slovenia slovakia bulgaria estonia latvia lithuania luxembourg
        cuba jamaica tunisia algeria senegal tanzania uganda zimbabwe""",
    "city": """london paris berlin madrid rome lisbon amsterdam brussels vienna prague
        budapest warsaw dublin edinburgh glasgow manchester liverpool leeds bristol oxford
        cambridge tokyo kyoto osaka seoul beijing shanghai bangkok singapore sydney
        melbourne auckland toronto vancouver montreal chicago boston seattle denver austin
        miami atlanta houston dallas philadelphia nyc york angeles francisco barcelona
        valencia seville porto milan naples florence venice munich hamburg cologne frankfurt
        zurich geneva copenhagen stockholm oslo helsinki reykjavik athens istanbul cairo
        dubai mumbai delhi bangalore nairobi lagos johannesburg rio lima bogota santiago
        rotterdam utrecht antwerp ghent lyon marseille nice bordeaux krakow gdansk""",
    "car": """toyota honda ford tesla bmw volkswagen vw volvo subaru audi mercedes nissan mazda
        kia hyundai fiat peugeot renault skoda porsche jeep chevrolet chevy dodge lexus mini
        jaguar citroen seat opel suzuki mitsubishi prius corolla civic""",
    "vehicle": """car bike bicycle motorcycle motorbike scooter van truck boat sailboat
        campervan caravan rv jeep moped""",
    "subject": """law medicine physics biology chemistry mathematics maths math history
        philosophy economics psychology sociology linguistics literature architecture
        engineering nursing computer-science astronomy geology geography anthropology
        politics art design music theology accounting finance marketing""",
    "color": """red blue green yellow orange purple pink black white grey gray brown beige
        turquoise teal navy maroon violet silver gold golden cream""",
    "music": """jazz rock pop metal punk blues classical techno house hip-hop rap reggae folk
        country funk soul disco indie opera salsa k-pop trance dubstep""",
    "sibling": "sister brother sisters brothers twin twins sibling siblings stepbrother stepsister",
    "parent": "mother mom mum father dad parents stepmother stepfather",
    "child": "son daughter sons daughters kid kids child children baby stepson stepdaughter",
    "grandparent": "grandmother grandfather grandma grandpa granny grandparents nan nana",
    "partner": "wife husband partner boyfriend girlfriend fiance fiancee spouse",
    "condition": """asthma diabetes migraines migraine epilepsy adhd autism dyslexia anxiety
        depression insomnia arthritis celiac coeliac allergies eczema""",
    "continent": "asia europe africa antarctica oceania",
    "plant": """roses tulips orchids sunflowers lilies daisies cactus cacti succulents ferns
        bonsai basil tomatoes herbs""",
}
_KIND_OF = frozenset({"dog", "cat", "car", "music"})
_CATEGORY: dict[str, list[str]] = {}
for _cat, _ws in _CATEGORY_WORDS.items():
    for _w in _ws.split():
        _CATEGORY.setdefault(_w.replace("-", " "), []).append(_cat)
for _w in ("dog", "cat", "car"):  # a breed is also a pet / a brand a vehicle
    for _x in _CATEGORY_WORDS[_w].split():
        _CATEGORY[_x.replace("-", " ")].append("pet" if _w != "car" else "vehicle")
_JOB_WORDS = frozenset(w for w, c in _CATEGORY.items() if "job" in c)
_JOB_SUFFIXES = ("ologist", "ician", "grapher", "ographer", "iatrist", "ist", "eer", "smith")
_NOT_JOBS = _words("list wrist twist mist fist gist exist assist resist insist persist christ "
                   "beer deer peer steer cheer sheer career pioneer volunteer tourist")
_EMOTIONS = _words(
    "happy sad excited nervous anxious worried scared afraid terrified stressed tired exhausted "
    "bored lonely angry upset proud grateful thankful jealous curious hopeful confident "
    "overwhelmed frustrated annoyed relieved homesick sick ill depressed content calm "
    "thrilled ecstatic miserable heartbroken embarrassed ashamed guilty hungry sleepy"
)
_FEAR_WORDS = _words("afraid scared terrified frightened fear fears phobia petrified")

# Small talk and conversation management; a sentence made only of these phrases is rejected.
_SMALLTALK = re.compile(
    r"^(?:(?:hi|hey|hello|heya|hiya|yo|sup|howdy|greetings|good (?:morning|afternoon|evening|"
    r"night|day)|gm|gn|night|nite|bye|goodbye|bye bye|see (?:you|ya|u)(?: later| soon| tomorrow)?|"
    r"later|cya|ttyl|brb|gtg|g2g|thanks?(?: (?:a lot|so much|again|man|mate|buddy))?|"
    r"thank (?:you|u)(?: (?:so|very) much| again)?|thx|ty|tysm|np|no problem|no worries|"
    r"you'?re welcome|ok(?:ay)?|k|kk|sure|cool|nice|great|awesome|perfect|alright|right|"
    r"fine|good|yes|yeah|yep|yup|ya|no|nope|nah|maybe|lol|lmao|haha\w*|hehe\w*|omg|wow|oh|"
    r"ah|hmm+|um+|uh+|same|same here|me too|you too|of course|exactly|true|indeed|"
    r"i see|i know|i agree|i guess|i think so|i don'?t think so|i don'?t know|idk|dunno|"
    r"not sure|i'?m not sure|i'?m (?:fine|good|ok(?:ay)?|great|alright|well|doing (?:well|"
    r"good|great|fine|ok(?:ay)?)|back|here)(?: thanks?| thank you)?|(?:i'?m )?just kidding|jk|"
    r"nice to meet you|nice meeting you|pleased to meet you|how are you(?: doing)?|"
    r"what'?s up|wassup|how'?s it going|have a (?:good|nice|great) (?:one|day|night|evening|"
    r"weekend)|sleep well|sweet dreams|take care|never ?mind|nvm|got it|makes sense|"
    r"fair enough|sounds (?:good|great|nice|fun|cool|awesome|interesting)|"
    r"(?:that|this|it)(?:'s| is| was| sounds| seems| looks)(?: (?:so|really|very|pretty|"
    r"super|quite|kind of|kinda))* \w+|so \w+|very \w+|really\??|"
    r"i (?:have to|gotta|got to|need to|must) go(?: now)?|i'?m (?:going|off) to (?:bed|sleep)|"
    r"talk (?:to you )?(?:later|soon|tomorrow)|love (?:it|that|this)|i love (?:it|that|this)|"
    r"tell me more|go on|continue|please|pls|plz|whatever|anyway|anyways|hm|ha|hah|xd)"
    r"[\s,.!?~-]*)+$",
    re.I,
)
_REQUEST = re.compile(
    r"^(?:please\b|pls\b|plz\b|(?:can|could|would|will) (?:you|u)\b|tell me\b|help me\b|"
    r"give me\b|show me\b|let'?s\b|let me know\b|remind me\b|write\b|explain\b|recommend\b|"
    r"suggest\b|describe\b|translate\b|summari[sz]e\b|list\b|make me\b|find me\b|send\b|"
    r"imagine\b|pretend\b|say\b|repeat\b|answer\b|ask me\b|calculate\b|compute\b|define\b|"
    r"what if\b|i (?:want|need|would like|'d like) you to\b|i'?d like to (?:ask|know)\b|"
    r"i (?:have|got) a question\b|i (?:want|wanted) to ask\b|i was wondering\b|i wonder\b|"
    r"do me a favou?r\b)",
    re.I,
)
_QUESTION_START = re.compile(
    r"^(?:(?:what|who|whom|whose|which|where|why|how)(?:'s|'re|'d)?\b(?!\s+(?:i|we|my|our)\b\s+"
    r"(?!do\b|did\b|should\b|can\b|could\b|would\b))|"
    r"(?:do|does|did|are|is|was|were|have|has|had|can|could|would|will|should|shall|may|might|"
    r"am|isn't|aren't|don't|doesn't|didn't|won't|wouldn't|can't|couldn't)\s+"
    r"(?:you|u|i|we|it|they|he|she|there|this|that|your|my|anyone|someone|y'all)\b)",
    re.I,
)
# Leading words that carry no content ("so", "btw", "fun fact:", "guess what,") and are dropped.
_DISCOURSE = re.compile(
    r"^(?:(?:so|well|oh|ah|um+|uh+|hmm+|ok(?:ay)?|yeah|yea|yeh|yah|ya|yes|yep|yup|no|nope|nah|"
    r"also|and|but|btw|by the way|anyway|anyways|honestly|tbh|to be honest|fun fact|fyi|guess what|"
    r"plus|lol|lmao|haha\w*|hehe\w*|omg|wow|hey|hi|hello|heya|thanks|thank you|ty|cool|nice|"
    r"great|sure|right|ngl|idk|you know|i mean|oh yeah|speaking of which|as i said|"
    r"as i mentioned|like i said|in fact|basically|apparently|alright|true|funny enough|"
    r"interestingly|oh and|and also|but also|random but|random fact|quick update|update|"
    r"good news|bad news|news|oh wait|wait|ps|p\.s\.)(?:\s*[,:;!.\-–—]+\s*|\s+))+",
    re.I,
)
_TRAILING = re.compile(
    r"(?:[\s,]+(?:lol|lmao|haha\w*|hehe\w*|tbh|ngl|btw|honestly|xd|:\)|:d|:p|;\)|<3|!+|"
    r"no joke|for real|fr|jk|lmfao|rofl|x+|tho|though lol|so|but|and|or))+\s*$",
    re.I,
)
_CORRECTION = re.compile(
    r"^(?:(?:no|nope|oops|sorry|wait|hold on|my bad|err?|um+|uh+|hm+)\b[\s,.!:;\-–—]*)*"
    r"(?:actually|i meant|i mean|correction|scratch that|let me correct (?:that|myself)|"
    r"not\s+\w+\s*,)\b[\s,.!:;\-–—]*",
    re.I,
)
_INTERJECTION_ONLY = re.compile(
    r"^(?:(?:no|nope|oops|sorry|wait|hold on|my bad|err?|um+|uh+|actually|correction)"
    r"[\s,.!:;\-–—]*)+$", re.I)
# "sorry, Tuesday" corrects; "sorry for the spam" apologises: after oops / sorry / wait /
# my bad, a correction comes after a punctuation mark
_CORRECTION_SHORT = re.compile(
    r"^(?:(?:ugh+|argh+|hmm+|er+|um+|uh+)\s*[,.!:;\-–—][\s,.!:;\-–—]*"
    r"(?:no|nope)\s*[,.!:;\-–—][\s,.!:;\-–—]*|"  # "ugh, no, Joost is my brother"
    r"(?:no|nope|no wait)\b[\s,.!:;\-–—]+|"
    r"(?:oops|whoops|sorry|wait|my bad)\b\s*[,.!:;\-–—][\s,.!:;\-–—]*)"
    r"(?:(?:no|nope|oops|whoops|sorry|wait|my bad|ugh+)\b\s*[,.!:;\-–—][\s,.!:;\-–—]*)*"
    r"(?=\S)", re.I)
# "Three, actually, I always forget Roos": a bare value corrected, then a sentence of its own
_APOLOGY_ONLY = re.compile(r"^\W*(?:(?:oops|whoops|sorry|my bad)\b[\s,.!:;\-–—]*)+$", re.I)
_VALUE_ACTUALLY = re.compile(
    r"^(?P<value>[^\W_][\w'&.-]*(?:\s+[\w'&.-]+)?)\s*[,;:\-–—]\s*actually\b[\s,.!:;\-–—]*"
    r"(?P<rest>.*)$", re.I)
_CORRECTION_VALUE = re.compile(
    r"^(?:(?:it|that|she|he|they)(?:'s| is| was|'re| are| were)|its|it's called|"
    r"(?:the )?(?:name|answer) is)\s+", re.I)

# ============================================================================================
# Text clean-up and sentence splitting
# ============================================================================================

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'",
                              "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": " - ",
                              "\u00a0": " ", "\u2026": "..."})
_EMOTICON = re.compile(
    r"(?:(?<=\s)|^)(?:[:;=8][-'^o]?[)(\]\[dDpP/\\|oO*3]+|<3+|\^_*\^|[oO]_[oO]|:'\(|"
    r"[xX][dD]+|T_T|-_-)(?=\s|$|[.,!?])"
)
_LAUGH = re.compile(r"\b(?:lol+|lmf?ao+|rofl|ha(?:ha)+h?|he(?:he)+|ahah\w*|jaja\w*)\b", re.I)
_CHAT_ABBREV = {"w": "with", "w/": "with", "r": "are", "b4": "before", "rn": "right now",
                "bc": "because", "cuz": "because", "coz": "because", "ppl": "people",
                "bday": "birthday", "gf": "girlfriend", "bf": "boyfriend", "bro": "brother",
                "sis": "sister", "uni": "university", "yrs": "years", "yo": "years old",
                "y/o": "years old", "hubby": "husband", "mom's": "mom's", "fav": "favourite",
                "fave": "favourite", "abt": "about", "bout": "about", "thru": "through",
                "tho": "though", "esp": "especially", "prob": "probably", "w/o": "without"}
_ABBREV_RE = re.compile(
    r"(?<![\w'/])(?:w/o|w/|y/o|w|r|b4|rn|bc|cuz|coz|ppl|bday|gf|bf|bro|sis|uni|yrs|yo|hubby|fav|"
    r"fave|abt|bout|thru|tho|esp|prob)(?![\w'/])(?=\s+\S)", re.I)
# "yr" is "year" after a count or last/this/next ("last yr", "2nd yr"); else often "your"
_YEAR_ABBREV = re.compile(r"\b(last|this|next|a|per|every|\d+(?:st|nd|rd|th)?)\s+yrs?\b", re.I)
_DISCOURSE_WORDS = _words("so hey hi yes no oh ah um uh hmm omg wow lol ok yeah nice cool "
                          "please")
_ABBREV = _words("dr mr mrs ms st jr sr prof mt vs etc e.g i.e approx no dept inc ltd co ave "
                 "apt fig jan feb mar apr jun jul aug sep sept oct nov dec a.m p.m u.s u.k")


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat in ("So", "Cs", "Co", "Sk") or 0xFE00 <= ord(ch) <= 0xFE0F or ord(ch) == 0x200D


def _unelongate(m: re.Match) -> str:
    w = m.group()
    two = re.sub(r"([^\W\d_])\1{2,}", r"\1\1", w)
    one = re.sub(r"([^\W\d_])\1{2,}", r"\1", w)
    if _lemmas(one.lower()) or one.lower() in _DISCOURSE_WORDS:
        return one
    return two


def clean_text(text: str) -> str:
    """Normalise quotes/apostrophes, elongated words ("sooo"), chat abbreviations ("w/",
    "r", "b4"); drop emoji and emoticons (they become sentence breaks)."""
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    text = "".join("\n" if _is_emoji(ch) else ch for ch in text)
    text = _EMOTICON.sub("\n", text)
    text = re.sub(r"\b[^\W\d_]*([^\W\d_])\1{2,}[^\W\d_]*\b", _unelongate, text)
    text = _ABBREV_RE.sub(lambda m: _CHAT_ABBREV[m.group().lower().rstrip("/")] if m.group()[
        0].islower() or m.group().lower() != m.group() else m.group(), text)
    text = re.sub(r"\blil(?=\s+[a-z])", "little", text)  # not "lil Wayne"
    return _YEAR_ABBREV.sub(lambda m: f"{m.group(1)} year" + (
        "s" if m.group().lower().endswith("s") else ""), text)


def _split_punct(text: str) -> list[str]:
    """Split on . ! ? ; and dashes, protecting abbreviations, initials and decimals."""
    out, start = [], 0
    for m in re.finditer(r"[.!?]+|;|\s-+\s|\s*\.\.\.+\s*", text):
        end = m.end()
        piece = m.group()
        if piece.startswith("."):
            before = re.search(r"(\S+)$", text[start:m.start()])
            word = before.group(1).lower() if before else ""
            nxt = text[end:end + 1]
            if word in _ABBREV or re.fullmatch(r"[a-z]", word) and word != "i":
                continue  # "Dr. Smith", "J. K. Rowling"
            if nxt.isdigit() and word[-1:].isdigit():
                continue  # 3.5
            if nxt and not nxt.isspace() and nxt not in "\"')":
                continue  # e.g. "example.com"
        out.append(text[start:end])
        start = end
    out.append(text[start:])
    return out


def _strip_piece(s: str) -> str:
    s = s.strip(" \t\"'-–—,:*_~[]")
    while s.endswith(")") and s.count("(") < s.count(")") or s.startswith("(") and (
            s.count("(") > s.count(")")):
        s = s[:-1] if s.endswith(")") else s[1:]
    return re.sub(r"\s+", " ", s).strip()


def _word_can_be_verb(low: str) -> bool:
    return "VERB" in _lemmas(low) or "AUX" in _lemmas(low) or low in _BE or low in _HAVE \
        or low in _DO or low in _MODAL or low in _NEG_AUX


def _clause_after(toks: list[Tok], k: int) -> bool:
    """Do the raw words from ``k`` on form a subject + verb clause? (tags there are unset)"""
    if k >= len(toks):
        return False
    again = _tokenize(" ".join(t.text for t in toks[k:]))
    return _subject(again, 0) is not None and _clause_at(again, 0)


def _starts_clause(words: list[str]) -> bool:
    """Whether ``words`` (raw, lowercase) begin a subject + verb clause."""
    if not words:
        return False
    w = [x.strip(",.!?;:").lower() for x in words]
    w = [_CHAT_FIX.get(x, x).lower() for x in w]
    if w[0] in ("i'm", "i've", "i'll", "i'd", "we're", "we've", "we'll", "we'd", "he's",
                "she's", "hes", "shes", "they're", "theyre"):
        return len(w) > 1
    if w[0] in ("i", "we", "he", "she", "they"):
        k = 1
        while k < len(w) and w[k] in _ADV:
            k += 1
        return k < len(w) and _word_can_be_verb(w[k])
    if w[0] in ("my", "our", "his", "her", "their"):
        toks = _tokenize(" ".join(words))
        parse = _parse_clause(toks)
        return parse is not None and bool(parse.subj)
    return False


_RUNON_BLOCK = _words(
    "and or but so because cause cuz that when if where what how why who which than as like "
    "with to for of in on at from by about think know guess believe hope wish said say says "
    "mean meant feel felt while since until after before whether though although unless "
    "tell told is are was were am be been the a an very really also just still"
)
_QUESTION_TAIL = re.compile(
    r"^(?:do|did|are|have|can|could|would|will)\s+(?:you|u)\b|^(?:what|how) about (?:you|u)\b|"
    r"^what(?:'s| is| do| did| are) (?:you|u|your)\b|^how (?:are|do|did|was|is) (?:you|u|your)\b|"
    r"^(?:and )?you\?",
    re.I,
)


def _fronted_adverbial(cl: Clause) -> bool:
    """A subjectless "clause" that is a fronted adverbial, not a dropped-subject statement:
    "Back in March" or "Last summer" before "I ran ..." ("Went home early" is a statement)."""
    if cl.subj or cl.aux or cl.verb is None:
        return False
    tags = _lemmas(cl.verb.low)
    return "ADV" in tags or "ADJ" in tags and not cl.verb.low.endswith("ed")


def _split_runon(piece: str) -> list[str]:
    """Split a sentence that runs several statements together without punctuation."""
    words = piece.split()
    if len(words) < 5:
        return [piece]
    cuts: list[tuple[int, int]] = []  # (index of first word of the new part, words dropped)
    for j in range(2, len(words) - 1):
        prev_raw = words[j - 1]
        prev = prev_raw.strip(",.!?;:").lower()
        cur = words[j].strip(",").lower()
        last_cut = cuts[-1][0] + cuts[-1][1] if cuts else 0
        if j - last_cut < 2:
            continue
        rest = words[j:]
        if _QUESTION_TAIL.match(" ".join(rest)):
            cuts.append((j, 0))
            continue
        drop = 0
        if cur in ("and", "but", "so", "also", "plus") and j + 1 < len(words):
            if not _starts_clause(words[j + 1:]):
                continue
            left = " ".join(words[last_cut:j])
            if not _starts_clause(left.split()) and not prev_raw.endswith(","):
                continue
            drop = 1
        elif prev_raw.endswith(","):
            if not _starts_clause(rest):
                continue
            first = words[last_cut].lower().strip(",")
            if first in _SCONJ or first in _PREP and first not in ("like",):
                continue  # "When I was ten, I lived in Cairo": one sentence
        else:
            if cur not in ("i", "i'm", "im", "i've", "ive", "my", "we", "we're", "our", "he",
                           "she", "he's", "she's", "hes", "shes", "his", "they", "they're"):
                continue
            if prev in _RUNON_BLOCK or prev in _SUBJ_PRON or prev in _FIRST_PERSON:
                continue
            before = words[j - 2].strip(",.!?;:").lower() if j >= 2 else ""
            before = _CHAT_FIX.get(before, before).lower()
            if _word_can_be_verb(prev) and (before in _SUBJ_PRON or before in _ADV
                                             or before in ("to", "i'm", "i've", "we're")
                                             or before in _MODAL or before in _NEG_AUX):
                continue  # "i love my dog": "love" is this clause's verb
            if not _starts_clause(rest):
                continue
        left_words = strip_discourse(" ".join(words[last_cut:j])).split()
        left = _parse_clause(_tokenize(" ".join(left_words))) if left_words else None
        if left is None or _fronted_adverbial(left):
            continue  # "every sunday i bake ...": the left part is no statement of its own
        cuts.append((j, drop))
    if not cuts:
        return [piece]
    parts, start = [], 0
    for j, drop in cuts:
        parts.append(" ".join(words[start:j]))
        start = j + drop
    parts.append(" ".join(words[start:]))
    return [p for p in (_strip_piece(x) for x in parts) if p]


def _split_colon(piece: str) -> list[str]:
    """"Work-wise: my boss is Fenwick", "quick intro to the zoo I live in: my husband is a
    beekeeper": a colon before a clause of its own ends a heading, which is judged apart
    (and usually dropped); "my name is: Bob" and "10:30" stay whole."""
    m = re.search(r":\s+", piece)
    if m is None or not _starts_clause(piece[m.end():].split()):
        return [piece]
    head = _strip_piece(piece[:m.start()])
    return ([head] if head else []) + _split_colon(piece[m.end():])


def split_sentences(text: str) -> list[str]:
    """Split chat text into sentences (robust to missing punctuation, emoji, "lol", newlines)."""
    text = clean_text(text)
    text = _LAUGH.sub("\n", text)
    out: list[str] = []
    for line in text.split("\n"):
        for piece in _split_punct(line):
            piece = _strip_piece(piece)
            if not piece or not re.search(r"[^\W_]", piece):
                continue
            for part in (x for half in _split_colon(piece) for x in _split_runon(half)):
                for sub_part in _split_question_tail(_strip_piece(part)):
                    if sub_part and re.search(r"[^\W_]", sub_part):
                        out.append(sub_part)
    return out


# "My sister's husband is a paramedic and works nights, so maybe something for sleep?": the
# question at the end does not make the statement before it a question.
_QUESTION_TAIL = re.compile(
    r",\s+(?=(?:so|but|and|any|what|which|how|where|who|do|does|did|can|could|should|would|"
    r"will|is|are|maybe|thoughts|ideas|right)\b[^,]*\?$)", re.I)


def _split_question_tail(part: str) -> list[str]:
    if not part.endswith("?"):
        return [part]
    m = None
    for m in _QUESTION_TAIL.finditer(part):  # noqa: B007 (the last match is the one wanted)
        continue
    if m is None or len(part[:m.start()].split()) < 4:
        return [part]
    return [part[:m.start()].rstrip(), part[m.end():]]

# ============================================================================================
# Tokens and word classes
# ============================================================================================


@dataclass
class Tok:
    """One token: ``text`` as written, ``low`` lowercase, ``tag`` a coarse word class."""

    text: str
    low: str
    tag: str = ""
    lemma: str = ""
    join: bool = False  # written without a space before it ("'s", "n't", ",")
    full: str = ""  # the full form of a clitic ("'m" -> "am")

    def __repr__(self) -> str:  # compact in test failures
        return f"{self.text}/{self.tag}"


@lru_cache(maxsize=50000)
def _lemmas(low: str) -> dict[str, tuple[str, ...]]:
    if not low or not low[0].isalpha():
        return {}
    return lemminflect.getAllLemmas(low)


@lru_cache(maxsize=50000)
def _verb_lemma(low: str) -> str:
    if low in _BE:
        return "be"
    if low in _HAVE or low == "'d":
        return "have"
    if low in _DO:
        return "do"
    if low in _NEG_AUX:
        return _NEG_AUX[low]
    lem = _lemmas(low).get("VERB") or _lemmas(low).get("AUX")
    if lem:
        return lem[0]
    oov = lemminflect.getLemma(low, upos="VERB", lemmatize_oov=True)
    return oov[0] if oov else low


@lru_cache(maxsize=50000)
def _verb_forms(low: str) -> frozenset[str]:
    """Penn tags this word can have as a verb: VB VBP VBZ VBD VBN VBG (empty: not a verb)."""
    lem = _lemmas(low)
    if "VERB" not in lem and "AUX" not in lem:
        if low.endswith("ed") and len(low) > 4 and not lem:
            return frozenset({"VBD", "VBN"})
        if low.endswith("ing") and len(low) > 5 and not lem:
            return frozenset({"VBG"})
        return frozenset()
    tags = set()
    for lemma in (lem.get("VERB") or ()) + (lem.get("AUX") or ()):
        infl = lemminflect.getAllInflections(lemma, upos="VERB")
        for tag, forms in infl.items():
            if low in forms:
                tags.add(tag)
        if "VBN" not in infl and low in infl.get("VBD", ()):
            tags.add("VBN")  # lemminflect leaves out a participle equal to the past tense
    if not tags:
        tags.add("VB")
    return frozenset(tags)


def _noun_plural(low: str) -> bool:
    lem = _lemmas(low).get("NOUN")
    return bool(lem) and lem[0] != low or low in ("people", "children", "kids", "parents")


_TOKEN = re.compile(
    r"https?://\S+|www\.\S+|[\w.+-]+@[\w-]+\.[\w.]+|(?:[A-Za-z]\.){2,}|[$€£¥]\d[\d,.]*\w*|\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s|am|pm|km|k|kg|cm|mm|m|mi|lbs?|h|"
    r"hrs?|min|yo|%)?\b|[^\W\d_]+(?:[-'][^\W\d_]+)*'?|c\+\+|c#|\S",
    re.I,
)
_CLITIC = re.compile(r"^(.+?)('m|'re|'ve|'ll|'d|'s|s')$", re.I)


def _tokenize(text: str) -> list[Tok]:
    """Tokens with coarse word classes; contractions split ("I'm" -> I + 'm)."""
    raw: list[str] = []
    for m in _TOKEN.finditer(text):
        w = m.group()
        fixed = _CHAT_FIX.get(w.lower())
        if fixed and w.lower() not in ("i", "u", "ur") and " " in fixed:
            raw.extend(fixed.split())
        elif fixed and w.lower() in ("im", "ive") or fixed and "'" in fixed:
            raw.append(fixed if w.lower() in ("im", "ive") or w.islower() else w)
        else:
            raw.append(w)
    toks: list[Tok] = []
    for w in raw:
        low = w.lower()
        if low in _NEG_AUX:
            toks.append(Tok(w, low))
            continue
        m = _CLITIC.match(w)
        if m and m.group(1).lower() not in ("let",) or m and low == "let's":
            base, cl = m.group(1), m.group(2)
            if cl.lower() == "s'":  # plural possessive: parents'
                toks.append(Tok(base + "s", base.lower() + "s"))
                toks.append(Tok("'", "'s", join=True))
                continue
            toks.append(Tok(base, base.lower()))
            toks.append(Tok(cl, cl.lower(), join=True))
            continue
        toks.append(Tok(w, low, join=bool(re.fullmatch(r"[,.!?;:%)]", w))))
    for i in range(len(toks)):
        _tag(toks, i)
    return toks


def _is_number(low: str) -> bool:
    return bool(re.match(r"^[$€£¥]?\d", low)) or low in _NUMBER_WORDS


def _tag(toks: list[Tok], i: int) -> None:
    t = toks[i]
    low = t.low
    prev = toks[i - 1] if i else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    t.lemma = low
    if low == "&":
        t.tag = "CONJ"
        return
    if not low[0].isalnum() and low[0] not in "$€£¥'" and low not in ("c++", "c#"):
        t.tag = "PUNCT"
        return
    if low in ("'m", "'re"):
        t.tag, t.full, t.lemma = "AUX", _BE[low], "be"
    elif low == "'ve":
        t.tag, t.full, t.lemma = "AUX", "have", "have"
    elif low == "'ll":
        t.tag, t.full, t.lemma = "MODAL", "will", "will"
    elif low == "'d":
        t.tag, t.full, t.lemma = "MODAL", "would", "would"
    elif low == "'s":
        pl = prev.low if prev else ""
        if pl in ("it", "that", "he", "she", "there", "what", "who", "where", "here", "this"):
            t.tag, t.full, t.lemma = "AUX", "is", "be"
        elif pl == "let":
            t.tag, t.full, t.lemma = "PRON", "us", "us"
        else:
            t.tag = "POSS_S"  # decided by the parser: possessive or "is"/"has"
    elif low in _NEG_AUX:
        t.tag = "MODAL" if _NEG_AUX[low] in _MODAL else "AUX"
        t.lemma = _NEG_AUX[low]
    elif low in ("not", "never"):
        t.tag = "NEG"
    elif low == "i" or low in ("me", "we", "us", "you", "he", "him", "she", "they", "them",
                               "myself", "yourself", "himself", "herself", "ourselves",
                               "themselves", "it", "itself", "someone", "everyone",
                               "somebody", "everybody", "nobody", "mine", "yours", "ours"):
        t.tag = "PRON"
        if low == "i":
            t.text = "I"
    elif low == "her":
        t.tag = "POSS" if nxt and nxt.low not in _PREP and nxt.tag != "PUNCT" and (
            nxt.low[0].isalnum()) and nxt.low not in _CONJ and nxt.low not in _SCONJ else "PRON"
    elif low in _POSS:
        t.tag = "POSS"
    elif low in _BE or low in _HAVE or low in _DO:
        t.tag = "AUX"
        t.lemma = _verb_lemma(low)
    elif low in _MODAL and not (low == "may" and t.text == "May"):
        t.tag = "MODAL"
    elif low == "to":
        t.tag = "TO"
    elif low in _WH:
        t.tag = "WH"
    elif low in _CONJ:
        t.tag = "CONJ"
    elif low == "there" and (nxt is not None and (nxt.low in _BE or nxt.low == "'s")):
        t.tag = "PRON"
    elif low in ("that", "this", "these", "those") and (
        nxt is None or nxt.tag == "PUNCT" or nxt.low in _BE or nxt.low in _MODAL
        or nxt.low in _PREP
    ):
        t.tag = "PRON"
    elif low in _DET:
        t.tag = "DET"
    elif _is_number(low):
        t.tag = "NUM"
    elif low in ("fav", "fave", "favourite", "favorite", "fav.") and nxt is not None:
        t.tag = "ADJ"
    elif low == "so" and nxt is not None and nxt.low not in _SUBJ_PRON | _POSS and (
            nxt.tag != "PUNCT") and (i == 0 or not _clause_after(toks, i + 1)):
        t.tag = "ADV"
    elif low == "like" and prev is not None and (
            prev.low in _SUBJ_PRON or prev.tag in ("ADV", "NEG", "MODAL", "TO")
            or prev.low in _DO or prev.low in _NEG_AUX or prev.tag == "NOUN" and i == 1):
        t.tag, t.lemma = "VERB", "like"
    elif low in _SCONJ and low not in _PREP:
        t.tag = "SCONJ"
    elif low in _PREP:
        t.tag = "PREP"
    elif low in _ADV and not (low in ("home", "pretty", "kind", "sort") and nxt is not None
                              and nxt.tag != "PUNCT"):
        t.tag = "ADV"
    elif low in _MONTH_LOW and len(low) > 3 or low in _WEEKDAY_LOW or (
            low[:-1] in _WEEKDAY_LOW and low.endswith("s")):
        t.tag = "NOUN"
        if low in ("march", "may") and t.text.islower() and not (
                prev is not None and prev.low in ("in", "of", "last", "next", "this", "early",
                                                  "late", "since", "until", "mid")
                or nxt is not None and nxt.tag in ("NUM",) or nxt is not None
                and re.match(r"\d", nxt.low)):
            t.tag = "VERB"
    else:
        lem = _lemmas(low)
        cands = set(lem)
        initial = i == 0 or (prev is not None and prev.tag == "PUNCT" and prev.low in ".!?:\"")
        if t.text[0].isupper() and not initial and low != "i":
            t.tag = "PROPN"
        elif t.text[0].isupper() and initial and not cands:
            t.tag = "PROPN"
        elif not cands:
            t.tag = "ADV" if low.endswith("ly") and len(low) > 4 else (
                "VERB" if _verb_forms(low) and prev is not None and (
                    prev.low in _SUBJ_PRON or prev.tag in ("MODAL", "TO", "AUX", "NEG"))
                else "NOUN")
            t.lemma = low
        elif initial and "ADV" in cands and nxt is not None and (
                nxt.low in _PREP or nxt.low in ("when", "then")) and low not in _PREP:
            t.tag = "ADV"  # a fronted adverbial: "Back in March I ran ...", "Back when ..."
        else:
            pt = prev.tag if prev else ""
            if pt == "PREP" and prev is not None and prev.low not in ("to",):
                pt = "DET"  # after a preposition comes a noun phrase (or a gerund)
                if low.endswith("ing") and "VERB" in cands:
                    t.tag, t.lemma = "VERB", _verb_lemma(low)
                    return
            be_before = prev is not None and (prev.low in _BE or prev.full in ("is", "am", "are")
                                              or prev.tag == "ADV" and i >= 2 and (
                                                  toks[i - 2].low in _BE))
            if be_before and "ADJ" in cands and low not in (
                    "born", "called", "named", "based", "located", "raised", "married") and not (
                    nxt is not None and "NOUN" in _lemmas(nxt.low) and nxt.tag != "PUNCT"):
                t.tag = "ADJ"
            elif pt in ("DET", "POSS", "ADJ", "NUM", "POSS_S") or (prev is not None and prev.low
                                                                 in ("of", "'s")):
                if "ADJ" in cands and nxt is not None and (
                        "NOUN" in _lemmas(nxt.low) or nxt.text[:1].isupper()
                        and nxt.low != "i") and nxt.tag != "PUNCT":
                    t.tag = "ADJ"
                elif "NOUN" in cands:
                    t.tag = "NOUN"
                elif "ADJ" in cands:
                    t.tag = "ADJ"
                else:
                    t.tag = "VERB" if ("VERB" in cands and low.endswith("ing")) else "NOUN"
            elif ("VERB" in cands or "AUX" in cands) and (
                    pt in ("MODAL", "TO", "NEG") or (prev is not None and prev.low in _SUBJ_PRON)
                    or (pt == "ADV" and i >= 2 and toks[i - 2].low in _SUBJ_PRON)):
                t.tag = "VERB"
            elif "VERB" in cands and low.endswith("ing") and not (
                    "NOUN" in cands and prev is not None and (
                        prev.tag in ("VERB", "ADJ") and prev.low.endswith("ing"))):
                t.tag = "VERB"
            elif "VERB" in cands and cands == {"VERB"}:
                t.tag = "VERB"
            elif "NOUN" in cands and "ADJ" in cands and nxt is not None and (
                    "NOUN" in _lemmas(nxt.low)) and nxt.tag != "PUNCT":
                t.tag = "ADJ"
            elif "NOUN" in cands:
                t.tag = "NOUN"
            elif "ADJ" in cands:
                t.tag = "ADJ"
            elif "ADV" in cands:
                t.tag = "ADV"
            else:
                t.tag = "VERB"
            if t.tag == "NOUN":
                t.lemma = lem["NOUN"][0] if "NOUN" in lem else low
            elif t.tag == "VERB":
                t.lemma = _verb_lemma(low)


def _join(toks: list[Tok] | list[str]) -> str:
    out = ""
    for t in toks:
        if isinstance(t, str):
            text, join = t, bool(re.fullmatch(r"[,.!?;:%)]|'s|'", t))
        else:
            text, join = t.text, t.join
        if not text:
            continue
        if out and not join and not out.endswith(("(", "$", "€", "£")):
            out += " "
        out += text
    return out

# ============================================================================================
# Clause analysis: subject, verb group, constituents
# ============================================================================================


@dataclass
class Part:
    """One constituent after (or before) the verb: np, pp, time, freq, dur, since, inf, ger,
    adj, adv, clause or other. ``sub`` is the nested verb phrase of inf/ger (and of a pp whose
    object is a gerund); ``name`` the name given by "named/called X" inside an np."""

    kind: str
    toks: list[Tok]
    prep: str = ""
    head: Tok | None = None
    sub: Clause | None = None
    name: list[Tok] = field(default_factory=list)


@dataclass
class Clause:
    subj: list[Tok]  # empty: the subject was dropped ("love bouldering") and is "I"
    aux: list[Tok]
    verb: Tok | None
    prt: list[Tok] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    front: list[Part] = field(default_factory=list)
    pre: list[Tok] = field(default_factory=list)  # adverbs before a simple verb
    copula: bool = False
    past: bool = False
    third: bool = False  # third person singular subject (does/is)
    plural: bool = False
    coord: list[Clause] = field(default_factory=list)
    nested: bool = False  # a verb phrase inside another clause (to-infinitive, gerund)


_NP_START = ("DET", "POSS", "NUM", "ADJ", "NOUN", "PROPN")
_OF_NOUNS = _words("fan lover collection expert")  # "a fan of X": asked "a fan of what?"
_MOTION_VERBS = _words("go come walk drive ride cycle bike run fly travel commute move head "
                       "return get take bring send carry cycle swim sail hike")
_NOUN_TAKES_PP = _words(
    "trip trips journey visit flight ticket tickets holiday vacation move tour cruise degree "
    "masters phd diploma course class classes lessons fan lover expert book books film movie "
    "documentary article interest passion obsession collection photo photos picture pictures "
    "certificate job career position role interview wedding marriage relationship house "
    "apartment flat cabin view subscription membership allergy fear phobia")
_INF_VERBS = _words(
    "want wants wanted plan plans planned planning hope hopes hoped hoping love loves loved like "
    "likes liked need needs needed try tries tried trying decide decided learn learning learned "
    "learnt start started starting begin began used use going gonna wish wished would intend "
    "intends intended aim aims aiming afford promise promised prefer prefers manage managed "
    "have has had got get trying tend tends hate hates refuse refused agree agreed expect "
    "expected dream dreaming dreamed continue continued struggle struggling ought"
)


def _time_content(toks: list[Tok]) -> bool:
    for t in toks:
        if t.low in _TIME_NOUNS or t.low in _MONTH_LOW and len(t.low) > 3 and t.tag != "VERB":
            return True
        if re.fullmatch(r"(?:19|20)\d\d|\d{1,2}(?::\d\d)?(?:am|pm)|\d{1,2}:\d\d|(?:19|20)\d0s",
                        t.low):
            return True
    return False


def _finite_verb(t: Tok, plural: bool) -> bool:
    """Can ``t`` be the finite verb after a noun subject (singular unless ``plural``)?"""
    if t.tag in ("AUX", "MODAL"):
        return True
    if t.tag in ("PROPN", "NUM", "DET", "POSS", "PREP", "PUNCT"):
        return False
    forms = _verb_forms(t.low)
    if not forms:
        return False
    if "VBD" in forms:
        return True
    return "VBZ" in forms if not plural else bool(forms & {"VBP", "VB"})


def _np(toks: list[Tok], k: int, subject: bool = False) -> tuple[int, int, list[Tok]]:
    """Parse a noun phrase at ``k``: (end, head index or -1, name tokens after named/called)."""
    n, j, head = len(toks), k, -1
    last_head = -1
    name: list[Tok] = []
    while j < n:
        t = toks[j]
        nxt = toks[j + 1] if j + 1 < n else None
        if t.low in ("last", "next", "this", "every", "each", "past") and nxt is not None and (
                nxt.low in _TIME_NOUNS or nxt.low == "coming") and head != -1:
            break
        if head == -1 and t.low in ("about", "around", "roughly", "approximately", "nearly",
                                    "almost", "over", "under", "like") and j == k and \
                nxt is not None and nxt.tag == "NUM" and not subject:
            j += 1
            continue
        if t.tag in ("DET", "POSS") or t.tag == "NUM" and head == -1:
            if head != -1:
                break
            j += 1
            continue
        if t.tag == "NUM" and head != -1 and (toks[head].low in _MONTH_LOW
                                              or toks[head].low in _WEEKDAY_LOW):
            j += 1  # "January 4"
            continue
        if t.low == "," and head != -1 and nxt is not None and (
                re.fullmatch(r"(?:19|20)\d\d", nxt.low) and toks[j - 1].tag == "NUM"
                or toks[j - 1].low in _WEEKDAY_LOW and nxt.low in _MONTH_LOW):
            j += 1  # "January 4, 2024", "Friday, December 29"
            continue
        if t.tag == "ADJ" or t.tag == "ADV" and t.low in ("very", "really", "so", "super",
                                                         "pretty", "quite") and nxt is not None \
                and nxt.tag == "ADJ":
            if head != -1 and t.tag == "ADJ" and not (nxt is not None and nxt.tag in (
                    "NOUN", "PROPN")):
                break  # "my bike red": the adjective is not part of this np
            j += 1
            continue
        if t.tag in ("NOUN", "PROPN") or t.tag == "VERB" and head == -1 and j > k and (
                toks[j - 1].tag in ("DET", "POSS", "ADJ", "NUM", "POSS_S")) and (
                nxt is not None and (nxt.tag in ("NOUN", "PROPN") or "NOUN" in _lemmas(
                    nxt.low) and nxt.tag == "VERB")):
            if subject and head != -1 and t.tag == "NOUN" and _finite_verb(
                    t, _noun_plural(toks[head].low)):
                break
            if head != -1 and t.tag == "NOUN" and not subject and _finite_verb(t, False) \
                    and toks[head].tag == "PROPN" and t.low not in _TIME_NOUNS and \
                    nxt is not None and nxt.tag in ("PREP", "DET", "POSS", "NUM", "PROPN", "TO"):
                break  # "(I think) Andre lives in ..."
            head = j
            j += 1
            continue
        if t.tag == "POSS_S" and head != -1:
            if _poss_is_verb(toks, j):
                break
            j += 1
            head = -1
            continue
        if t.low == "of" and head != -1 and nxt is not None and (
                nxt.tag in _NP_START or nxt.low in ("my", "our")) and not (
                subject and nxt.tag == "PRON") and not (
                not subject and toks[head].low in _NOUN_TAKES_PP):
            j += 1
            last_head, head = head, -1  # "a bit of Arabic": the head is "Arabic"
            continue
        if t.low in ("named", "called") and head != -1 and nxt is not None and (
                nxt.tag in ("PROPN", "NOUN", "ADJ", "NUM") or nxt.text[:1].isupper()):
            j += 1
            start = j
            while j < n and (toks[j].tag == "PROPN" or toks[j].text[:1].isupper()
                             and toks[j].low != "i" or j == start or toks[j].low in (
                                 "&", ",", "and") and j + 1 < n and j > start and (
                                 toks[j + 1].text[:1].isupper() and toks[j + 1].low != "i")):
                j += 1
            name = toks[start:j]
            continue
        if t.low in ("and", "&") and not subject and head != -1 and nxt is not None and (
                nxt.tag in _NP_START) and not _finite_verb(nxt, True) and not _finite_verb(
                nxt, False):
            j += 1
            head = -1
            continue
        break
    if head == -1 and j > k and toks[j - 1].tag == "NUM":
        head = j - 1
    if head == -1 and last_head != -1:
        head = last_head
    return j, head, name


def _poss_is_verb(toks: list[Tok], j: int) -> bool:
    """Is the "'s" at ``j`` "is"/"has" rather than a possessive?"""
    nxt = toks[j + 1] if j + 1 < len(toks) else None
    if nxt is None or nxt.tag in ("DET", "NUM", "ADV", "NEG", "PREP", "PUNCT", "TO", "POSS"):
        return True
    forms = _verb_forms(nxt.low)
    if nxt.low in ("been", "got", "gotten") or forms & {"VBG"} and nxt.tag == "VERB":
        return True
    if nxt.tag in ("NOUN", "PROPN"):
        return False
    if nxt.tag == "ADJ":
        after = toks[j + 2] if j + 2 < len(toks) else None
        return not (after is not None and after.tag in ("NOUN", "PROPN"))
    return forms != frozenset() and "VBN" in forms


def _set_poss_verb(t: Tok, nxt: Tok | None) -> None:
    t.tag = "AUX"
    if nxt is not None and nxt.low in ("been", "got", "gotten"):
        t.full, t.lemma = "has", "have"
    else:
        t.full, t.lemma = "is", "be"


def _subject(toks: list[Tok], k: int) -> tuple[int, bool, bool] | None:
    """Subject at ``k``: (end, third person singular, plural) or None."""
    n = len(toks)
    if k >= n:
        return None
    t = toks[k]
    if t.tag == "PRON" and t.low in _SUBJ_PRON | {"me", "this", "that", "these", "those"}:
        end = k + 1
        third = t.low in ("he", "she", "it", "there", "someone", "everyone", "somebody",
                          "everybody", "nobody", "this", "that", "one")
        plural = t.low in ("we", "they", "these", "those")
        if t.low in ("i", "me") and end + 1 < n and toks[end].low == "and":
            e2, _, _ = _np(toks, end + 1, subject=True)
            if e2 > end + 1:
                return e2, False, True
        if t.low == "me":
            return None
        return end, third, plural
    if t.tag in _NP_START or t.tag == "VERB" and t.low.endswith("ing") and k + 1 < n and \
            toks[k + 1].tag in ("AUX", "MODAL"):
        if t.tag == "VERB":  # "Running is my passion"
            return k + 1, True, False
        end, head, _ = _np(toks, k, subject=True)
        if end == k or head == -1:
            return None
        plural = _noun_plural(toks[head].low) or toks[head].low in ("family", "people")
        if end + 1 < n and toks[end].low == "and" and toks[end + 1].low in ("i", "me"):
            return end + 2, False, True
        if end + 1 < n and toks[end].low == "and" and toks[end + 1].tag in ("POSS", "PROPN"):
            e2, h2, _ = _np(toks, end + 1, subject=True)
            if h2 != -1:
                return e2, False, True
        return end, not plural, plural
    return None


def _verb_group(toks: list[Tok], j: int, cl: Clause) -> int | None:
    """Fill cl.aux / cl.verb / cl.copula / cl.pre from ``j``; return the index after it."""
    n = len(toks)
    pre: list[Tok] = []
    while j < n and (toks[j].tag in ("ADV", "NEG") and toks[j].low not in ("home",)):
        pre.append(toks[j])
        j += 1
    if j >= n:
        return None
    t = toks[j]
    if t.tag == "POSS_S":
        _set_poss_verb(t, toks[j + 1] if j + 1 < n else None)
    if t.tag in ("AUX", "MODAL"):
        aux: list[Tok] = list(pre)
        while j < n and toks[j].tag in ("AUX", "MODAL", "NEG", "ADV", "POSS_S"):
            t = toks[j]
            if t.tag == "POSS_S":
                _set_poss_verb(t, toks[j + 1] if j + 1 < n else None)
            nxt = toks[j + 1] if j + 1 < n else None
            if t.tag == "AUX" and t.lemma in ("have", "do") and t.low not in _NEG_AUX and \
                    t.low != "'ve" and not (
                    nxt is not None and (nxt.tag in ("AUX", "NEG", "MODAL") or "VBN" in
                                         _verb_forms(nxt.low) and nxt.tag in ("VERB", "ADJ")
                                         or nxt.tag == "ADV" and nxt.low not in (
                                             "home", "abroad"))):
                cl.verb = t
                cl.aux = aux
                j += 1
                break
            if t.tag == "ADV" and not aux:
                break
            if t.tag == "ADV" and nxt is not None and nxt.tag not in (
                    "AUX", "MODAL", "NEG", "ADV", "VERB") and not _verb_forms(nxt.low):
                break  # "I'm really tired": adverb belongs to the complement
            aux.append(t)
            j += 1
        else:
            pass
        if cl.verb is None:
            cl.aux = aux
            core = [a for a in aux if a.tag in ("AUX", "MODAL")]
            if not core:
                return None
            last = core[-1]
            t = toks[j] if j < n else None
            forms = _verb_forms(t.low) if t is not None else frozenset()
            if t is not None and t.tag not in ("PROPN", "DET", "POSS", "NUM", "PREP", "TO",
                                              "PUNCT", "PRON") and forms:
                if last.lemma == "be" or last.low in ("'s",):
                    ok = ("VBG" in forms or "VBN" in forms) and (
                        t.tag == "VERB" or "VBG" in forms or not (
                            "ADJ" in _lemmas(t.low) or "NOUN" in _lemmas(t.low)))
                elif last.lemma == "have":
                    ok = bool(forms & {"VBN", "VBD"})  # "I've got", chat's "I've went"
                else:
                    ok = bool(forms & {"VB", "VBP"}) or t.tag == "VERB"
                if ok:
                    cl.verb = t
                    j += 1
            if cl.verb is None:
                if any(a.lemma == "be" for a in core):
                    cl.copula = True
                elif last.lemma in ("have", "do") and last.low not in _NEG_AUX:
                    cl.verb = last
                    cl.aux = aux[:aux.index(last)]
                elif t is not None and t.tag in ("NOUN", "VERB"):
                    cl.verb = t  # "I can cook", tagged as a noun
                    j += 1
                else:
                    return None
    else:
        forms = _verb_forms(t.low)
        if not forms or t.tag in ("PROPN", "DET", "POSS", "NUM", "PREP", "TO", "PUNCT", "PRON",
                                  "CONJ", "SCONJ", "WH"):
            return None
        if t.tag == "NOUN" and j + 1 < n and toks[j + 1].tag == "AUX":
            return None
        cl.pre = pre
        cl.verb = t
        t.tag = "VERB"
        t.lemma = _verb_lemma(t.low)
        j += 1
    if cl.verb is not None and cl.verb.tag not in ("AUX", "MODAL"):
        cl.verb.tag = "VERB"
        cl.verb.lemma = _verb_lemma(cl.verb.low)
    first = next((a for a in cl.aux if a.tag in ("AUX", "MODAL")), cl.verb)
    if first is not None:
        fl = first.low
        if first.tag in ("AUX", "MODAL"):
            cl.past = fl in ("was", "were", "did", "had", "didn't", "wasn't", "weren't",
                             "hadn't", "could", "couldn't")
        else:
            f = _verb_forms(fl)
            cl.past = "VBD" in f and not (f & {"VB", "VBP", "VBZ"})
    if cl.verb is not None and j < n and toks[j].low in _PARTICLES and (
            j + 1 >= n or toks[j + 1].tag in ("PREP", "DET", "POSS", "NOUN", "PROPN", "NUM",
                                              "TO", "PUNCT", "ADV", "VERB", "ADJ", "CONJ")):
        cl.prt = [toks[j]]
        toks[j].tag = "PRT"
        j += 1
    return j


def _time_part(toks: list[Tok], j: int) -> tuple[int, str] | None:
    n = len(toks)
    t = toks[j]
    nxt = toks[j + 1] if j + 1 < n else None
    if t.low in ("every", "each") and nxt is not None:
        e = j + 1
        while e < n and (toks[e].low in _TIME_NOUNS or toks[e].low in ("other", "single",
                                                                        "few", "couple")
                         or toks[e].tag == "NUM"):
            e += 1
        if e > j + 1 and toks[e - 1].low not in ("other", "single"):
            return e, "freq"
    if t.low in ("once", "twice", "thrice") or t.tag == "NUM" and nxt is not None and \
            nxt.low == "times":
        e = j + (2 if t.tag == "NUM" else 1)
        if e < n and toks[e].low in ("a", "an", "per", "every", "each"):
            e += 1
            while e < n and (toks[e].low in _TIME_NOUNS or toks[e].low in ("other", "couple",
                                                                            "of")):
                e += 1
            return e, "freq"
    if t.low in ("last", "next", "this", "past", "coming", "early", "late") and nxt is not None:
        e = j + 1
        if nxt.low == "coming":
            e += 1
        if e < n and (toks[e].low in _TIME_NOUNS or toks[e].low in _MONTH_LOW):
            e += 1
            while e < n and toks[e].low in _TIME_NOUNS:
                e += 1
            return e, "time"
    if t.low in ("a", "an", "per") and nxt is not None and nxt.low in (
            "day", "night", "week", "month", "year", "weekend", "morning", "evening") and \
            j > 0 and toks[j - 1].tag in ("NUM", "NOUN", "ADV"):
        return j + 2, "rate"  # "six hours a night", "1200 euros a month"
    if t.low in ("yesterday", "today", "tomorrow", "tonight"):
        e = j + 1
        if e < n and toks[e].low in ("morning", "afternoon", "evening", "night"):
            e += 1
        return e, "time"
    if t.low in ("nowadays", "recently", "lately", "currently") or t.low == "these" and \
            nxt is not None and nxt.low == "days":
        return j + (2 if t.low == "these" else 1), "time"
    if (t.tag == "NUM" or t.low in ("a", "an", "few", "several")) and j + 2 < n and \
            toks[j + 1].low in _DURATION_UNITS and toks[j + 2].low == "ago":
        return j + 3, "time"
    if t.low == "a" and j + 3 < n and toks[j + 1].low in ("few", "couple") and toks[j + 3].low \
            == "ago":
        return j + 4, "time"
    if t.tag in ("PREP", "TO", "SCONJ") and t.low in (
            "on", "in", "at", "since", "until", "till", "by", "during", "from", "for", "before",
            "after", "around", "throughout", "over", "within") and nxt is not None:
        end, head, _ = _np(toks, j + 1)
        if end > j + 1 and _time_content(toks[j + 1:end]):
            inner = toks[j + 1:end]
            lows = [x.low for x in inner]
            if t.low == "for" or t.low in ("over", "within") and any(
                    x in _DURATION_UNITS for x in lows):
                if any(x in _DURATION_UNITS or x in ("while", "ages") for x in lows):
                    return end, "dur"
            if t.low == "since":
                return end, "since"
            if t.low == "on" and any(x.endswith("s") and (x[:-1] in _WEEKDAY_LOW or x in (
                    "weekends", "weekdays")) for x in lows):
                return end, "freq"
            if t.low == "in" and any(x in ("mornings", "evenings", "afternoons", "nights")
                                     for x in lows):
                return end, "freq"
            if t.low == "for" and not any(x.low in _MONTH_LOW or re.fullmatch(r"\d{4}", x.low)
                                          or x.low in _WEEKDAY_LOW for x in inner):
                return None  # "for my birthday": a purpose, asked as "what for"
            return end, "time"
        if t.low == "at" and nxt.low in ("night", "noon", "midnight", "weekends", "dawn"):
            return j + 2, "time"
    if t.tag == "NOUN" and (t.low in _MONTH_LOW and len(t.low) > 3 or t.low in _WEEKDAY_LOW) \
            and (j == 0 or toks[j - 1].tag not in ("DET", "POSS")):
        end, _, _ = _np(toks, j)
        return max(end, j + 1), "time"
    return None


def _starts_np(t: Tok) -> bool:
    return t.tag in _NP_START or t.tag == "PRON" and t.low in _OBJ_PRON | {"mine", "yours"}


def _vp(toks: list[Tok], j: int, parent: Clause) -> Clause:
    """A non-finite verb phrase at ``j`` (after "to", or a gerund) sharing parent's subject."""
    cl = Clause(subj=parent.subj, aux=[], verb=toks[j], nested=True,
                third=parent.third, plural=parent.plural)
    k = j + 1
    if toks[j].lemma == "be" or toks[j].low == "be":
        cl.copula = True
    if k < len(toks) and toks[k].low in _PARTICLES and (
            k + 1 >= len(toks) or toks[k + 1].tag not in ("NOUN",) or toks[k + 1].tag in
            ("PREP", "DET", "POSS", "NOUN", "PROPN", "NUM", "ADV")):
        cl.prt = [toks[k]]
        k += 1
    cl.parts = _parts(toks, k, cl)
    return cl


def _parts(toks: list[Tok], j: int, cl: Clause) -> list[Part]:
    parts: list[Part] = []
    n = len(toks)
    verb_low = cl.verb.low if cl.verb is not None else ""
    while j < n:
        t = toks[j]
        nxt = toks[j + 1] if j + 1 < n else None
        if t.tag == "PUNCT":
            if t.low == "," and nxt is not None and _subject(toks, j + 1) is not None and \
                    _clause_at(toks, j + 1):
                parts.append(Part("clause", toks[j:], prep=","))  # a comma-spliced clause
                break
            if t.low == "," and nxt is not None and parts and parts[-1].kind in ("np", "pp") \
                    and _starts_np(nxt) and nxt.tag != "PRON":
                end, head, name = _np(toks, j + 1)
                if end > j + 1:  # a list: "Spanish, French and Arabic", "Ghent, Belgium"
                    parts[-1].toks = parts[-1].toks + toks[j:end]
                    parts[-1].name = parts[-1].name or name
                    j = end
                    continue
            j += 1
            continue
        if parts and parts[-1].kind == "np" and parts[-1].head is not None and (
                parts[-1].head.low in _NOUN_TAKES_PP) and t.tag in ("PREP", "TO") and (
                t.low in ("to", "in", "about", "on", "for", "from", "with")) and (
                parts[-1].head.low not in _OF_NOUNS) and (
                _time_part(toks, j) is None) and nxt is not None and _starts_np(nxt):
            end, head, name = _np(toks, j + 1)
            if end > j + 1:  # "a trip to Patagonia", "a degree in physics"
                parts[-1].toks = parts[-1].toks + toks[j:end]
                j = end
                continue
        tp = _time_part(toks, j)
        if tp is not None:
            end, kind = tp
            parts.append(Part(kind, toks[j:end], prep=t.low if t.tag in ("PREP", "TO", "SCONJ")
                              else ""))
            j = end
            continue
        if t.low in ("about", "around", "over", "under", "nearly", "almost", "like") and \
                nxt is not None and nxt.tag == "NUM":
            end, head, name = _np(toks, j)
            parts.append(Part("np", toks[j:end], head=toks[head] if head >= 0 else None))
            j = end
            continue
        motion = cl.verb is not None and cl.verb.lemma in _MOTION_VERBS
        if t.tag == "TO" and nxt is not None and motion and "NOUN" in _lemmas(nxt.low) and \
                nxt.tag == "VERB":
            nxt.tag, nxt.lemma = "NOUN", _lemmas(nxt.low)["NOUN"][0]  # "ride to work"
        if t.tag == "TO" and nxt is not None and not (
                motion and "NOUN" in _lemmas(nxt.low)) and (
                nxt.tag == "VERB" or nxt.low in ("be", "have", "do") or (
                    (verb_low in _INF_VERBS or cl.copula or cl.verb is not None and
                     cl.verb.tag == "VERB" and "VBN" in _verb_forms(verb_low) and
                     verb_low not in ("moved", "went", "gone", "come", "came"))
                    and nxt.tag in ("NOUN", "ADJ") and _verb_forms(nxt.low) & {"VB", "VBP"}
                    and not nxt.text[:1].isupper())):
            sub = _vp(toks, j + 1, cl)
            parts.append(Part("inf", toks[j:], sub=sub))
            break
        if t.tag == "SCONJ" and t.low in ("as", "like", "after", "before", "since", "until",
                                          "till", "once") and nxt is not None and not (
                _subject(toks, j + 1) is not None and _clause_at(toks, j + 1)) and (
                _starts_np(nxt) or nxt.tag == "VERB"):
            t.tag = "PREP"
        if t.tag in ("PREP", "TO") or t.tag == "SCONJ" and t.low in ("after", "before",
                                                                     "since", "until", "till",
                                                                     "like"):
            if t.tag == "SCONJ" or t.low in ("after", "before", "since", "until", "till"):
                if _subject(toks, j + 1) is not None and _clause_at(toks, j + 1):
                    parts.append(Part("clause", toks[j:], prep=t.low))
                    break
            if nxt is not None and nxt.tag == "VERB" and "VBG" in _verb_forms(nxt.low):
                sub = _vp(toks, j + 1, cl)
                parts.append(Part("pp", toks[j:], prep=t.low, sub=sub))
                break
            end, head, name = _np(toks, j + 1)
            if end == j + 1 and nxt is not None and nxt.tag == "PRON":
                end, head = j + 2, j + 1
            if end == j + 1:
                parts.append(Part("adv", [t]))
                j += 1
                continue
            parts.append(Part("pp", toks[j:end], prep=t.low,
                              head=toks[head] if head >= 0 else None, name=name))
            j = end
            continue
        if t.tag in ("SCONJ", "WH") or t.low == "that" and t.tag == "PRON":
            parts.append(Part("clause", toks[j:], prep=t.low))
            break
        if t.tag == "CONJ":
            if nxt is None:
                break
            if _subject(toks, j + 1) is not None and _clause_at(toks, j + 1):
                sub = _parse_clause(toks[j + 1:])
                if sub is not None:
                    cl.coord.append(sub)
                    break
            if nxt.tag in ("VERB", "AUX", "MODAL") or nxt.tag == "ADV" or (
                    nxt.tag == "NOUN" and _finite_verb(nxt, cl.plural or not cl.third)
                    and j + 2 < n and toks[j + 2].tag in _NP_START + ("PREP", "TO")):
                sub = Clause(subj=cl.subj, aux=[], verb=None, third=cl.third,
                             plural=cl.plural)
                k = _verb_group(toks, j + 1, sub)
                if k is not None:
                    sub.parts = _parts(toks, k, sub)
                    cl.coord.append(sub)
                    break
            if parts and parts[-1].kind in ("np", "pp") and _starts_np(nxt):
                end, head, name = _np(toks, j + 1)
                if end > j + 1:
                    parts[-1].toks = parts[-1].toks + toks[j:end]
                    j = end
                    continue
            j += 1
            continue
        if t.tag == "VERB" and "VBG" in _verb_forms(t.low) and not (
                nxt is not None and nxt.tag in ("NOUN",) and "NOUN" in _lemmas(t.low)
                and False):
            sub = _vp(toks, j, cl)
            parts.append(Part("ger", toks[j:], sub=sub))
            break
        if _starts_np(t):
            if t.tag == "PRON":
                parts.append(Part("np", [t], head=t))
                j += 1
                continue
            if t.tag == "ADJ" and not (nxt is not None and (nxt.tag in ("NOUN", "PROPN", "ADJ")
                                                            or nxt.tag == "VERB" and
                                                            "NOUN" in _lemmas(nxt.low))):
                parts.append(Part("adj", [t], head=t))
                j += 1
                continue
            end, head, name = _np(toks, j)
            if end == j:
                parts.append(Part("other", [t]))
                j += 1
                continue
            parts.append(Part("np", toks[j:end], head=toks[head] if head >= 0 else None,
                              name=name))
            j = end
            continue
        if t.tag in ("ADV", "NEG"):
            if nxt is not None and nxt.tag == "ADJ" and t.low in ("very", "really", "so",
                                                                  "super", "pretty", "quite",
                                                                  "too", "extremely"):
                parts.append(Part("adj", [t, nxt], head=nxt))
                j += 2
                continue
            parts.append(Part("freq" if t.low in _FREQ_ADV else "adv", [t]))
            j += 1
            continue
        if t.tag == "VERB" and cl.copula and ("VBN" in _verb_forms(t.low) or "ADJ" in _lemmas(
                t.low)):
            parts.append(Part("adj", [t], head=t))
            j += 1
            continue
        parts.append(Part("other", [t]))
        j += 1
    return parts


def _clause_at(toks: list[Tok], k: int) -> bool:
    s = _subject(toks, k)
    if s is None:
        return False
    probe = Clause(subj=[], aux=[], verb=None)
    return _verb_group(list(toks), s[0], probe) is not None and (
        probe.verb is not None or probe.copula)


def _parse_clause(toks: list[Tok], allow_drop: bool = True) -> Clause | None:
    """Analyse one clause; None when no subject + verb structure is found."""
    kept, depth = [], 0
    for t in toks:  # a parenthesis is left out of the analysis: "My sister (the older one)"
        if t.low == "(":
            depth += 1
        elif t.low == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(t)
    toks = [t for t in kept if not (t.tag == "PUNCT" and t.low != ",")]
    while toks and toks[-1].low == ",":
        toks.pop()
    while toks and toks[0].low == ",":
        toks.pop(0)
    if not toks:
        return None
    for attempt in range(2):
        cl = _parse_at(toks, allow_drop)
        if cl is not None:
            return cl
        poss = [t for t in toks if t.tag == "POSS_S"]
        if not poss or attempt:
            break
        nxt_i = toks.index(poss[0]) + 1
        _set_poss_verb(poss[0], toks[nxt_i] if nxt_i < len(toks) else None)
    return None


def _parse_at(toks: list[Tok], allow_drop: bool) -> Clause | None:
    n = len(toks)
    starts = [0]
    first = toks[0]
    if first.tag in ("PREP", "SCONJ", "ADV", "TO", "WH") or first.low in (
            "last", "next", "this", "every", "each", "once", "twice") or _time_part(toks, 0):
        cands = []
        for j in range(1, n):
            if toks[j - 1].low == "," or toks[j].low in ("i", "we", "my", "our") or (
                    toks[j].tag == "PROPN" and toks[j - 1].tag not in ("PREP", "PROPN", "DET")):
                if _clause_at(toks, j):
                    cands.append(j)
        if cands:
            comma = [j for j in cands if toks[j - 1].low == ","]
            if first.tag in ("SCONJ", "WH"):
                starts = [comma[0] if comma else cands[-1]]
            else:
                starts = [comma[0] if comma else cands[0]]
    k = starts[0]
    front_toks = toks[:k]
    s = _subject(toks, k)
    cl = Clause(subj=[], aux=[], verb=None)
    if s is not None:
        end, third, plural = s
        cl.subj, cl.third, cl.plural = toks[k:end], third, plural
        j = _verb_group(toks, end, cl)
        if j is None:
            s = None
            cl = Clause(subj=[], aux=[], verb=None)
    if s is None:
        if not allow_drop or k != 0:
            return None
        # chat drops the subject: "love bouldering", "just got a puppy", "moved here in 2019"
        t = toks[0]
        j0 = 0
        while j0 < n and toks[j0].tag == "ADV":
            j0 += 1
        if j0 >= n:
            return None
        t = toks[j0]
        forms = _verb_forms(t.low)
        if not forms or t.tag in ("PROPN", "DET", "NUM", "PREP", "PRON", "POSS", "WH") or \
                t.low in _REQUEST_VERBS or not (forms & {"VBD", "VBP", "VBG", "VBN"} or
                                                t.low in _REACTION_VERBS | _words(
                                                    "work live have play study")):
            return None
        if "VBG" in forms and not forms & {"VBD", "VBP", "VBN"}:
            return None  # "Making macarons ... sounds fun": a gerund subject, not "I"
        cl.subj = []
        j = _verb_group(toks, 0, cl)
        if j is None:
            return None
    cl.parts = _parts(toks, j, cl)
    if front_toks:
        probe = Clause(subj=cl.subj, aux=[], verb=cl.verb)
        cl.front = _parts(front_toks, 0, probe)
        if front_toks[0].tag in ("SCONJ", "WH"):
            cl.front = [Part("clause", front_toks, prep=front_toks[0].low)]
    return cl


_REQUEST_VERBS = _words("tell give show write explain help recommend suggest describe translate "
                        "summarize summarise list make find send imagine pretend say repeat "
                        "answer ask calculate compute define please let thank thanks check "
                        "guess look see wait stop go come keep remember remind try")

# ============================================================================================
# Relative times to absolute dates
# ============================================================================================

_NUM_RE = (r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
           r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|"
           r"forty|fifty|sixty|a couple of|couple of|a couple|a few|few|several)")
_PREP_BEFORE = re.compile(
    r"\b(?:since|until|till|by|before|after|from|through|starting|as of|on|in|at|during|"
    r"around|for)\s+$", re.I)


def _fmt(d: date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _fmt_wd(d: date) -> str:
    return f"{_WEEKDAYS[d.weekday()]}, {_fmt(d)}"


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _count(word: str) -> int | None:
    w = word.lower().replace("a couple of", "2").replace("couple of", "2").replace(
        "a couple", "2")
    if w.isdigit():
        return int(w)
    if w in ("a", "an"):
        return 1
    return _NUMBER_WORDS.get(w)


def _season_of(d: date) -> tuple[int, int]:
    """(year, index) with spring 0 .. winter 3; a winter belongs to the year of its December."""
    m = d.month
    if m in (3, 4, 5):
        return d.year, 0
    if m in (6, 7, 8):
        return d.year, 1
    if m in (9, 10, 11):
        return d.year, 2
    return (d.year if m == 12 else d.year - 1), 3


_SEASON_INDEX = {"spring": 0, "summer": 1, "autumn": 2, "fall": 2, "winter": 3}


def _season_phrase(which: str, season: str, today: date) -> str:
    y, cur = _season_of(today)
    s = _SEASON_INDEX[season.lower()]
    now_ord = y * 4 + cur
    if which == "this":
        year = today.year if s != 3 else (today.year - 1 if today.month <= 2 else today.year)
        ordinal = year * 4 + s
    elif which in ("last", "past"):
        ordinal = now_ord - ((cur - s) % 4 or 4)
    else:  # next, coming
        ordinal = now_ord + ((s - cur) % 4 or 4)
    year = ordinal // 4
    name = season.lower()
    if s == 3:
        return f"in the winter of {year}-{(year + 1) % 100:02d}"
    return f"in the {name} of {year}"


def _unit_phrase(unit: str, n: int, today: date, sign: int, vague: bool) -> tuple[str, str]:
    unit = unit.lower().rstrip("s")
    if vague:
        word = "before" if sign < 0 else "after"
        return "", f"a few {unit}s {word} {_fmt(today)}"
    if unit == "day":
        return "on", _fmt(today + timedelta(days=sign * n))
    if unit == "week":
        d = today + timedelta(weeks=sign * n)
        return "in", f"the week of {_fmt(d - timedelta(days=d.weekday()))}"
    if unit == "month":
        d = _add_months(today, sign * n)
        return "in", f"{_MONTHS[d.month - 1]} {d.year}"
    if unit == "decade":
        return "in", f"{today.year + sign * 10 * n}"
    return "in", f"{today.year + sign * n}"


def _weekday(today: date, wd: int, which: str) -> date:
    """The weekday ``wd`` (0 = Monday) "last"/"past" (before today), "this" (this week) or
    "next" (the coming one, after today)."""
    if which in ("last", "past"):
        return today - timedelta(days=(today.weekday() - wd) % 7 or 7)
    if which == "this":
        return today + timedelta(days=wd - today.weekday())
    return today + timedelta(days=(wd - today.weekday()) % 7 or 7)


def _relative(m: re.Match, today: date) -> tuple[str, str]:
    """(preposition, absolute phrase) for one matched relative time expression."""
    g = m.group(0).lower()
    g = re.sub(r"'? time$", "", re.sub(r"\s+", " ", g))  # "in fourteen days' time"
    day_parts = ("morning", "afternoon", "evening", "night")
    if g.startswith("the day before yesterday"):
        return "on", _fmt(today - timedelta(days=2))
    if g.startswith("the day after"):
        return "on", _fmt(today + timedelta(days=2))
    words = g.split()
    if words[0] in ("yesterday", "yday"):
        d = today - timedelta(days=1)
        return ("on", f"the {words[1]} of {_fmt(d)}") if len(words) > 1 else ("on", _fmt(d))
    if words[0] in ("tomorrow", "tmrw", "tmr", "tomorow", "tommorow", "tommorrow"):
        d = today + timedelta(days=1)
        return ("on", f"the {words[1]} of {_fmt(d)}") if len(words) > 1 else ("on", _fmt(d))
    if g == "last night":
        return "on", f"the night of {_fmt(today - timedelta(days=1))}"
    if words[0] in ("tonight", "tonite", "2nite"):
        return "on", f"the night of {_fmt(today)}"
    if words[0] in ("earlier", "later"):
        return "", f"{words[0]} on {_fmt(today)}"
    if words[0] == "this" and words[-1] in day_parts:
        return "on", f"the {words[-1]} of {_fmt(today)}"
    if g == "today":
        return "on", _fmt(today)
    if words[-1] == "ago":
        n = _count(" ".join(words[:-2]))
        vague = n is None
        return _unit_phrase(words[-2], n or 0, today, -1, vague)
    if words[0] == "in" or words[-1] == "now":
        core = words[1:] if words[0] == "in" else words[:-2]
        n = _count(" ".join(core[:-1]))
        return _unit_phrase(core[-1], n or 0, today, 1, n is None)
    which = words[0] if words[0] not in ("this",) or len(words) == 2 else (
        "next" if words[1] == "coming" else "last")
    if words[0] == "this" and len(words) == 3:
        which = "next" if words[1] == "coming" else "last"
    if words[0] == "coming":
        which = "next"
    target = words[-1]
    if target in _WEEKDAY_LOW:
        return "on", _fmt_wd(_weekday(today, _WEEKDAY_LOW[target], which))
    if target in _MONTH_LOW:
        mo = _MONTH_LOW[target]
        if which in ("last", "past"):
            year = today.year if mo < today.month else today.year - 1
        elif which == "this":
            year = today.year
        else:
            year = today.year if mo > today.month else today.year + 1
        return "in", f"{_MONTHS[mo - 1]} {year}"
    if target in _SEASON_INDEX:
        phrase = _season_phrase(which, target, today)
        return "in", phrase[3:]
    step = {"last": -1, "past": -1, "this": 0, "next": 1, "coming": 1}.get(which, 0)
    if target == "week":
        d = today + timedelta(weeks=step)
        return "in", f"the week of {_fmt(d - timedelta(days=d.weekday()))}"
    if target == "weekend":
        sat = today + timedelta(days=5 - today.weekday())
        if today.weekday() == 6:
            sat = today - timedelta(days=1)
        if step < 0:
            sat = sat - timedelta(weeks=1) if today.weekday() < 5 or today.weekday() == 6 \
                else sat - timedelta(weeks=1)
        elif step > 0:
            sat = sat + timedelta(weeks=1) if today.weekday() >= 5 else sat + timedelta(weeks=1)
        return "on", f"the weekend of {_fmt(sat)}"
    if target == "month":
        d = _add_months(today, step)
        return "in", f"{_MONTHS[d.month - 1]} {d.year}"
    if target == "year":
        return "in", str(today.year + step)
    return "", m.group(0)


_MONTH_NAMES_RE = "|".join(sorted((m.lower() for m in _MONTHS), key=len, reverse=True))
_WEEKDAY_RE = "|".join(d.lower() for d in _WEEKDAYS)
_RELATIVE_RE = re.compile(
    r"\b(?:the day before yesterday|the day after (?:tomorrow|tmrw|tmr)|"
    r"(?:yesterday|yday|tomorrow|tmrw|tmr|tomorow|tommorow|tommorrow)"
    r"(?:\s+(?:morning|afternoon|evening|night))?|"
    r"last night|tonight|tonite|2nite|(?:earlier|later) today|"
    r"this (?:morning|afternoon|evening)|today|"
    rf"(?:last|this|next|this coming|this past|coming|past) (?:{_WEEKDAY_RE})|"
    r"(?:this past|this coming|last|this|next|past|coming) (?:week|weekend|month|year|spring|"
    r"summer|autumn|fall|"
    r"winter)|"
    rf"(?:last|this|next) (?:{_MONTH_NAMES_RE})|"
    rf"{_NUM_RE} (?:day|week|month|year|decade)s? ago|"
    rf"in {_NUM_RE} (?:day|week|month|year|decade)s?(?:'? time\b)?|"
    rf"{_NUM_RE} (?:day|week|month|year)s? from now)\b",
    re.I,
)


# ("have" alone is not counting: "I have an appointment in fourteen days' time" is a date)
_COUNTING = re.compile(r"\b(?:first|last|only|best|worst|longest|once|twice|times|"
                       r"haven't|hasn't|hadn't|'ve|been|ever|never|not)\b", re.I)
_COUNTED_FROM_NOW = re.compile(
    r"\b(a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,2})\s+"
    r"(day|week|month)s?\s+from\s+(?:today|now)\b", re.I)
_MONTH_DAY = re.compile(
    r"\b(next|this) month,?\s+on the (\d{1,2})(?:st|nd|rd|th)\b", re.I)


def resolve_times(sentence: str, when: datetime | date | None) -> str:
    """Replace relative time expressions with absolute dates as of ``when``.

    "I adopted a cat yesterday" said on 2024-01-05 -> "I adopted a cat on January 4, 2024".
    Without ``when`` the sentence is returned unchanged.
    """
    if when is None:
        return sentence
    today = when.date() if isinstance(when, datetime) else when

    def repl(m: re.Match) -> str:
        # "our first holiday in two years", "I haven't seen her in years" count time: no date
        if m.group(0).lower().startswith("in ") and _COUNTING.search(sentence[:m.start()]):
            return m.group(0)
        if re.search(r"\b(?:the|my|our|their)\s+$", sentence[:m.start()], re.I):
            return m.group(0)  # "the last year of a PhD" is not a date
        prep, phrase = _relative(m, today)
        if not prep or _PREP_BEFORE.search(sentence[:m.start()]):
            return phrase
        return f"{prep} {phrase}"

    def counted(m: re.Match) -> str:  # "two weeks from today" is one exact day
        n = _count(m.group(1).lower())
        if n is None:
            return m.group(0)
        unit = m.group(2).lower()
        day = (_add_months(today, n) if unit == "month" else
               today + timedelta(days=n * (7 if unit == "week" else 1)))
        return f"on {_fmt(day)}"

    def month_day(m: re.Match) -> str:  # "next month, on the 19th"
        month = _add_months(today.replace(day=1), 1 if m.group(1).lower() == "next" else 0)
        try:
            return f"on {_fmt(month.replace(day=int(m.group(2))))}"
        except ValueError:
            return m.group(0)

    out = _time_subject(sentence, today) or sentence
    out = _COUNTED_FROM_NOW.sub(counted, out)
    out = _MONTH_DAY.sub(month_day, out)
    out = _RELATIVE_RE.sub(repl, out)
    out = _bare_weekdays(out, today)
    return re.sub(r"\s{2,}", " ", out)


# a weekday named alone ("on Tuesday", "by Friday", "truck inspection friday"); one already
# dated ("Friday, June 9, 2023"), a routine ("Fridays", "every Friday") or "a Friday" is left
_BARE_WEEKDAY = re.compile(
    rf"\b(?:(?P<prep>on|by|until|till|before|after|from|for|since|this|last|next) )?"
    rf"(?P<day>{_WEEKDAY_RE})(?: (?P<part>morning|afternoon|evening|night))?\b"
    rf"(?!s\b|,? (?:{_MONTH_NAMES_RE}|\d)|"
    rf"\s*(?:to|through|till|until|-|–|and|or)\s*(?:{_WEEKDAY_RE}))", re.I)
# ... nor one of a range or a routine ("Monday to Friday", "every Friday")
_NOT_BARE = re.compile(rf"\b(?:every|each|a|on a|the|most|some|any|other|except|but|besides|"
                       rf"(?:{_WEEKDAY_RE})\s*(?:to|through|till|until|-|–|and|or))\s*$", re.I)
# the verb nearest the weekday says which one: the past one ("I saw her on Monday") or the
# coming one ("I have a dentist appointment on Tuesday", "it has to be done by Tuesday")
_FUTURE_MARK = re.compile(
    r"\b(?:will|shall|gonna|going to|have to|has to|need to|needs to|want to|hope|plan|"
    r"planning|can't wait|is|are|am|be|'m|'re|'s|'ll|have|has|do|does|get|getting|leave|"
    r"leaving|start|starting|come|coming)\b", re.I)
# a participle after "be" or "get" is no past ("we're getting married on Saturday")
_PASSIVE = re.compile(r"\b(?:is|are|am|'m|'re|be|being|getting|get)\s+\S*$", re.I)
_PAST_MARK = re.compile(
    r"\b(?:was|were|did|had|'d|went|got|came|saw|met|left|told|said|bought|took|made|found|"
    r"gave|ran|sent|ate|drove|flew|spent|wrote|heard|felt|fell|won|lost|began|broke|slept|"
    r"kept|woke|stood|sat|paid|brought|thought|caught|taught|sold|held|wore|swam|sang|drank|"
    r"rode|became|forgot|chose|"
    r"(?!(?:speed|indeed|exceed|proceed|succeed|breed|bleed)\b)\w{3,}ed)\b", re.I)


def _bare_weekdays(sentence: str, today: date) -> str:
    def repl(m: re.Match) -> str:
        before = sentence[: m.start()]
        if _NOT_BARE.search(before) or (m["prep"] or "").lower() in ("this", "last", "next"):
            return m.group(0)
        if not m["prep"] and re.search(r"\b(?:a|an|the|that|one)\s+\w+\s+$", before, re.I):
            return m.group(0)  # "on a snowy Monday", "have a lovely Sunday": no particular one
        prep = m["prep"] or ""
        wd = _WEEKDAY_LOW[m["day"].lower()]
        if prep.lower() in ("by", "until", "till", "before", "for"):
            past = False  # a deadline or a booking is ahead
        else:
            clause = re.split(r"[,.;!?—–]", before)[-1]
            after = re.split(r"[,.;!?—–]", sentence[m.end():])[0]
            marks = [(mm.end(), mm) for mm in _FUTURE_MARK.finditer(clause)] + [
                (mm.end(), mm) for mm in _PAST_MARK.finditer(clause)
                if not _PASSIVE.search(clause[: mm.end()])]
            if marks:
                nearest = max(marks, key=lambda x: x[0])[1]
            else:
                found = [mm for mm in (_FUTURE_MARK.search(after), _PAST_MARK.search(after))
                         if mm]
                nearest = min(found, key=lambda x: x.start()) if found else None
            past = nearest is not None and nearest.re is _PAST_MARK
        d = _weekday(today, wd, "last" if past else "next")
        when = _fmt_wd(d) if not m["part"] else f"the {m['part'].lower()} of {_fmt_wd(d)}"
        # no preposition is added: "had Wednesday off", "truck inspection Friday, ..."
        return f"{m['prep']} {when}" if m["prep"] else when

    return _BARE_WEEKDAY.sub(repl, sentence)


_SUBJECT_TIME = re.compile(r"\s*(?P<verb>is|was|will be|'s)\s+(?P<what>[^,;.!?]+)(?P<tail>.*)$",
                           re.I)
_DETERMINERS = _words("my our the a an his her their")


def _time_subject(sentence: str, today: date) -> str | None:
    """A time as the subject ("Tomorrow is my birthday", "Tonight is pottery, 7pm") put after
    what happens then ("My birthday is on June 11, 2025"), so "When is my birthday?" can be
    asked; None when the sentence does not start that way or says how the time was
    ("Yesterday was awful")."""
    m = _RELATIVE_RE.match(sentence.strip())
    rest = _SUBJECT_TIME.match(sentence.strip()[m.end():]) if m else None
    if rest is None:
        return None
    what = rest["what"].strip()
    first = what.split()[0].lower()
    if first not in _DETERMINERS and ("ADJ" in _lemmas(first) or first in _EMOTIONS):
        return None
    prep, phrase = _relative(m, today)
    verb = "is" if rest["verb"] == "'s" else rest["verb"].lower()
    return f"{what[:1].upper()}{what[1:]} {verb} {prep or 'on'} {phrase}{rest['tail']}"


# ============================================================================================
# First person -> second person
# ============================================================================================

_FLIP = {
    "i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "we": "you",
    "us": "you", "our": "your", "ours": "yours", "ourselves": "yourselves", "i'm": "you're",
    "im": "you're", "i've": "you've", "ive": "you've", "i'll": "you'll", "i'd": "you'd",
    "we're": "you're", "we've": "you've", "we'll": "you'll", "we'd": "you'd",
}
_SWAP = {  # the user's "you" is the bot
    "your": "my", "yours": "mine", "yourself": "myself", "you're": "I'm", "you've": "I've",
    "you'll": "I'll", "you'd": "I'd", "ur": "my",
}
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.U)


def _flip(text: str) -> str:
    out: list[str] = []
    pos = 0
    words = list(_WORD.finditer(text))
    subj_i = subj_you = False  # the last subject was the user's "I" / the bot's "you"
    for idx, m in enumerate(words):
        w = m.group()
        low = w.lower()
        rep = None
        prev = words[idx - 1].group().lower() if idx else ""
        if low in _FLIP:
            rep = _FLIP[low]
            subj_i = low in ("i", "we")
            subj_you = False
        elif low in _SWAP:
            rep = _SWAP[low]
            subj_i = subj_you = False
        elif low == "you" or w == "u":
            obj = prev in _PREP or (prev and _word_can_be_verb(prev) and prev not in _SCONJ
                                    and prev not in _CONJ and prev not in _MODAL
                                    and prev not in _BE and prev not in _DO)
            rep = "me" if obj else "I"
            subj_you = not obj
            subj_i = False
        elif subj_i and low in ("am", "was", "wasn't"):
            rep = {"am": "are", "was": "were", "wasn't": "weren't"}[low]
            subj_i = False
        elif subj_you and low in ("are", "were", "aren't", "weren't"):
            rep = {"are": "am", "were": "was", "aren't": "am not", "weren't": "wasn't"}[low]
            subj_you = False
        elif low in _ADV or low in ("not", "never", "n't"):
            pass
        else:
            subj_i = subj_you = False
        out.append(text[pos:m.start()])
        if rep is None:
            out.append(w)
        else:
            if w[0].isupper() and (idx == 0 or rep in ("I", "I'm", "I've", "I'll", "I'd")) \
                    or w.isupper() and len(w) > 1 and idx == 0:
                rep = rep[0].upper() + rep[1:]
            elif rep.startswith("I") and rep[:2] in ("I", "I'"):
                pass
            out.append(rep)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def to_second_person(sentence: str) -> str:
    """Restate a user's sentence as the bot would say it back: "I'm from Leeds" -> "You're from
    Leeds."; the user's "you" (the bot) becomes I/me. Names, numbers and other words are kept."""
    s = clean_text(sentence).strip()
    s = _flip(s)
    s = s.strip(" ,;:-")
    s = re.sub(r"[!.]+$", "", s).rstrip()
    if not s:
        return s
    s = s[0].upper() + s[1:]
    if not s.endswith("?"):
        s += "."
    return s

# ============================================================================================
# Is this sentence a disclosure?
# ============================================================================================


def strip_discourse(sentence: str) -> str:
    """Drop leading discourse markers ("so", "btw", "fun fact:") and trailing "lol"/"tbh"."""
    s = clean_text(sentence).strip()
    # a short label before a colon ("Big news:", "Update:", "Random thought:") is not content
    s = re.sub(r"^(?:[^\W\d_]+\s+){0,2}[^\W\d_]+\s*:\s+(?=[^\W_])", "", s)
    for _ in range(4):
        m = _DISCOURSE.match(s)
        if not m or m.end() == 0:
            break
        rest = s[m.end():]
        # keep "no" / "yes" / "well" when they are the sentence's own words ("well paid")
        if not rest or not re.match(r"[^\W_]", rest):
            break
        s = rest
    s = _TRAILING.sub("", s)
    return _strip_piece(s)


def _content_words(toks: list[Tok]) -> list[Tok]:
    return [t for t in toks if t.tag in ("NOUN", "PROPN", "NUM", "ADJ", "VERB") and
            t.low not in _META and t.low not in _REQUEST_VERBS | {"like", "think", "know"}]


def _has_named_person(toks: list[Tok]) -> bool:
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if t.tag == "PROPN" and t.low not in _MONTH_LOW and t.low not in _WEEKDAY_LOW:
            if nxt is not None and nxt.tag == "POSS_S":
                return True
            if i == 0 or toks[i - 1].tag in ("NOUN", "POSS_S", "PROPN"):
                return True
        if i == 0 and t.tag == "NOUN" and not _lemmas(t.low) and nxt is not None and (
                nxt.tag == "POSS_S" or _finite_verb(nxt, False)):
            return True  # lowercase name in chat: "andre lives in rotterdam"
    return False


_PERSON_PREDICATES = _words(
    "live lives lived work works worked grow grew born raised study studies studied play plays "
    "played love loves loved like likes hate hates have has had moved move speak speaks teach "
    "teaches taught run runs ran own owns married marry got get gets went go goes visit "
    "visited visits called named turned turns started starts collects collected makes "
    "made wrote writes sings sang drives drove")


_ATTITUDE = _words(
    "glad happy sorry excited thrilled delighted pleased proud impressed curious interested sure "
    "certain hope hoping think thought bet guess imagine understand appreciate wish agree know "
    "believe love like feel wonder wondering can could would 'd 'm am was really so very totally "
    "just also definitely absolutely to hear see that")


def _only_attitude(words: list[Tok]) -> bool:
    """Is every first-person word the holder of an attitude toward the listener ("I'm glad
    you liked it", "I hope you feel better", "I'd love to hear about your trip")?"""
    firsts = [i for i, t in enumerate(words) if t.low in _FIRST_PERSON or t.low in ("'m",
                                                                                    "'ve")]
    if not firsts:
        return False
    for i in firsts:
        t = words[i]
        if t.low in ("my", "our", "mine", "ours", "me", "us", "myself", "ourselves", "'ve"):
            return False
        if t.low in ("'m",):
            continue
        nxt = [w.low for w in words[i + 1:i + 5]]
        if not nxt or nxt[0] not in _ATTITUDE:
            return False
    return True


def judge_disclosure(sentence: str) -> tuple[bool, str]:
    """(is it a disclosure, why): keeps statements about the user, their people and things."""
    s = strip_discourse(sentence)
    if not s or not re.search(r"[^\W\d_]", s):
        return False, "empty"
    low = s.lower().strip()
    if _SMALLTALK.match(low):
        return False, "small talk"
    if low.endswith("?") or _QUESTION_START.match(low):
        return False, "question"
    if _REQUEST.match(low):
        return False, "request"
    toks = _tokenize(s)
    words = [t for t in toks if t.tag != "PUNCT"]
    if not words:
        return False, "empty"
    lows = {t.low for t in words}
    content = _content_words(words)
    first = bool(lows & _FIRST_PERSON) or any(t.low in ("'m", "'ve") for t in words)
    about_bot = bool(lows & {"you", "your", "yours", "yourself", "u", "ur"})
    cl = _parse_clause(toks)
    if first or cl is not None and not cl.subj:
        if not content:
            return False, "no content"
        if all(t.low in _REACTION_VERBS or t.low in _EMOTIONS for t in content) and (
                lows & {"it", "that", "this", "those", "these", "you"}
                or len(content) == 1 and about_bot):
            return False, "reaction"
        nouns = [t for t in content if t.tag in ("NOUN", "PROPN", "NUM")]
        if about_bot and not nouns:
            return False, "about the conversation"
        if cl is not None and cl.subj and cl.subj[0].low in ("you", "u") and not (
                lows & {"my", "our", "mine"}):
            return False, "about the assistant"
        if about_bot and _only_attitude(words):
            return False, "about the conversation"
        m = re.match(r"^i (?:think|guess|believe|feel like|suppose|bet|hope|agree|doubt|"
                     r"wonder|imagine|reckon)(?: that)? (.*)$", low)
        if m and not (set(m.group(1).split()) & _FIRST_PERSON):
            return False, "opinion about the conversation"
        if cl is None and not nouns:
            return False, "no statement"
        return True, "first person" if first else "first person (subject dropped)"
    nouns = [t for t in content if t.tag in ("NOUN", "PROPN", "NUM")]
    if cl is None:
        # a fragment that names someone or something with a number still tells something
        # ("Auntie Rosalind, who runs a campsite near Aberystwyth.")
        if len(content) >= 3 and any(t.tag in ("PROPN", "NUM") for t in content):
            return True, "fragment with a name"
        return False, "no statement"
    subj_low = [t.low for t in cl.subj]
    if subj_low and subj_low[0] in ("he", "she", "his", "her") and content:
        return True, "third person (pronoun)"
    if cl.subj and _has_named_person(cl.subj + cl.parts[0].toks[:1] if cl.parts else cl.subj) \
            and content:
        verb = cl.verb.low if cl.verb is not None else (cl.aux[0].low if cl.aux else "")
        rel = any(t.low in _PERSON_NOUNS or t.low in _CATEGORY and "job" in _CATEGORY[t.low]
                  for t in toks)
        num = cl.copula and any(t.tag == "NUM" for p in cl.parts for t in p.toks)
        if any(t.tag == "POSS_S" for t in cl.subj) or rel or num or verb in _PERSON_PREDICATES or (
                cl.verb is not None and cl.verb.lemma in _PERSON_PREDICATES):
            return True, "named person"
    # In a user's own messages a declarative sentence about a thing, a place or an event is
    # usually about their world ("Tonight is pottery, same as every Tuesday", "The current
    # one is Marzipan"); a comment on "it"/"that" with nothing named is a reaction.
    vague = subj_low and subj_low[0] in ("it", "that", "this", "those", "these", "there", "they")
    if vague and not any(t.tag in ("PROPN", "NUM") for t in content) and len(nouns) < 2:
        return False, "comment"
    said = [t for p in cl.parts for t in p.toks if t.tag in ("NOUN", "PROPN", "NUM")]
    if cl.copula and not said and not any(t.tag in ("PROPN", "NUM") for t in cl.subj):
        return False, "comment"  # "the weather is nice today": a remark, no fact
    if nouns:
        return True, "statement about their world"
    return False, "not about the user or a named person"


def is_disclosure(sentence: str) -> bool:
    """True when the sentence tells something about the user or a person/thing they name."""
    return judge_disclosure(sentence)[0]

# ============================================================================================
# Statements
# ============================================================================================

SPAN_TYPES = ("name", "number", "date", "duration", "frequency", "place", "person",
              "noun_phrase", "verb_object", "activity", "attribute", "reason")


@dataclass
class Span:
    """An answerable part of a statement, as it reads in ``Statement.restated``."""

    text: str
    type: str


@dataclass
class Statement:
    """One disclosed fact, kept as a sentence.

    ``text`` is the sentence as the user wrote it; ``first_person`` the same sentence cleaned
    (discourse markers dropped, pronouns carried over from the previous sentence resolved,
    relative times made absolute), from which questions are built; ``restated`` is it in the
    second person, the answer of every training pair. ``subject`` is ``USER`` or the name of
    the person the statement is about. ``supersedes`` holds indexes (into the list returned by
    ``statements_from_turns``) of earlier statements it corrects; those get ``superseded_by``.
    """

    text: str
    restated: str
    source_exchange_ids: list[int] = field(default_factory=list)
    subject: str = USER
    topics: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    first_person: str = ""
    when: datetime | None = None
    supersedes: list[int] = field(default_factory=list)
    superseded_by: int | None = None
    reason: str = ""


_LIGHT_OBJECTS = _words(
    "party lunch dinner breakfast brunch fun time question idea meeting exam test appointment "
    "cold headache fever day night week chat talk look break shower bath nap drink problem "
    "chance feeling dream rest go try laugh walk swim")
_HAVE_VERBS = _words("have has had got get gets own owns owned adopt adopted adopting rescue "
                     "rescued buy bought bought foster fostered inherited keep kept raise "
                     "raised")
_GENDER = {
    "sister": "f", "wife": "f", "mother": "f", "mom": "f", "mum": "f", "daughter": "f",
    "girlfriend": "f", "aunt": "f", "niece": "f", "grandmother": "f", "grandma": "f",
    "granny": "f", "fiancee": "f", "stepmother": "f", "stepdaughter": "f", "gf": "f",
    "gran": "f", "nan": "f", "nana": "f", "auntie": "f", "aunty": "f", "mam": "f",
    "grandad": "m", "granddad": "m", "papa": "m",
    "brother": "m", "husband": "m", "father": "m", "dad": "m", "son": "m", "boyfriend": "m",
    "uncle": "m", "nephew": "m", "grandfather": "m", "grandpa": "m", "fiance": "m",
    "stepfather": "m", "stepson": "m", "bf": "m", "hubby": "m",
}


@dataclass
class _Referent:
    phrase: str  # first-person noun phrase: "my dog", "Andre", "my sister"
    kind: str  # person, pet, thing
    gender: str | None
    name: str = ""
    at: int = 0  # the statement that introduced it
    turn: int | None = None  # a mention outside any statement: only near its own message


def _subj_text(toks: list[Tok]) -> str:
    if not toks:
        return "I"
    words = list(toks)
    text = _join(words)
    if words[0].tag not in ("PROPN",) and words[0].low != "i" and text[:1].isupper():
        text = text[0].lower() + text[1:]
    return text


def _referents(cl: Clause, subject_name: str) -> list[_Referent]:
    """Things a following "he/she/it/his/its" can point to, most recent last."""
    refs: list[_Referent] = []
    owner = "my" if not cl.subj or cl.subj[0].low in ("i", "we") else None
    if cl.subj and cl.subj[0].low not in ("i", "we", "he", "she", "it", "they", "there",
                                          "this", "that", "you"):
        names = [t for t in cl.subj if t.tag == "PROPN"]
        heads = [t for t in cl.subj if t.tag == "NOUN"]
        if len(heads) >= 2 and not _lemmas(heads[-1].low) and (
                heads[-2].low in _PERSON_NOUNS or "pet" in _CATEGORY.get(heads[-2].low, [])):
            # lowercase chat: "my little brother ollie" is a brother named ollie
            names, heads = names + heads[-1:], heads[:-1]
        if not any(t.tag == "POSS_S" for t in cl.subj) or not names:
            head = heads[-1].low if heads else ""
            kind = "pet" if "pet" in _CATEGORY.get(head, []) else (
                "person" if head in _PERSON_NOUNS or names else "thing")
            name = " ".join(t.text for t in names)
            phrase = name if names and kind == "person" and not heads else _subj_text(cl.subj)
            refs.append(_Referent(phrase, kind, _GENDER.get(head), name))
    nested = [q for part in cl.parts if part.sub for q in part.sub.parts]
    for p in cl.parts + nested:
        if p.kind != "np" or p.head is None or p.head.tag == "PRON":
            continue
        verb = cl.verb.lemma if cl.verb is not None else ""
        head = p.head.low
        cats = _CATEGORY.get(head, [])
        kind = "pet" if "pet" in cats else ("person" if head in _PERSON_NOUNS else "thing")
        name = " ".join(t.text for t in p.name)
        det = p.toks[0].low
        if owner and (verb in _HAVE_VERBS or cl.verb is not None and cl.verb.low in _HAVE_VERBS
                      ) and det in ("a", "an", "new", "my", "two", "one") and (
                head not in _LIGHT_OBJECTS and (cats or p.name or kind != "thing"
                                                or verb not in ("have", "get"))):
            phrase = f"my {p.head.text}"
        elif det in ("my", "our"):
            end = p.toks.index(p.head) + 1
            phrase = _join(p.toks[:end])
        else:
            continue
        refs.append(_Referent(phrase, kind, _GENDER.get(head), name))
    return refs


_NOT_A_NAME = "|".join(_WEEKDAYS)  # "I called her Monday" was a phone call
_NAMED_IT = re.compile(
    rf"\b(named|called|call)\s+(him|her|it)\s+(?!(?:{_NOT_A_NAME})\b)([A-Z][\w'-]*)")
_NAMED_OWN = re.compile(r"\b(?:named|called)\s+(my|our)\s+([a-z-]+)\s+[A-Z]")
_OWN_THING = re.compile(r"\b(?:my|our)\s+([a-z-]+)\b")


def _own_things(text: str) -> list[str]:
    """"my car", "our boat": the user's things (not people) a sentence names, in order."""
    return [m.group(0).lower() for m in _OWN_THING.finditer(text)
            if m.group(1).lower() not in _PERSON_NOUNS | _DET | _PREP]


def _person_after(before: str, thing: str, prev: str) -> bool:
    """Whether a person is mentioned after ``thing`` in ``before`` (or anywhere in it and the
    sentence before, with no thing): "her" in "I named her Maya" is then likely that person."""
    low = before.lower()
    tail = low[low.rfind(thing) + len(thing):] if thing else f"{low} {prev.lower()}"
    return any(w in _PERSON_NOUNS for w in re.findall(r"[a-z]+", tail))


def _named_it(first_person: str, prev: str = "") -> tuple[re.Match | None, str, bool]:
    """For "... I named her Mustard": the match, the user's last thing before it in the
    sentence ("my car", or ""), and whether a person mentioned after that thing (or in the
    sentence and ``prev`` when there is none) makes "her" more likely the person."""
    m = _NAMED_IT.search(first_person)
    if m is None:
        return None, "", False
    before = first_person[:m.start()]
    own = _own_things(before)
    thing = own[-1] if own else ""
    return m, thing, _person_after(before, thing, prev)


def _own_the_named(first_person: str, refs: list[_Referent], prev: str,
                   at: int, turn: int) -> tuple[str, _Referent | None]:
    """"I named her Mustard" after "I have to tell you about my car": the sentence says whose
    name it is ("I named my car Mustard"), and the car is a referent with a name and the
    pronoun its owner uses for it ("She makes a noise like a kettle")."""
    m, own, person = _named_it(first_person, prev)
    if m is None or person:
        return first_person, None  # person: "my sister had a baby girl and I named her Maya"
    gender = {"him": "m", "her": "f"}.get(m.group(2).lower())
    if own:  # "my car ... and I named her Mustard": the sentence says it already
        phrase = own
    else:
        ref = next((r for r in reversed(refs) if r.kind != "person" and not r.name
                    and r.at >= at - 1 and r.phrase.startswith(("my ", "our "))), None)
        phrase = ref.phrase.lower() if ref is not None else next(
            iter(_own_things(prev)[-1:]), "")
        if not phrase:
            return first_person, None
        first_person = (f"{first_person[:m.start()]}{m.group(1)} {phrase} {m.group(3)}"
                        f"{first_person[m.end():]}")
    head = phrase.split()[-1]
    kind = "pet" if "pet" in _CATEGORY.get(head, []) else "thing"
    # "he" / "she" for it only near where it was named: a long chat has other "he"s
    return first_person, _Referent(phrase, kind, gender, m.group(3), at, turn)


def _named_referent(first_person: str, at: int, turn: int) -> _Referent | None:
    """The last pet or thing of the user's a sentence names ("a grey cat named Pimbrook"):
    the owner calls it "he" or "she", so it is what a following "he" or "she" may mean. A
    name beside its noun ("my cat Lord Fenwick") is how a pet already named is mentioned again,
    so it leaves the pet's he or she as it was."""
    for noun, name in reversed(named_things(first_person, apposed=False)):
        if noun in _PERSON_NOUNS:
            continue
        kind = "pet" if "pet" in _CATEGORY.get(noun, []) else "thing"
        return _Referent(f"my {noun}", kind, None, name, at, turn)
    return None


_TITLED = re.compile(r"\b(Auntie|Aunty|Aunt|Uncle|Grandma|Grandpa|Granny|Nana|Mr|Mrs|Ms|Miss)"
                     r"\.?\s+([A-Z][a-z]+)")
_TITLE_GENDER = {"uncle": "m", "grandpa": "m", "mr": "m"}


def _mentions(text: str, at: int, turn: int | None = None) -> list[_Referent]:
    """People a sentence mentions, found by their words alone ("my best mate Lorcan", "my
    mum", "Auntie Rosalind"), for a sentence the clause analysis did not take apart."""
    found: list[tuple[int, _Referent]] = []
    words = [(m.start(), m.group()) for m in re.finditer(r"[\w'-]+|,", text)]
    for i, (pos, w) in enumerate(words):
        if w.lower() not in ("my", "our"):
            continue
        for k in range(1, 4):  # "my mum", "my best mate", "my little brother"
            if i + k >= len(words) or words[i + k][1] == ",":
                break
            head = words[i + k][1].lower()
            if head.endswith("'s"):
                break  # "my sister's husband": the husband is not "my sister"
            if head in _PERSON_NOUNS and not (head.endswith("s") and head[:-1] in _PERSON_NOUNS):
                rest = [x for _, x in words[i + k + 1:i + k + 4]]
                rest = rest[1:] if rest[:1] == [","] else rest
                name = " ".join(x for x in rest[:2] if x[:1].isupper() and x != "I")
                name = name if rest[:1] and rest[0][:1].isupper() else ""
                phrase = " ".join(x for _, x in words[i:i + k + 1])
                found.append((pos, _Referent("my " + phrase.split(" ", 1)[1], "person",
                                             _GENDER.get(head), name, at, turn)))
                break
    for m in _MET.finditer(text):  # "I ran into Ysolde Brackwater": "she" may be her next
        if m.group(1).split()[0] not in _WEEKDAYS:
            found.append((m.start(1), _Referent(m.group(1), "person", None, m.group(1), at,
                                                turn)))
    for m in _TITLED.finditer(text):
        title = m.group(1).lower()
        phrase = f"{m.group(1)} {m.group(2)}"
        found.append((m.start(), _Referent(phrase, "person", _TITLE_GENDER.get(title, "f"),
                                           m.group(2), at, turn)))
    return [r for _, r in sorted(found, key=lambda x: x[0])]


_MET = re.compile(r"\b(?:met|meet|meeting|ran into|run into|bumped into|saw|visited|texted|"
                  r"messaged|invited|married|dating|date|helped|hugged|introduced me to)\s+"
                  r"([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")
_THE_ONE = re.compile(r"^(?:the|my|our) (current|new|old|other|latest|previous|first|second) "
                      r"one\b(.*)$", re.I)


def _resolve_pronouns(s: str, refs: list[_Referent], recent: int = 0
                      ) -> tuple[str, _Referent | None]:
    """Replace a leading he/she/it/his/her/its with the matching earlier referent, and "the
    new one" with the last pet or thing of the user's ("my rabbit" -> "my new rabbit").
    "It" goes to a pet only when the pet came up in a statement numbered ``recent`` or later:
    in a long chat "It was a green salad" is seldom about the cat of twenty messages ago."""
    one = _THE_ONE.match(s)
    if one and refs:
        for ref in reversed(refs):
            if ref.kind != "person" and ref.phrase.startswith(("my ", "our ")) and \
                    ref.phrase.split()[-1].lower() not in ("one", "ones"):
                owner, noun = ref.phrase.split(" ", 1)
                return f"{owner.capitalize()} {one.group(1).lower()} {noun}{one.group(2)}", ref
    m = re.match(r"^(he|she|it|his|her|its|he's|she's|it's|hes|shes)\b(?!')\s*(.*)$", s, re.I)
    if not m or not refs:
        return s, None
    pron, rest = m.group(1).lower(), m.group(2)
    # "her" starts with "he": she/her first
    gender = "f" if pron.startswith(("she", "her")) else "m" if pron.startswith(
        ("he", "his")) else None
    for ref in reversed(refs):
        if gender and ref.kind == "thing" and not ref.name:
            continue  # a named thing is "he" or "she" to its owner: a car, a plant, a boat
        if gender and ref.gender and ref.gender != gender:
            continue
        if not gender and ref.kind == "person":
            continue
        if not gender and ref.kind == "pet" and ref.at < recent:
            continue
        if pron in ("it", "it's") and ref.kind != "pet" and not re.match(
                r"(?:'s |is |was )?(?:called|named|a |an |\w+ years old|\d)", rest, re.I):
            return s, None
        if gender and ref.gender is None:
            ref.gender = gender  # "He is enormous": the cat is "he" from now on, not "she"
        phrase = ref.name if ref.kind == "person" and ref.name and not ref.phrase.startswith(
            ("my ", "our ")) else ref.phrase
        if ref.name and ref.phrase.startswith(("my ", "our ")) and ref.kind == "pet" and \
                not ref.phrase.endswith(ref.name):  # not "my puppy Steve Steve"
            phrase = f"{ref.phrase} {ref.name}"
        if pron in ("his", "her", "its"):
            if pron == "her" and not re.match(r"[^\W\d_]", rest):
                return s, None
            poss = phrase + ("'" if phrase.endswith("s") and not ref.name else "'s")
            return f"{poss} {rest}", ref
        if pron.endswith(("'s", "s")) and pron not in ("his", "its"):
            first = rest.split()[0].lower() if rest.split() else ""
            # "she's shaved her head" has shaved it: a participle with an object after it
            done = first in ("been", "got") or "VBN" in _verb_forms(first) and len(
                rest.split()) > 1 and rest.split()[1].lower() in _POSS | _words("a an the")
            return f"{phrase} is {rest}" if not done else (
                f"{phrase} has {rest}"), ref
        return f"{phrase} {rest}", ref
    return s, None


def _canonical(sentence: str) -> str:
    """Chat spelling fixes that the restatement and the questions share."""
    def fix(m: re.Match) -> str:
        w = m.group()
        low = w.lower()
        if low == "i":
            return "I"
        if low in ("im", "ive"):
            return {"im": "I'm", "ive": "I've"}[low]
        rep = _CHAT_FIX.get(low)
        if rep and "'" in rep and low not in ("ur", "u"):
            return rep
        if low in ("gonna", "wanna"):
            return rep or w
        return w
    s = re.sub(r"\b[^\W\d_]+\b", fix, sentence)
    s = s.strip().rstrip(".!,;: ")
    return s[:1].upper() + s[1:] if s else s


def _subject_of(cl: Clause | None, names: dict[str, str]) -> str:
    if cl is None or not cl.subj or cl.subj[0].low in ("i", "we", "me"):
        return USER
    propn = [t.text for t in cl.subj if t.tag == "PROPN"]
    if propn:
        if any(t.tag == "POSS_S" for t in cl.subj):
            i = next(k for k, t in enumerate(cl.subj) if t.tag == "POSS_S")
            owner = [t.text for t in cl.subj[:i] if t.tag == "PROPN"]
            return " ".join(owner) if owner else USER
        return " ".join(propn)
    if cl.subj[0].tag == "NOUN" and not _lemmas(cl.subj[0].low) and cl.subj[0].low not in (
            _PERSON_NOUNS):
        return cl.subj[0].text  # lowercase name in chat
    heads = [t.low for t in cl.subj if t.tag == "NOUN"]
    if heads and heads[0] in names and cl.subj[0].low in ("my", "our"):
        return names[heads[0]]
    return USER


def _names_in(cl: Clause) -> dict[str, str]:
    """relation -> name from "my sister Mia", "my sister is called Mia", "my sister's name is"."""
    out: dict[str, str] = {}
    subj = cl.subj
    heads = [t for t in subj if t.tag == "NOUN" and t.low in _PERSON_NOUNS]
    propn = [t.text for t in subj if t.tag == "PROPN"]
    if heads and propn and subj and subj[0].low in ("my", "our") and not any(
            t.tag == "POSS_S" for t in subj):
        out[heads[0].low] = " ".join(propn)
    if heads and cl.copula or heads and cl.verb is not None and cl.verb.low in ("called",
                                                                                 "named"):
        for p in cl.parts:
            if p.kind == "np" and p.head is not None and p.head.tag == "PROPN":
                out[heads[0].low] = " ".join(t.text for t in p.toks if t.tag == "PROPN")
                break
    for p in cl.parts:
        if p.kind == "np" and p.name and p.head is not None and p.head.low in _PERSON_NOUNS:
            out[p.head.low] = " ".join(t.text for t in p.name)
    return out


def _analyse(first_person: str) -> Clause | None:
    return _parse_clause(_tokenize(first_person))


def _part_text(p: Part) -> str:
    return _join(p.toks)


def _topics_and_spans(cl: Clause | None, toks: list[Tok]) -> tuple[list[str], list[Span]]:
    topics: list[str] = []
    spans: list[Span] = []

    def add_topic(x: str) -> None:
        if x and x.lower() not in (t.lower() for t in topics):
            topics.append(x)

    run: list[str] = []
    seq = toks + [Tok("", "", "PUNCT")]
    for i, t in enumerate(seq):
        if (t.tag == "PROPN" or t.low == "&" and run and seq[i + 1].tag == "PROPN") and (
                t.low not in _MONTH_LOW and t.low not in _WEEKDAY_LOW):
            run.append(t.text)
            continue
        if run:
            add_topic(" ".join(run))
            spans.append(Span(" ".join(run), "name"))
            run = []
    for t in toks:
        if t.tag == "NUM":
            add_topic(t.text)
            spans.append(Span(t.text, "number"))
        elif t.tag == "NOUN" and t.low not in _META and len(t.low) > 1:
            add_topic(t.low)
        elif t.tag == "VERB" and t.low.endswith("ing") and t.low not in _META:
            add_topic(t.low)
        elif t.tag == "ADJ" and t.low not in _META:
            add_topic(t.low)
    if cl is not None:
        for target in _targets(cl):
            text = _flip(_part_text(target.part)).strip()
            if text and all(text != s.text for s in spans):
                spans.append(Span(text, target.type))
    return topics, spans


def _make_statement(text: str, first_person: str, ids: list[int], when: datetime | None,
                    names: dict[str, str], reason: str) -> tuple[Statement, Clause | None]:
    toks = _tokenize(first_person)
    cl = _parse_clause(toks)
    topics, spans = _topics_and_spans(cl, toks)
    st = Statement(
        text=text, restated=to_second_person(first_person), source_exchange_ids=list(ids),
        subject=_subject_of(cl, names), topics=topics, spans=spans,
        first_person=first_person, when=when, reason=reason,
    )
    return st, cl


def _slot(st: Statement) -> tuple[str, str, str] | None:
    """(subject, predicate, value) for statements whose predicate holds one value at a time."""
    return _slot_of(st.first_person or _canonical(strip_discourse(st.text)))


@lru_cache(maxsize=4096)
def _slot_of(first_person: str) -> tuple[str, str, str] | None:
    cl = _analyse(first_person)
    if cl is None:
        return None
    subj = _subj_text(cl.subj).lower()
    if subj in ("i", "we"):
        subj = "i"
    verb = cl.verb.lemma if cl.verb is not None else ""
    parts = [p for p in cl.parts if p.kind not in ("time", "freq", "dur", "since", "adv")]
    if not parts:
        return None
    first = parts[0]
    value = _part_text(first).lower()
    if cl.copula:
        head = first.head.low if first.head is not None else ""
        if first.kind == "np" and _is_job(first):
            return subj, "job", value
        if first.kind == "np" and first.toks[0].tag == "NUM" and len(first.toks) <= 3:
            return subj, "age", value
        if first.kind == "pp" and first.prep == "from":
            return subj, "from", value
        if subj == "i" and first.kind == "pp" and first.prep == "in" and re.search(
                r"\b(?:now|these days|nowadays)\b", first_person, re.I) and \
                _part_text(first)[3:4].isupper():
            # "we're in Sallowby now" (after "we moved last month") is where they live
            return subj, "home", _part_text(first)[3:].strip().lower()
        if first.kind == "pp" and first.prep in ("in", "at") and subj != "i" and not head:
            return None
        if subj not in ("i", "he", "she", "it", "they", "there", "this", "that") and \
                first.kind == "np":
            return subj, "is", value
        return None
    if verb in ("live", "reside") and first.kind == "pp" and first.prep in ("in", "at", "near"):
        return subj, "home", _part_text(first)[len(first.prep):].strip().lower()
    if verb in ("move", "relocate") and first.kind == "pp" and first.prep in ("to", "into"):
        return subj, "home", _part_text(first)[len(first.prep):].strip().lower()
    if verb == "work" and first.kind == "pp" and first.prep == "as":
        return subj, "job", value[3:]
    if verb == "work" and first.kind == "pp" and first.prep in ("at", "for"):
        return subj, "employer", value.split(" ", 1)[-1]
    if cl.verb is not None and cl.verb.low in ("called", "named") and first.kind == "np":
        return subj, "name", value
    return None


_BE_NOW = re.compile(r"^(I|We)(?:\s+am|\s+are|'m|'re)\s+", re.I)
_POSS_BE_NOW = re.compile(r"^((?:My|Our)\s+[^\W\d_]+(?:\s+[^\W\d_]+)?)(?:\s+is|'s)\s+", re.I)
_DO_NOW = re.compile(r"^(I|We)\s+([^\W\d_]+)\b", re.I)


def former(st: Statement) -> Statement | None:
    """``st`` as something that was true before a change ("I live in Utrecht" → "I used to
    live in Utrecht"), so the old home or job stays known, apart from the new one; None when
    the sentence has no simple present to move into the past."""
    fp = st.first_person or _canonical(strip_discourse(st.text))
    if _BE_NOW.match(fp):
        past = _BE_NOW.sub(lambda m: f"{m.group(1)} used to be ", fp, count=1)
    elif _POSS_BE_NOW.match(fp):
        past = _POSS_BE_NOW.sub(lambda m: f"{m.group(1)} used to be ", fp, count=1)
    else:
        m = _DO_NOW.match(fp)
        lemma = _verb_lemma(m.group(2).lower()) if m else ""
        if not m or not lemma or m.group(2).lower() in ("used", "have", "had", "was", "were"):
            return None
        past = f"{m.group(1)} used to {lemma}{fp[m.end():]}"
    return Statement(st.text, to_second_person(past), list(st.source_exchange_ids), st.subject,
                     list(st.topics), [], past, st.when, reason="former")


def slot(st: Statement) -> tuple[str, str, str] | None:
    """(subject, predicate, value) when ``st`` states a single-valued predicate (home, job,
    employer, age, name, "X is Y"), else None: what a later statement can replace."""
    return _slot(st)


def supersede(old: list[Statement], new: list[Statement]) -> dict[int, list[int]]:
    """Which old statements each new one replaces: same subject and same single-valued
    predicate (home, job, employer, age, name, "X is Y") with a different value.

    Returns {index in ``new``: [indexes in ``old``]}; the caller marks them.
    """
    out: dict[int, list[int]] = {}
    old_slots = [_slot(s) for s in old]
    for i, st in enumerate(new):
        slot = _slot(st)
        if slot is None:
            continue
        for j, os_ in enumerate(old_slots):
            if os_ is None or old[j] is st:
                continue
            if os_[:2] == slot[:2] and os_[2] != slot[2]:
                out.setdefault(i, []).append(j)
    return out


def _replace_value(old_fp: str, value: str, typed_only: bool = False) -> str | None:
    """The old first-person sentence with its most likely value replaced by ``value``.

    ``typed_only``: only a value of the same type (a number for a number, a name for a
    name); else any noun phrase, place or time of the sentence may be the one replaced."""
    toks = _tokenize(old_fp)
    cl = _parse_clause(toks)
    val = value.strip().rstrip(".!")
    vtoks = _tokenize(val)
    if not vtoks:
        return None
    candidates: list[str] = []
    if vtoks[0].tag == "NUM" or re.match(r"\d", val):
        candidates = [t.text for t in toks if t.tag == "NUM"]
        if candidates and not re.match(r"\d", val) and candidates[-1][:1].islower():
            val = val.lower()  # "Three" for "two sisters": "three sisters"
        if typed_only and not candidates:
            return None
    elif vtoks[0].text[:1].isupper() or len(vtoks) <= 2 and all(not _lemmas(t.low) for t in
                                                               vtoks):
        runs, run = [], []
        for t in toks + [Tok("", "", "PUNCT")]:
            if t.tag == "PROPN" or t.tag == "NOUN" and not _lemmas(t.low) and t.low not in _META:
                run.append(t.text)
            elif run:
                runs.append(" ".join(run))
                run = []
        candidates = runs
        if cl is not None and not candidates:
            candidates = [" ".join(t.text for t in p.name) for p in cl.parts if p.name]
    if typed_only and not candidates:
        return None
    if not candidates and cl is not None:
        for p in cl.parts:
            if p.kind in ("np", "pp", "adj", "time"):
                text = _part_text(p)
                if p.kind in ("pp", "time") and p.prep and not vtoks[0].low == p.prep:
                    text = text[len(p.prep):].strip()
                candidates.append(text)
    if not candidates:
        return None
    target = candidates[-1]
    i = old_fp.rfind(target)
    if i < 0:
        return None
    return old_fp[:i] + val + old_fp[i + len(target):]


_FAV_FIRST = re.compile(r"^(?:favourite|favorite|fave|fav)\s+[^\W\d_]+(?:\s+[^\W\d_]+)?\s+"
                        r"(?:is|are|was|were|has to be)\b", re.I)
_OBJECT_START = _words("my our the a an his her their some")


def _verb_then_object(fp: str) -> bool:
    """A chat sentence without its "I": a past-tense verb and then its object ("broke my
    wrist", "lost the keys"), which the tagger may read as an adjective ("broke")."""
    words = fp.split()
    if len(words) < 3 or words[1].lower() not in _OBJECT_START:
        return False
    first = words[0].lower()
    return bool(_verb_forms(first) & {"VBD"}) and first not in _RUNON_BLOCK


def _value_first(sentences: list[str]) -> list[str]:
    """"Three, actually, I always forget Roos" -> "Actually three." and the rest."""
    out: list[str] = []
    for sentence in sentences:
        m = _VALUE_ACTUALLY.match(clean_text(sentence).strip())
        if m and not _starts_clause(m["value"].split()) and \
                m["value"].split()[0].lower() not in _NOT_A_VALUE:
            out.append(f"Actually {m['value']}.")
            if m["rest"].strip():
                out.append(m["rest"].strip())
        else:
            out.append(sentence)
    return out


_NOT_A_VALUE = _words("i we you it this that there so and but well oh no yes yeah ok okay "
                      "because cause then now was is are hm hmm hmmm um umm uh er erm ah")


# ``label: value`` lines, the way some people write ("job: crane operator. port of
# Mellowick."): restated as sentences, so any label reaches the general path
_LABEL = re.compile(r"^(?P<label>[A-Za-z][A-Za-z' ]{0,24}?)\s*:\s+(?P<value>\S.*?)[.!]*$")
# "hate: karaoke", "likes: fly fishing": each form and the verb the sentence takes
_LABEL_VERBS = {form: verb for verb in "hate like love dislike enjoy prefer need want miss".split()
                for form in (verb, verb + ("es" if verb.endswith("ss") else "s"))}
# a label that only introduces what follows ("update: I got the job", "q: best bait ...?")
_LABEL_NOTES = _words("note notes ps btw fyi update edit q question also and but so tldr re "
                      "news")
_LABEL_TODO = _words("todo to-do plan plans schedule reminder reminders upcoming agenda")
_NAME_AGE = re.compile(r"^(?:(?:hi|hey|hello)\W*\s+)?(?P<intro>I'm|I am|my name is|name's)"
                       r"\s+(?P<name>[A-Z][\w-]+(?:\s+[A-Z][\w-]+)?)\s*,\s*"
                       r"(?P<n>\d{1,2})\b(?!\s*(?:%|[a-z]))"
                       r"(?P<rest>.*)$", re.I)
_TODO_OBJECT = _words("to the a an my our some out up in on him her them it")
_AGE_FRAGMENT = re.compile(r"^(?:age|aged)\s+(?P<n>\d{1,3})\b[.!]*$", re.I)


def _label_sentence(label: str, value: str) -> tuple[str, bool] | None:
    """The sentence a ``label: value`` line says, and whether short fragments after it go on
    describing the label ("wife: Odalys. nurse." is the wife, a nurse); None: not a label."""
    low = re.sub(r"^(?:my|our) ", "", label.lower().strip())
    words = low.split()
    if len(words) > 3 or _starts_clause(label.split()) or (
            len(words) > 1 and all(w[:1].isupper() for w in label.split())):
        return None  # a heading ("Silk Pillowcases: A little luxury ...") is left as it is
    if value[:1].isupper() and len(value.split()) > 3 and not value.split()[0].isupper() \
            and words[0] not in _LABEL_NOTES:
        return None  # a sentence after it ("Trim regularly: It's the best way ...")
    if words[0] in _LABEL_NOTES or _starts_clause(value.split()):
        return value, False
    if low in _LABEL_VERBS:
        return f"I {_LABEL_VERBS[low]} {value}", False
    if low in ("from", "originally from"):
        return f"I'm from {value}", False
    if low in ("now", "currently", "these days"):
        return (f"I'm in {value} now" if value[:1].isupper() else f"I'm {value} now"), False
    if low == "age" and value.split()[0].isdigit():
        return f"I'm {value}", False
    if low in _LABEL_TODO:
        w = value.split()
        # "todo: call mum" is something to do, "todo: truck inspection friday" a thing
        act = "VB" in _verb_forms(w[0].lower()) and len(w) > 1 and (
            w[1].lower() in _TODO_OBJECT or w[1].lower() in PERSON_RELATIONS
            or w[1][:1].isupper())
        if low.startswith("plan"):
            be = "are" if low.endswith("s") else "is"
            return (f"I plan to {value}" if act else f"My {low} {be} {value}"), False
        return (f"I have to {value}" if act else f"I have {value}"), False
    plural = low.endswith("s") and not low.endswith("ss")
    if plural and re.fullmatch(r"\d+|" + "|".join(_NUMBER_WORDS), value.lower()):
        return f"I have {value} {low}", True
    return f"My {low} {'are' if plural else 'is'} {value}", True


# a value taken back inside its own sentence: "I'm Dessa, 31 - ugh no, 32, I just had a
# birthday", "my sister Ana, sorry, Anna, lives in Rome"
_INLINE_CORRECTION = re.compile(
    r"(?P<old>\b\d+\b|\b[A-Z][a-z]+\b)\s*(?:-|–|—|,|\.\.\.)\s*"  # "Fanola No Yellow": a name
    r"(?:(?:ugh|oh|um|uh|hm+|er)\s*,?\s*)?(?:no wait|no|nope|sorry|wait|oops|i mean|i meant)"
    r"\s*[,!.:-]*\s*(?P<new>\d+\b|[A-Z][a-z]+\b)", re.I)


def _inline_correction(sentence: str) -> str:
    def repl(m: re.Match) -> str:
        old, new = m["old"], m["new"]
        same_kind = old.isdigit() and new.isdigit() or old[:1].isupper() and new[:1].isupper() \
            and not old.isdigit() and not new.isdigit()
        if not same_kind or old.lower() == new.lower() or old.lower() in _INLINE_SKIP or \
                new.lower() in _INLINE_SKIP:
            return m.group(0)
        return new

    return _INLINE_CORRECTION.sub(repl, sentence)


_INLINE_SKIP = _words("i no nope sorry wait oops ugh oh um uh hm er yes yeah ok okay well so")


def message_sentences(text: str) -> list[str]:
    """A message's sentences as the general path reads them: split, ``label: value`` lines
    restated (what curation judges is what extraction reads)."""
    return _unlabelled(split_sentences(_inline_correction(text or "")))


def _unlabelled(sentences: list[str]) -> list[str]:
    """One message's sentences with its ``label: value`` lines restated ("dog: Grub. mastiff.
    eats socks." -> "My dog is Grub, mastiff, eats socks."); others are left as they are."""
    out: list[str] = []
    described = False  # the last sentence was a label that short fragments go on describing
    for sentence in sentences:
        raw = clean_text(sentence).strip()
        if raw.endswith(":") and len(raw.split()) <= 3:
            continue  # "work stuff:" only introduces the sentence after it
        m = _LABEL.match(raw)
        said = _label_sentence(m["label"], m["value"]) if m and not raw.endswith("?") else None
        if said is not None:
            text, described = said
            out.append(text[0].upper() + text[1:] + ".")
            continue
        if (a := _NAME_AGE.match(raw)) is not None:  # "I'm Dessa, 32, ...": a name, an age
            out += [f"{a['intro']} {a['name']}.", f"I'm {a['n']}."]
            if a["rest"].strip(" ,.!"):
                out.append(a["rest"].strip(" ,"))
            described = False
            continue
        if (a := _AGE_FRAGMENT.match(raw)) is not None:
            out.append(f"I'm {a['n']}.")
            described = False
            continue
        frag = raw.rstrip(".!")
        if described and out and len(frag.split()) <= 3 and ":" not in frag and \
                not raw.endswith("?") and not _starts_clause(frag.split()):
            out[-1] = f"{out[-1].rstrip('.')}, {frag}."
            continue
        described = False
        if _BARE_RELATION.match(raw):  # "daughter Sunniva (14), son Brannock (10)."
            sentence = _BARE_RELATION.sub(lambda r: f"{r[1]}my {r[2].lower()}", raw)
        out.append(sentence)
    return out


# lowercase only: "Boss Baby is a great movie" names no boss
_BARE_RELATION = re.compile(
    rf"(^|,\s*|\band\s+)({'|'.join(PERSON_RELATIONS)})(?=\s+[A-Z][a-z])")


def _names_then_verb(text: str) -> bool:
    """"Joost is my brother": a name and then a verb, a sentence rather than a bare value."""
    words = [w.strip(",.!?;:") for w in text.split()]
    k = 0
    while k < len(words) and words[k][:1].isupper():
        k += 1
    return 0 < k < len(words) and _word_can_be_verb(words[k].lower())


def _shared_name(old_fp: str, new_fp: str) -> bool:
    """Whether the new sentence names a person, pet or thing the old one named."""
    def caps(text: str, first: bool) -> set[str]:
        words = [w.strip(",.!?;:'\"") for w in text.split()]
        return {w for i, w in enumerate(words) if (i > 0 or first) and w[:1].isupper()
                and w not in ("I", "I'm", "I've", "I'd", "I'll")}
    # the earlier sentence's names (not its first word, capitalised anyway) anywhere in the new
    return bool(caps(old_fp, False) & caps(new_fp, True))


def _corrected(out: list[Statement], live: list[int], turn_of: list[int], turn_no: int,
               value: str, typed_only: bool = False) -> tuple[int, str | None]:
    """Which recent statement a bare corrected value ("Wait, 35.") replaces, and its new first
    person: the latest of this turn's and the previous turn's with a value of the same kind
    (a number for a number, a name for a name), else the latest statement."""
    recent = [k for k in live if k < len(turn_of) and turn_of[k] >= turn_no - 1
              or k >= len(turn_of)]
    for k in reversed(recent):
        fp = _replace_value(out[k].first_person, value, typed_only=True)
        if fp and fp != out[k].first_person:
            return k, fp
    if typed_only:
        return live[-1], None
    fp = _replace_value(out[live[-1]].first_person, value)
    return live[-1], fp if fp and fp != out[live[-1]].first_person else None


def statements_from_turns(
    turns: list[tuple[str, list[int], datetime | None]],
) -> list[Statement]:
    """Every disclosure in a user's turns as a Statement, in order.

    ``turns`` are (user text, exchange ids, when it was said). Pronouns at the start of a
    sentence are resolved to the previous sentence's person, pet or thing; corrections mark the
    statements they replace (``supersedes`` / ``superseded_by``).
    """
    out: list[Statement] = []
    refs: list[_Referent] = []
    names: dict[str, str] = {}
    turn_of: list[int] = []  # the turn each statement came from
    for turn_no, (text, ids, when) in enumerate(turns):
        turn_of += [turn_no - 1] * (len(out) - len(turn_of))  # corrections made then
        pending = False
        for sentence in _value_first(message_sentences(text)):
            raw = clean_text(sentence).strip()
            if _INTERJECTION_ONLY.match(raw):
                pending = True  # "no wait," then the corrected sentence
                continue
            correction, pending = pending, False
            m = _CORRECTION.match(raw) or _CORRECTION_SHORT.match(raw)
            body = raw
            # "sorry, Noodle" corrects a name; "Sorry, that's probably a silly question" does
            # not replace any old value: after an apology alone, only a value of a known kind
            apology = bool(m and _APOLOGY_ONLY.match(m.group(0)))
            if m and m.end() < len(raw):
                body = raw[m.end():]
                correction = True
            body = strip_discourse(body)
            if not body:
                continue
            # a bare corrected value: "actually it's Tim", "no wait, I meant Tuesday"
            short = _CORRECTION_VALUE.sub("", body) if correction else body
            live = [k for k, s in enumerate(out) if s.superseded_by is None]
            if correction and live and len(short.split()) <= 4 and (
                    _CORRECTION_VALUE.match(body) or not _starts_clause(short.split())
                    and not _names_then_verb(short)):
                target, fp = _corrected(out, live, turn_of, turn_no,
                                        resolve_times(short, when), typed_only=apology)
                if fp:
                    prev = out[target]
                    st, cl = _make_statement(sentence, fp, ids, when, names, "correction")
                    st.subject = prev.subject
                    idx = len(out)
                    st.supersedes = [target]
                    prev.superseded_by = idx
                    out.append(st)
                    continue
            body = _its_is(body)
            # people and pets are talked about across messages; a thing only right after it
            # was named ("finally got a new bike" ... "its called tapioca moon" is the café)
            resolved, ref = _resolve_pronouns(
                body, [r for r in refs if (r.kind != "thing" or r.at >= len(out) - 1)
                       and (r.turn is None or r.turn >= turn_no - 1)], len(out) - 1)
            ok, reason = judge_disclosure(resolved)
            if not ok:  # "Let's start with my mum." says nothing, but "she" is her next
                refs = (refs + _mentions(resolved, len(out), turn_no))[-6:]
                continue
            fp = _canonical(resolved)
            cl0 = _parse_clause(_tokenize(fp))
            if _FAV_FIRST.match(fp):  # "fav food is katsu curry": the user's favourite
                fp = "My " + fp[0].lower() + fp[1:]
                cl0 = _parse_clause(_tokenize(fp))
            elif _verb_then_object(fp):  # "broke my wrist skateboarding": "I broke ..."
                fp = "I " + fp[0].lower() + fp[1:]
                cl0 = _parse_clause(_tokenize(fp))
            if cl0 is not None and not cl0.subj:
                # "love bouldering" -> "I love bouldering"; "so excited" -> "I'm so excited"
                first_word = next((t for t in _tokenize(fp) if t.tag != "ADV"), None)
                adj = first_word is not None and (
                    "ADJ" in _lemmas(first_word.low) or first_word.low in _EMOTIONS) and \
                    not (_verb_forms(first_word.low) & {"VBP", "VBZ", "VB"})
                fp = ("I'm " if adj else "I ") + fp[0].lower() + fp[1:]
            fp = _dated_event(resolve_times(fp, when), when)
            fp, named = _own_the_named(fp, refs, out[-1].first_person if out else "", len(out),
                                       turn_no)
            st, cl = _make_statement(sentence, fp, ids, when, names, reason)
            if ref is not None and ref.kind == "person" and ref.name and st.subject == USER:
                st.subject = ref.name
            if cl is not None:
                names.update(_names_in(cl))
                new_refs = _referents(cl, st.subject)
                for r in new_refs:
                    r.at = len(out)
                    # a pronoun already told whether it is "he" or "she"
                    r.gender = r.gender or next(
                        (x.gender for x in reversed(refs) if x.gender and (
                            x.phrase == r.phrase or x.name and x.name in (r.name, r.phrase))),
                        None)
                if not any(r.kind == "person" for r in new_refs):
                    # "Then there's my best mate Lorcan.": a person the parse did not keep
                    new_refs += [r for r in _mentions(fp, len(out), turn_no)
                                 if r.phrase not in {x.phrase for x in new_refs}]
                refs = (refs + new_refs)[-6:] if new_refs else refs
            else:  # a fragment: "Last one: Auntie Rosalind, who runs a campsite"
                refs = (refs + _mentions(fp, len(out), turn_no))[-6:]
            if named is not None:  # the named thing replaces its unnamed mention
                refs = [r for r in refs if r.phrase.lower() != named.phrase][-5:] + [named]
            elif named := _named_referent(fp, len(out), turn_no):
                # "The cat, I should say, is called Lord Fenwick. He is enormous.": the cat
                refs = [r for r in refs if r.phrase.lower() != named.phrase][-5:] + [named]
            idx = len(out)
            replaced = supersede([out[k] for k in live], [st]).get(0, [])
            replaced = [live[k] for k in replaced]
            if correction and not replaced and live:
                prev = out[live[-1]]
                pcl = _analyse(prev.first_person)
                if pcl is not None and cl is not None and prev.subject == st.subject and (
                        pcl.verb is not None and cl.verb is not None
                        and pcl.verb.lemma == cl.verb.lemma or pcl.copula and cl.copula):
                    replaced = [live[-1]]
                elif _shared_name(prev.first_person, fp):
                    # "My partner's name is Joost." "ugh, no, Joost is my brother.": a
                    # correction about the same name takes the earlier statement back
                    replaced = [live[-1]]
                if replaced:
                    st.reason = "correction"  # the old value was never true: not "used to"
            for k in replaced:
                out[k].superseded_by = idx
            st.supersedes = replaced
            turn_of += [turn_no] * (len(out) - len(turn_of))
            if ref is None and (_DANGLING.match(body) or _points_back(body)) \
                    and not replaced:
                _attach_context(out, turn_of, turn_no, st)
            out.append(st)
            turn_of.append(turn_no)
    return out


# states and habits hold beyond the day they are told; events happen on a day
_STATIVE = _words(
    "be have own live love like hate prefer know think believe feel seem want need wish hope "
    "mean belong remember understand work study use keep enjoy miss")
_HEDGE = _words("think guess believe reckon suppose")
# "we named him Pixel": a name holds from whenever it was given, rarely the day it is told
# ("I called my mum" is an event: dated as before)
_NAMING = _words("name")
_AUX_ADVERBS = _words("recently just finally already also actually really lately now even "
                      "only still since ever totally")
_DATED = re.compile(rf"\b(?:{'|'.join(m.capitalize() for m in _MONTH_LOW if len(m) > 3)})\b"
                    r"|\b(?:19|20)\d\d\b|\b(?:ago|since|yesterday|today|tonight|tomorrow|"
                    r"when|while|before|after|during|every|usually|always|never|once)\b", re.I)


_HUNG_CLAUSE = re.compile(r",\s+(?:which|who|because|but|although|though|so|while|whereas|"
                          r"even though|since)\b")


def _dated_event(fp: str, when: datetime | date | None) -> str:
    """A past event told without a time ("I started playing Fortnite", "I've finished the
    first draft") happened about when it was told: the day goes into the statement, so "When
    did I start ...?" has an answer. States, habits and sentences with a time are left as
    they are."""
    if when is None or _DATED.search(fp):
        return fp
    toks = _tokenize(fp)
    cl = _parse_clause(toks)
    if cl is not None and cl.verb is not None and cl.verb.lemma in _HEDGE and not cl.aux \
            and cl.subj and cl.subj[0].low in ("i", "we"):
        # "I think I've caught a cold": the event is the clause after the hedge
        at = next((i for i, t in enumerate(toks) if t is cl.verb), None)
        rest = toks[at + 1:] if at is not None else []
        if rest and rest[0].low == "that":
            rest = rest[1:]
        inner = _join(rest)
        if rest and rest[0].low in ("i", "we", "i've", "we've"):
            dated = _dated_event(inner, when)
            return fp.rstrip(".!,;: ") + dated[len(inner.rstrip(".!,;: ")):] \
                if dated != inner else fp
        return fp
    if cl is None or cl.copula or cl.verb is None or cl.verb.lemma in _STATIVE | _NAMING:
        return fp
    # "I've recently started ...": adverbs between the auxiliary and the verb do not count
    aux = [t.low for t in cl.aux if t.low not in _AUX_ADVERBS]
    perfect = aux in (["'ve"], ["have"], ["has"], ["'s"]) and (
        "VBN" in _verb_forms(cl.verb.low)) or aux in (
        ["'ve", "been"], ["have", "been"], ["has", "been"], ["'s", "been"]) and (
        cl.verb.low.endswith("ing"))
    if not (cl.past and not cl.aux or perfect) or cl.subj and not (
            cl.subj[0].low in ("i", "we") or cl.subj[0].tag in ("POSS", "PROPN")):
        return fp
    day = _fmt(when.date() if isinstance(when, datetime) else when)
    stamp = f", as of {day}" if perfect else f" on {day}"
    # the day belongs to the event, not to a clause hung on it: "You finished in 58 minutes
    # on May 14, 2025, which you are proud of", not "... proud of on May 14, 2025"
    tail = _HUNG_CLAUSE.search(fp)
    if tail:
        return f"{fp[:tail.start()]}{stamp}{fp[tail.start():]}"
    return f"{fp.rstrip('.!,;: ')}{stamp}"


def _its_is(s: str) -> str:
    """Chat's "its called tapioca moon" is "it's": a leading "its" before a word that cannot
    be a noun (so not "its tail is long")."""
    m = re.match(r"^(its)\s+([^\W\d_]+)", s, re.I)
    if not m:
        return s
    nxt = m.group(2).lower()
    if nxt in _DET or nxt in ("called", "named", "been", "not", "so", "really", "just") or (
            "NOUN" not in _lemmas(nxt) and "PROPN" not in _lemmas(nxt)):
        return ("It's" if m.group(1)[0] == "I" else "it's") + s[3:]
    return s


# a sentence that leans on the one before: "I ran my first marathon. It took me 4 hours."
_DANGLING = re.compile(r"^(?:it|it's|its|that|that's|thats|this|they|they're|theyre|them|"
                       r"there|these|those|which)\b", re.I)
_OF_THEM = re.compile(r"\b(?:of|from) (?:them|those|these|it)\b", re.I)  # "30 of them"
_OWN_NP = re.compile(r"\b(?:my|our)((?:\s+[a-z-]+){1,3})", re.I)


def _points_back(body: str) -> bool:
    """Whether "of them" / "out of it" points to the sentence before: not when the sentence
    names a thing of its own first ("tell you about my car because everyone gets a laugh out
    of it"), of the pronoun's number."""
    m = _OF_THEM.search(body)
    if m is None:
        return False
    plural = m.group(0).split()[-1].lower() != "it"
    for own in _OWN_NP.finditer(body[:m.start()]):
        if any(w.lower().endswith("s") == plural for w in own.group(1).split()):
            return False
    return True


MAX_CONTEXT_CHARS = 240  # a merged answer stays a sentence or two, well inside max_seq_len


def _attach_context(out: list[Statement], turn_of: list[int], turn_no: int,
                    st: Statement) -> None:
    """Give ``st`` and the statement before it (same or previous message) one merged answer,
    so what "it" or "that" points to is in what is trained: "How long did my first marathon
    take me?" is answered by "You ran your first marathon. It took you 4 hours 52 minutes."
    Questions of both stay as built from their own sentences."""
    if not out or out[-1].superseded_by is not None or turn_of[-1] < turn_no - 1:
        return
    prev = out[-1]
    merged = f"{prev.restated.rstrip()} {st.restated}"
    if prev.restated.rstrip()[-1:] not in ".!?":
        merged = f"{prev.restated.rstrip()}. {st.restated}"
    if len(merged) > MAX_CONTEXT_CHARS:
        return
    ids = sorted(set(prev.source_exchange_ids) | set(st.source_exchange_ids))
    k = len(out) - 1
    while k >= 0 and out[k].restated == prev.restated:  # a chain already merged shares it
        out[k].restated, out[k].source_exchange_ids = merged, ids
        k -= 1
    st.restated, st.source_exchange_ids = merged, ids

# ============================================================================================
# Questions
# ============================================================================================


@dataclass
class _Target:
    part: Part
    wh: str
    strand: str
    type: str
    category: str = ""  # e.g. "instrument": also asked as "What instrument ..."
    category_strand: str = ""
    clause: Clause | None = None


def _categories(p: Part) -> list[str]:
    words = [t for t in p.toks if t.tag in ("NOUN", "PROPN", "ADJ", "VERB")]
    if not words:
        return []
    lows = [t.low for t in words]
    joined = " ".join(lows)
    for k in range(len(lows)):  # multiword entries first ("maine coon")
        key = " ".join(lows[k:k + 2])
        if key in _CATEGORY and " " in key:
            return _CATEGORY[key]
    head = p.head.low if p.head is not None else lows[-1]
    for w in [head] + lows[::-1]:
        if w in _CATEGORY:
            return _CATEGORY[w]
        lem = _lemmas(w).get("NOUN")
        if lem and lem[0] in _CATEGORY:
            return _CATEGORY[lem[0]]
    return [] if joined else []


def _is_job(p: Part) -> bool:
    if p.head is None or p.kind not in ("np", "pp"):
        return False
    head = p.head.low
    if "job" in _CATEGORY.get(head, []) or "job" in _CATEGORY.get(
            (_lemmas(head).get("NOUN") or (head,))[0], []):
        return True
    if head in _NOT_JOBS or p.head.tag != "NOUN":
        return False
    if any(head.endswith(j) and len(j) >= 4 for j in _JOB_WORDS):
        return True  # "headteacher", "firefighter"
    return head.endswith(_JOB_SUFFIXES) and len(head) > 5


def _namelike(t: Tok) -> bool:
    """A name: capitalised, or a lowercase word the lexicon has no noun for ("ghent")."""
    return t.tag == "PROPN" or t.tag == "NOUN" and "NOUN" not in _lemmas(t.low) and (
        t.low not in _TIME_NOUNS and t.low not in _META and t.low not in _PLACE_NOUNS
        and t.low not in _PERSON_NOUNS)


_ABSTRACT_IN = _words("interested involved good bad great skilled fluent expert believe believes "
                      "specialize specialise major participate engage invest interest "
                      "succeed trust fall fell")


def _place_like(p: Part, cl: Clause) -> bool:
    head = p.head
    if head is None:
        return False
    verb = cl.verb.low if cl.verb is not None else ""
    frame = verb in _PLACE_FRAMES or cl.verb is not None and cl.verb.lemma in _PLACE_FRAMES or (
        cl.copula and p.prep in ("in", "at", "from", "near", "to"))
    cats = _CATEGORY.get(head.low, [])
    if "country" in cats or "city" in cats or "continent" in cats:
        return True
    if p.prep == "at" and head.low not in _TIME_NOUNS and head.tag != "PRON":
        return True  # "at an animal shelter", "at work"
    if p.prep in ("in", "near", "inside", "outside", "around", "across") and p.toks[1:2] and \
            p.toks[1].tag in ("DET", "POSS") and not (
                cl.verb is not None and cl.verb.lemma in _ABSTRACT_IN) and not any(
                q.kind == "adj" and q.head is not None and q.head.low in _ABSTRACT_IN
                for q in cl.parts):
        return True  # "in a small orchestra", "near the station"
    if head.low in _PLACE_NOUNS:
        return p.prep in ("in", "at", "to", "from", "near", "into", "inside", "outside",
                          "around", "across", "behind", "next")
    if _namelike(head):
        return frame and p.prep in ("in", "at", "to", "from", "near", "into", "around")
    return False


def _person_like(p: Part) -> bool:
    head = p.head
    if head is None:
        return False
    return head.low in _PERSON_NOUNS or _namelike(head) and p.prep in (
        "with", "by", "to", "for") and not _CATEGORY.get(head.low) or \
        head.tag == "PRON" and head.low in ("him", "her", "me", "us")


def _age_like(p: Part) -> bool:
    lows = [t.low for t in p.toks]
    nums = [t for t in p.toks if t.tag == "NUM"]
    if not nums or len(p.toks) > 4:
        return False
    if "old" in lows or "yo" in lows or lows[-1:] == ["years"] and len(lows) == 2:
        return True
    return len(p.toks) == 1 and nums[0].low.isdigit() and 0 < int(nums[0].low) < 120


_MEASURE_ADJ = _words("tall long high wide deep old heavy big far away")


def _number_wh(p: Part) -> tuple[str, str] | None:
    """("how many cats", type) for "two cats", ("how much", ...) for money."""
    toks = [t for t in p.toks if t.tag != "PUNCT"]
    i = next((k for k, t in enumerate(toks) if t.tag == "NUM"), None)
    if i is None:
        return None
    num = toks[i]
    if num.low[0] in "$€£¥" or any(t.low in _MONEY for t in toks):
        return "how much", "number"
    after = toks[i + 1:]
    for k, t in enumerate(after):
        if t.low in ("named", "called", "of", "in", "at", "from", "with", "who", "that"):
            after = after[:k]
            break
    rest = [t for t in after if t.tag in ("NOUN", "ADJ", "PROPN", "VERB")]
    if rest and rest[-1].low in _MEASURE_ADJ:
        return f"how {rest[-1].low}", "number"
    if re.fullmatch(r"(?:19|20)\d\d", num.low) and not rest:
        return None
    if not rest:
        m = re.match(r"^\d+(?:\.\d+)?(km|k|kg|cm|m|mi|lbs?|h|hrs?|min)$", num.low)
        if m:
            return f"how many {m.group(1)}", "number"
        return None
    if rest[0].low in _DISTANCE:
        return f"how many {rest[0].text}", "number"
    noun = _join(rest)
    return f"how many {noun}", "number"


def _walk(cl: Clause):
    """(part, owning clause) for every constituent, nested ones included."""
    for p in cl.front + cl.parts:
        yield p, cl
        if p.sub is not None:
            yield from _walk(p.sub)


def _targets(cl: Clause) -> list[_Target]:
    out: list[_Target] = []
    for p, owner in _walk(cl):
        k = p.kind
        lows = [t.low for t in p.toks]
        if k == "time":
            out.append(_Target(p, "when", "", "date", clause=owner))
            if any(re.fullmatch(r"(?:19|20)\d\d", x) for x in lows) and not any(
                    t.tag == "NUM" and not re.fullmatch(r"(?:19|20)\d\d", t.low)
                    for t in p.toks):
                out.append(_Target(p, "what year", "", "date", clause=owner))
        elif k == "since":
            out.append(_Target(p, "since when", "", "date", clause=owner))
            out.append(_Target(p, "how long", "", "duration", clause=owner))
        elif k == "dur":
            out.append(_Target(p, "how long", "", "duration", clause=owner))
        elif k == "freq":
            out.append(_Target(p, "how often", "", "frequency", clause=owner))
            if any(x in _WHEN_WORDS for x in lows):
                out.append(_Target(p, "when", "", "date", clause=owner))
        elif k == "clause":
            if p.prep in ("because", "cause", "cuz", "coz", "since", "as") and p.prep != "as":
                out.append(_Target(p, "why", "", "reason", clause=owner))
            elif p.prep in ("when", "while", "after", "before", "until", "till", "once"):
                out.append(_Target(p, "when", "", "date", clause=owner))
        elif k == "pp" and p.sub is None:
            cats = _categories(p)
            if p.prep in ("before", "after", "during", "until", "till"):
                out.append(_Target(p, "when", "", "date", clause=owner))
            elif p.head is not None and _namelike(p.head) and p.prep in ("for", "at") and (
                    owner.verb is not None and owner.verb.lemma in ("work", "intern",
                                                                    "volunteer")):
                out.append(_Target(p, "where", "", "place", clause=owner))
                out.append(_Target(p, "who", p.prep, "name", "company", p.prep, clause=owner))
            elif _place_like(p, owner):
                strand = "from" if p.prep == "from" else ""
                cat = next((c for c in cats if c in ("country", "city")), "")
                out.append(_Target(p, "where", strand, "place", cat, p.prep, clause=owner))
            elif _person_like(p):
                out.append(_Target(p, "who", p.prep, "person", clause=owner))
            elif p.prep == "as" and _is_job(p):
                out.append(_Target(p, "what", "as", "noun_phrase", "job", "as", clause=owner))
            elif p.head is not None and _namelike(p.head) and p.prep in ("for", "at") and (
                    owner.verb is not None and owner.verb.lemma in ("work", "intern",
                                                                    "volunteer")):
                out.append(_Target(p, "who", p.prep, "name", "company", p.prep, clause=owner))
            else:
                nw = _number_wh(Part("np", p.toks[1:])) if any(
                    t.tag == "NUM" for t in p.toks) else None
                if nw and not re.fullmatch(r"(?:19|20)\d\d", lows[-1]):
                    out.append(_Target(p, nw[0], p.prep, nw[1], clause=owner))
                cats = [c for c in cats if c != "job"]
                cat = cats[0] if cats else ""
                out.append(_Target(p, "what", p.prep, "noun_phrase", cat, p.prep, clause=owner))
        elif k == "np":
            if p.head is not None and p.head.tag == "PRON":
                continue
            cats = _categories(p)
            if owner.copula and _age_like(p):
                out.append(_Target(p, "how old", "", "number", clause=owner))
                continue
            nw = _number_wh(p)
            if nw:
                out.append(_Target(p, nw[0], "", nw[1], clause=owner))
                continue
            is_name = p.head is not None and p.head.tag == "PROPN" and all(
                t.tag in ("PROPN", "POSS_S") for t in p.toks)
            who = is_name and owner.copula and any(
                t.low in _PERSON_NOUNS for t in owner.subj) or p.head is not None and (
                p.head.low in _PERSON_NOUNS and owner.copula)
            if is_name and owner.copula and [t.low for t in owner.subj] in (["i"], ["we"]):
                who = True
            if owner.copula and _is_job(p):
                out.append(_Target(p, "", "", "noun_phrase", clause=owner))
                continue  # asked through the job paraphrases
            wh = "who" if who else "what"
            typ = "name" if is_name else ("verb_object" if owner.verb is not None
                                          and not owner.copula else "noun_phrase")
            cat = ""
            cats = [c for c in cats if c != "job"]
            if cats and not is_name or cats and cats[0] in ("language", "programming language",
                                                            "city", "country", "car"):
                cat = cats[0]
            if owner.copula and _is_job(p):
                cat = ""
            out.append(_Target(p, wh, "", typ, cat, clause=owner))
        elif k == "adj":
            head = p.head.low if p.head is not None else ""
            if "color" in _CATEGORY.get(head, []) and not {"color", "colour"} & {
                    t.low for t in owner.subj}:
                out.append(_Target(p, "what color", "", "attribute", clause=owner))
            elif owner.copula and owner.subj and owner.subj[0].low not in ("i", "we"):
                out.append(_Target(p, "what", "like", "attribute", clause=owner))
        elif k in ("inf", "ger") and p.sub is not None and p.sub.verb is not None:
            out.append(_Target(p, "what", "", "activity", clause=owner))
    return out


def _aux_split(cl: Clause) -> tuple[Tok | None, list[Tok], list[Tok]]:
    """(first auxiliary, adverbs before it, the rest of the auxiliary chain)."""
    for i, t in enumerate(cl.aux):
        if t.tag in ("AUX", "MODAL"):
            return t, cl.aux[:i], cl.aux[i + 1:]
    return None, cl.aux, []


_POSITIVE = {"don't": "do", "doesn't": "does", "didn't": "did", "isn't": "is", "aren't": "are",
             "wasn't": "was", "weren't": "were", "haven't": "have", "hasn't": "has",
             "hadn't": "had", "won't": "will", "wouldn't": "would", "can't": "can",
             "couldn't": "could", "shouldn't": "should", "mustn't": "must", "ain't": "am"}


def _aux_word(t: Tok, cl: Clause) -> str:
    if t.low == "'d":
        forms = _verb_forms(cl.verb.low) if cl.verb is not None else frozenset()
        return "had" if "VBN" in forms and not forms & {"VB", "VBP"} else "would"
    if t.low == "'s" or t.tag == "AUX" and t.full:
        return t.full
    return t.full or t.low


def _contains(p: Part, target: Part | None) -> bool:
    if target is None or p.sub is None:
        return False
    for q, _ in _walk(p.sub):
        if q is target:
            return True
    return False


_RELATION_CATS = frozenset({"sibling", "parent", "child", "grandparent", "partner"})
_WHEN_WORDS = _words("morning mornings afternoon afternoons evening evenings night nights "
                     "weekend weekends weekday weekdays") | frozenset(_WEEKDAY_LOW) | frozenset(
    d + "s" for d in _WEEKDAY_LOW)
_ADJUNCTS = ("rate", "time", "freq", "dur", "since", "adv", "clause")


def _render(parts: list[Part], target: Part | None, keep: bool, vp: Part | None,
            vp_word: str, strand: str = "") -> list[str] | None:
    out: list[str] = []
    skip_of = False
    for p in parts:
        if skip_of and p.kind == "pp" and p.prep == "of":
            skip_of = False
            continue  # "a huge fan | of Studio Ghibli films": asked for the fan, drop the "of"
        skip_of = False
        if p is target:
            skip_of = p.kind == "np"
            if strand:
                out.append(strand)  # "What am I allergic to?", "What do I work as in Leeds?"
            continue
        if p is vp:
            if p.kind == "inf":
                out += ["to", "do"]
            elif p.kind == "pp":
                out += [p.prep, "doing"]
            else:
                out.append("doing")
            if p.sub is not None:
                out += [_join(q.toks) for q in p.sub.parts if q.kind in ("time", "freq", "dur")]
            continue
        if p.sub is not None and (_contains(p, target) or _contains(p, vp)):
            if p.kind == "inf":
                out.append("to")
            elif p.kind == "pp":
                out.append(p.prep)
            out.append(p.sub.verb.text if p.sub.verb is not None else "")
            out += [t.text for t in p.sub.prt]
            inner = _render(p.sub.parts, target, keep, vp, vp_word, strand)
            if inner is None:
                return None
            out += inner
            continue
        if vp_word and p.kind not in _ADJUNCTS and not (p.kind == "pp" and p.head is not None
                                                        and p.head.low in _PLACE_NOUNS):
            if p.sub is not None:
                out += [_join(q.toks) for q in p.sub.parts if q.kind in _ADJUNCTS and
                        q.kind != "clause"]
            continue
        if not keep and p.kind in _ADJUNCTS or p.kind == "clause":
            # a question asks about the main clause: "How long have I been a cataloguer at the
            # library?", not "... which feels mad when I say it?" (the clause is asked alone)
            continue
        if not keep and p.kind == "pp" and target is not None and target.kind != "pp" and \
                p.prep not in ("to", "of", "about", "as", "with", "for", "in", "on", "at",
                               "from"):
            continue
        out.append(_join(p.toks))
    return out


def _ask(cl: Clause, wh: str | None, target: Part | None = None, strand: str = "",
         keep: bool = True, vp: Part | None = None, vp_do: bool = False,
         positive: bool = False) -> str | None:
    """Build a question from the clause, asking for ``target`` with ``wh``; None if it can't.
    ``positive`` drops a negation (a yes/no question about "I don't eat meat")."""
    subj = _subj_text(cl.subj)
    aux0, before, rest = _aux_split(cl)
    if positive:
        before = [t for t in before if t.tag != "NEG"]
        rest = [t for t in rest if t.tag != "NEG"]
        if aux0 is not None and aux0.low in _NEG_AUX:
            aux0 = Tok(_POSITIVE.get(aux0.low, aux0.low), _POSITIVE.get(aux0.low, aux0.low),
                       "AUX", aux0.lemma)
        cl = Clause(subj=cl.subj, aux=cl.aux, verb=cl.verb, prt=cl.prt, parts=cl.parts,
                    front=cl.front, pre=[t for t in cl.pre if t.tag != "NEG"],
                    copula=cl.copula, past=cl.past, third=cl.third, plural=cl.plural)
    words: list[str] = [wh] if wh else []
    front = [p for p in cl.front if p is not target and p.kind != "clause"] if keep else []
    if target is not None and target in cl.front:
        front = [p for p in cl.front if p is not target and p.kind != "clause"] if keep else []
    vp_word = ""
    if aux0 is not None:
        words.append(_aux_word(aux0, cl))
        words.append(subj)
        words += [t.text for t in before]
        words += [_aux_word(t, cl) if t.tag in ("AUX", "MODAL") else t.text for t in rest]
        if vp_do:
            last = [t for t in cl.aux if t.tag in ("AUX", "MODAL")][-1]
            if cl.copula:
                return None
            vp_word = "doing" if last.lemma == "be" else ("done" if last.lemma == "have"
                                                          else "do")
            words.append(vp_word)
        elif cl.verb is not None:
            words.append(cl.verb.text)
    else:
        if cl.verb is None:
            return None
        third = cl.third and not cl.plural
        do = "did" if cl.past else ("does" if third else "do")
        words += [do, subj]
        words += [t.text for t in cl.pre]
        if vp_do:
            if cl.verb.lemma in ("be", "do"):
                return None
            vp_word = "do"
            words.append("do")
        else:
            words.append(cl.verb.lemma)
    if not vp_word:
        words += [t.text for t in cl.prt]
    rendered = _render(cl.parts, target, keep, vp, vp_word, strand)
    if rendered is None:
        return None
    words += rendered
    for p in front:
        if not vp_word or p.kind in _ADJUNCTS:
            text = _join(p.toks)
            words.append(text if p.toks[0].tag == "PROPN" else text[:1].lower() + text[1:])
    if strand and target is not None and target in cl.front:
        words.append(strand)
    return _finish(words)


def _finish(words: list[str]) -> str:
    q = " ".join(w for w in words if w)
    q = re.sub(r"\s+([,.!?;:])", r"\1", q)
    q = re.sub(r"\s+'s\b", "'s", q)
    q = re.sub(r"\s+n't\b", "n't", q)
    q = re.sub(r"\bi\b", "I", q)
    q = re.sub(r"\s{2,}", " ", q).strip(" ,")
    q = q[:1].upper() + q[1:]
    return q.rstrip(".!?,;: ") + "?"


def _forms(cl: Clause) -> dict[str, str]:
    """The clause subject as the asker says it: subject, possessive, object, be, do."""
    subj = _subj_text(cl.subj)
    low = subj.lower()
    if low in ("i",):
        return {"s": "I", "poss": "my", "obj": "me", "be": "am", "do": "do", "have": "have",
                "was": "was"}
    if low == "we" or cl.plural and low.endswith(" and i"):
        return {"s": subj, "poss": "our", "obj": "us", "be": "are", "do": "do", "have": "have",
                "was": "were"}
    if low in ("he", "she", "it", "they", "there", "this", "that", "you"):
        return {}
    poss = subj + ("'" if subj.endswith("s") and cl.plural else "'s")
    if cl.plural:
        return {"s": subj, "poss": poss, "obj": subj, "be": "are", "do": "do", "have": "have",
                "was": "were"}
    return {"s": subj, "poss": poss, "obj": subj, "be": "is", "do": "does", "have": "has",
            "was": "was"}


def _frames(cl: Clause) -> list[str]:
    """Paraphrases for common kinds of fact, found through the hypernym lexicon."""
    f = _forms(cl)
    if not f:
        return []
    s, poss, do, be, obj, have = f["s"], f["poss"], f["do"], f["be"], f["obj"], f["have"]
    qs: list[str] = []
    verb = cl.verb.lemma if cl.verb is not None else ""
    parts = [p for p in cl.parts if p.kind not in ("adv",)]
    first = parts[0] if parts else None
    times = [p for p in cl.parts + cl.front if p.kind == "time"]
    # jobs
    job_part = None
    if cl.copula and first is not None and first.kind == "np" and _is_job(first):
        job_part = first
    for p in parts:
        if p.kind == "pp" and p.prep == "as" and verb in ("work", "") and _is_job(p):
            job_part = p
    # "restores old furniture for a living" says what someone does for work without a job noun
    if job_part is None:
        job_part = next((p for p in parts if p.kind == "pp"
                         and _join(p.toks).lower() == "for a living"), None)
    if job_part is not None and not cl.past:
        qs += [f"What is {poss} job?", f"What {do} {s} do for work?",
               f"What {do} {s} do for a living?", f"What is {poss} profession?",
               f"What {do} {s} work as?"]
    elif job_part is not None:
        qs += [f"What was {poss} job?", f"What did {s} do for a living?",
               f"What did {s} work as?", f"What was {poss} profession?"]
    if verb == "work" and not cl.past:
        for p in parts:
            if p.kind == "pp" and p.prep in ("at", "for") and p.head is not None:
                qs += [f"Where {do} {s} work?", f"Who {do} {s} work for?",
                       f"Which company {do} {s} work for?", f"Who is {poss} employer?"]
                break
    # names
    subj_lows = [t.low for t in cl.subj]
    if cl.copula and first is not None and first.kind == "np" and first.head is not None and \
            first.head.tag == "PROPN" and all(t.tag == "PROPN" for t in first.toks):
        name = _join(first.toks)
        if subj_lows in (["i"],) and not _categories(first):
            qs += ["What is my name?", "Who am I?", "What am I called?",
                   "What should you call me?"]
        elif subj_lows[-1:] == ["name"] and len(cl.subj) > 1:
            owner = _subj_text(cl.subj[:-1])
            if owner.endswith("'s"):
                owner_np = owner[:-2].rstrip()
            else:
                owner_np = owner
            if owner_np.lower() == "my":
                qs += ["What is my name?", "Who am I?", "What am I called?"]
            else:
                qs += [f"What is {owner_np} called?", f"What is the name of {owner_np}?",
                       f"Who is {name}?"]
        elif subj_lows and subj_lows[0] in ("my", "our") or "'s" in subj_lows:
            qs += [f"Who is {name}?", f"What is the name of {s}?", f"What is {poss} name?"]
    if cl.verb is not None and cl.verb.low in ("called", "named") and first is not None and \
            first.kind == "np" and cl.subj and cl.subj[0].low not in ("i", "we"):
        name = _join(first.toks)
        qs += [f"What is {poss} name?", f"What is the name of {s}?", f"Who is {name}?"]
    elif cl.verb is not None and cl.verb.low in ("called", "named") and subj_lows == ["i"] and \
            first is not None and first.toks[0].tag == "PROPN":  # not "I named my car Mustard"
        qs += ["What is my name?", "Who am I?", "What should you call me?"]
    # possessions, pets, named things
    for p, owner in _walk(cl):
        if p.kind != "np" or p.head is None or owner is not cl and not owner.nested:
            continue
        ov = owner.verb.lemma if owner.verb is not None else ""
        ovl = owner.verb.low if owner.verb is not None else ""
        if ov not in _HAVE_VERBS and ovl not in _HAVE_VERBS:
            continue
        cats = _categories(p)
        head = p.head.text
        mine = f"{poss} {head}"
        pdo = "did" if owner.past else do
        pverb = ov if ov else "have"
        if p.name and _noun_plural(p.head.low):
            qs += [f"What are {mine} called?", f"What are the names of {mine}?",
                   f"What are {mine}' names?"]
            for nm in re.split(r"\s*(?:,|\band\b|&)\s*", _join(p.name)):
                if nm:
                    qs.append(f"Who is {nm}?")
        elif p.name:
            name = _join(p.name)
            qs += [f"What is {mine}'s name?", f"What is {mine} called?",
                   f"What is the name of {mine}?", f"Who is {name}?"]
            if ov in ("have", "get", "own") and not owner.past and not _noun_plural(
                    p.head.low):
                qs.append(f"What is the name of the {head} {s} {have}?")
        if "pet" in cats:
            qs += [f"What pet {pdo} {s} {pverb}?", f"What kind of pet {pdo} {s} {pverb}?",
                   f"What animal {pdo} {s} {pverb}?"]
            if ov == "have" and not owner.past:
                qs.append(f"Does {s} have any pets?" if do == "does" else f"Do {s} have any pets?")
            kind = next((c for c in cats if c in ("dog", "cat")), "")
            if kind:
                qs += [f"What kind of {kind} {pdo} {s} {pverb}?", f"What breed is {poss} {kind}?"]
                if p.name and not _noun_plural(p.head.low):
                    qs.append(f"What is {poss} {kind}'s name?")
        if p.toks[0].tag == "NUM" and "pet" not in cats:
            rel = [c for c in cats if c in ("sibling", "child", "parent", "grandparent")]
            if rel:
                word = {"sibling": "siblings", "child": "children", "parent": "parents",
                        "grandparent": "grandparents"}[rel[0]]
                qs.append(f"How many {word} {pdo} {s} {pverb}?")
    # age
    if cl.copula and first is not None and first.kind == "np" and _age_like(first):
        qs += [f"How old {be} {s}?", f"What is {poss} age?"]
    if verb == "turn" and first is not None and first.toks[0].tag == "NUM":
        qs += [f"How old {be} {s}?", f"What is {poss} age?"]
    # birth
    if cl.verb is not None and cl.verb.low == "born" or "born" in [
            t.low for p in parts if p.kind == "adj" for t in p.toks]:
        for p in cl.parts + cl.front:
            if p.kind == "time":
                qs += [f"When was {s} born?", f"When is {poss} birthday?",
                       f"What is {poss} date of birth?"]
                if any(re.fullmatch(r"(?:19|20)\d\d", t.low) for t in p.toks):
                    qs.append(f"What year was {s} born?")
            elif p.kind == "pp" and p.prep in ("in", "at"):
                qs += [f"Where was {s} born?", f"What is {poss} birthplace?"]
    # origin and home
    if cl.copula and first is not None and first.kind == "pp" and first.prep == "from":
        qs += [f"Where {be} {s} from?", f"What is {poss} hometown?",
               f"Where {do} {s} come from?"]
    if verb in ("grow", "raise") and any(p.kind == "pp" for p in parts):
        qs += [f"Where did {s} grow up?", f"What is {poss} hometown?"]
    if verb in ("live", "reside", "move", "relocate", "base") and any(
            p.kind == "pp" and p.prep in ("in", "to", "at", "near") for p in parts):
        moved = verb in ("move", "relocate") and (cl.past or any(
            a.lemma == "have" for a in cl.aux))
        if verb in ("live", "reside", "base") and not cl.past or moved:
            qs += [f"Where {do} {s} live?", f"Where is {poss} home?"]
        if moved:
            qs.append(f"Where did {s} move to?")
            if times:
                qs.append(f"When did {s} move?")
    # hobbies, sports, instruments
    hobby_verbs = _words("love like enjoy do play go practice practise collect start take "
                         "learn adore")
    for p, owner in _walk(cl):
        cats = _categories(p) if p.kind in ("np", "ger", "pp") else []
        if p.kind == "ger" and p.sub is not None and p.sub.verb is not None:
            cats = _CATEGORY.get(p.sub.verb.low, []) or cats
        ov = owner.verb.lemma if owner.verb is not None else ""
        if owner is not cl and not owner.nested or cl.past:
            continue
        if cats and ("hobby" in cats or "sport" in cats or "instrument" in cats
                     or "game" in cats) and (ov in hobby_verbs or cl.verb is not None
                                             and cl.verb.lemma in hobby_verbs):
            qs += [f"What is {poss} hobby?", f"What {do} {s} do for fun?",
                   f"What {do} {s} do in {poss} free time?"]
            if "sport" in cats:
                qs.append(f"What sport {do} {s} do?")
            if "instrument" in cats:
                qs += [f"What instrument {do} {s} play?",
                       f"{'Does' if do == 'does' else 'Do'} {s} play an instrument?"]
            break
    if verb == "collect":
        qs += [f"What {do} {s} collect?", f"What is {poss} hobby?"]
    # likes: "I love sushi" -> favourite food
    if verb in ("love", "adore", "like", "enjoy", "hate", "dislike", "prefer", "detest",
                "loathe") and first is not None and first.kind in ("np", "ger"):
        thing = _join(first.toks)
        qs += [f"How {do} {s} feel about {thing}?", f"What {do} {s} think of {thing}?"]
        if verb in ("hate", "dislike", "detest", "loathe"):
            qs.append(f"What {do} {s} dislike?")
        else:
            qs.append(f"What {do} {s} like?")
    if verb in ("love", "adore", "like", "enjoy", "prefer") and first is not None and \
            first.kind == "np":
        cats = _categories(first)
        for c in cats[:1]:
            if c not in ("job", "sibling", "parent", "child", "grandparent", "partner"):
                qs += [f"What is {poss} favourite {c}?", f"What {c} {do} {s} like?"]
    fav = ("favourite", "favorite", "fav", "fave")
    if any(t.low in fav for t in cl.subj) and cl.copula:
        heads = [t for t in cl.subj if t.tag == "NOUN"]
        if heads:
            noun = heads[-1].text
            owner = _subj_text(cl.subj[:[t.low for t in cl.subj].index(
                next(x for x in subj_lows if x in fav))])
            if owner.lower() in ("my", "our"):
                qs += [f"What {noun} do I like best?", f"What is my favorite {noun}?",
                       f"What is my favourite {noun}?"]
            else:
                qs.append(f"What {noun} does {owner.removesuffix(chr(39) + 's')} like best?")
    # allergies, fears, feelings
    adj = [p for p in parts if p.kind == "adj" or p.kind == "np" and p.head is not None and
           p.head.low in ("allergic",)]
    lows = {t.low for p in cl.parts for t in p.toks} | {t.low for t in [cl.verb] if t}
    if "allergic" in lows:
        qs += [f"What allergies {do} {s} have?", f"What {be} {s} allergic to?",
               f"{'Does' if do == 'does' else 'Do'} {s} have any allergies?"]
    if lows & _FEAR_WORDS:
        qs += [f"What {be} {s} afraid of?", f"What scares {obj}?", f"What {do} {s} fear?"]
    emo = [t for p in adj for t in p.toks if t.low in _EMOTIONS]
    if cl.copula and emo or verb == "feel":
        about = [p for p in parts if p.kind == "pp" and p.prep in ("about", "with", "for")]
        tail = " " + _join(about[0].toks) if about else ""
        qs += [f"How {do} {s} feel{tail}?", f"How {be} {s} feeling{tail}?"]
    # plans and wishes
    future = any(t.low in ("will", "'ll", "going", "gonna") for t in cl.aux + [cl.verb] if t)
    plan_verbs = ("plan", "hope", "want", "intend", "aim", "wish", "dream", "would")
    if future or verb in plan_verbs:
        when_txt = " " + _join(times[0].toks) if times else ""
        qs += [f"What are {poss} plans{when_txt}?", f"What {be} {s} planning to do{when_txt}?"]
        if verb in ("want", "wish", "dream", "hope") or any(t.low in ("'d", "would")
                                                            for t in cl.aux):
            qs.append(f"What is {poss} wish?")
    # study
    if verb in ("study", "major") and first is not None:
        qs += [f"What {'did' if cl.past else do} {s} study?", f"What is {poss} field of study?"]
    # languages
    for p, _ in _walk(cl):
        if p.kind in ("np", "pp") and "language" in _categories(p):
            if verb in ("speak", "learn", "study", "know") or verb == "" and cl.copula:
                qs.append(f"What languages {'does' if do == 'does' else 'do'} {s} speak?"
                          if verb in ("speak", "know") else f"What language {be} {s} learning?")
            break
    return qs


def _topic_questions(cl: Clause | None, st: Statement, toks: list[Tok]) -> list[str]:
    qs: list[str] = []
    names: list[str] = []
    run: list[str] = []
    seq = toks + [Tok("", "", "PUNCT")]
    for i, t in enumerate(seq):
        if t.low == "&" and run and seq[i + 1].tag == "PROPN":
            run.append(t.text)
            continue
        if (t.tag == "PROPN" or t.tag == "NOUN" and not _lemmas(t.low) and t.low not in _META
                and len(t.low) > 2) and t.low not in _MONTH_LOW and t.low not in _WEEKDAY_LOW \
                and t.low[:-1] not in _WEEKDAY_LOW:
            run.append(t.text)
        elif run:
            names.append(" ".join(run))
            run = []
    person_names: set[str] = set()
    nps: list[str] = []
    if cl is not None:
        for p, _ in _walk(cl):
            if p.name and p.head is not None and (p.head.low in _PERSON_NOUNS or "pet" in (
                    _CATEGORY.get(p.head.low, []))):
                person_names.add(_join(p.name))
        if cl.subj and any(t.tag == "PROPN" for t in cl.subj):
            person_names.add(" ".join(t.text for t in cl.subj if t.tag == "PROPN").split(
                " 's")[0])
        if cl.subj and cl.subj[0].low not in ("i", "we", "he", "she", "it", "they", "there",
                                              "this", "that", "you"):
            subj_toks = cl.subj
            if len(subj_toks) > 2 and subj_toks[-1].low == "name" and subj_toks[-2].tag == \
                    "POSS_S":
                subj_toks = subj_toks[:-2]
            nps.append(_subj_text(subj_toks))
        for ref in _referents(cl, st.subject):
            if ref.phrase not in nps and ref.phrase.startswith(("my ", "our ")):
                nps.append(ref.phrase)
        for p, _ in _walk(cl):
            if p.kind in ("np", "pp") and p.toks and p.head is not None:
                lead = p.toks[1:] if p.kind == "pp" else p.toks
                if lead and lead[0].low in ("my", "our"):
                    end = lead.index(p.head) + 1 if p.head in lead else len(lead)
                    phrase = _join(lead[:end])
                    if phrase not in nps:
                        nps.append(phrase)
    for nm in names:
        qs += [f"What do you know about {nm}?", f"What did I tell you about {nm}?"]
        if nm in person_names or any(nm in x for x in person_names):
            qs.append(f"Who is {nm}?")
    for np_ in nps:
        if np_.split()[0] in ("My", "Our", "The", "A", "An"):
            np_ = np_[0].lower() + np_[1:]
        qs += [f"What do you know about {np_}?", f"Tell me about {np_}.",
               f"What did I tell you about {np_}?"]
    main_verbs = {id(c.verb) for c in ([cl] + cl.coord if cl is not None else []) if c.verb}
    owned = {x.split()[-1].lower() for x in nps}
    content = [t for t in toks if t.tag in ("NOUN", "VERB") and t.low not in _META and
               id(t) not in main_verbs and t.low not in _MEASURE_ADJ and t.low not in owned and
               t.low not in _REQUEST_VERBS and t.low not in _TIME_NOUNS and
               (t.tag != "VERB" or t.low.endswith("ing")) and len(t.low) > 2 and
               t.low not in _PERSON_NOUNS and _lemmas(t.low)]
    for t in content[:3]:
        word = t.text
        qs.append(f"What did I tell you about {word}?")
    return [q if q.endswith((".", "?")) else q + "?" for q in qs]


_DATE_TEXT = re.compile(
    rf"\b(?:{'|'.join(m.capitalize() for m in _MONTH_LOW if len(m) > 3)})"
    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?)?(?:,?\s+(?:19|20)\d\d)?\b")


def _insitu(st: Statement) -> list[str]:
    """The first-person sentence with one content word asked for in place ("I live in what?")."""
    qs = []
    date = _DATE_TEXT.search(st.first_person)
    if date:  # a date is asked whole: "... is on what date?", never "June 10, what?"
        qs.append(_finish([st.first_person[:date.start()], "what date",
                           st.first_person[date.end():]]))
    in_date = set(date.group(0).replace(",", " ").lower().split()) if date else set()
    toks = _tokenize(st.first_person)
    for i in range(len(toks) - 1, -1, -1):
        t = toks[i]
        if t.tag in ("NOUN", "PROPN", "NUM") and t.low not in _META and t.low not in in_date:
            wh = "who" if t.low in _PERSON_NOUNS else "what"
            j = i
            while j > 0 and toks[j - 1].tag in ("DET", "ADJ", "NUM", "PROPN", "NOUN", "POSS"):
                j -= 1
            if j < i and toks[j].tag == "POSS" and toks[j].low in ("my", "our"):
                j += 1
            words = [x.text for x in toks[:j]] + [wh] + [x.text for x in toks[i + 1:]]
            qs.append(_finish([_join(toks[:j]), wh, _join(toks[i + 1:])]) if words else "")
            if len(qs) >= 2:
                break
    return [q for q in qs if q and len(q.split()) > 2]


_GENERALISABLE = frozenset({"pet", "instrument", "vehicle", "hobby", "sport", "plant", "food",
                            "drink", "language", "game"})
# the animal a breed is ("spaniel": a dog), asked by as often as the breed
_KINDS = frozenset({"dog", "cat"})
_OWNER = re.compile(r"\b(my|our|your)\s+([^\W\d_]+)\b", re.I)


_NAMED = re.compile(
    r"\b(?:a|an|my|our|the|his|her|their)\s+((?:[a-z-]+\s+){0,2}[a-z-]+)\s*,?\s+"
    r"(?:named|called)\s+[A-Z]")


def _named_questions(first_person: str) -> list[str]:
    """"... a tortoise named Gustavo" anywhere in a sentence: the name of the thing is asked
    for as people ask it, whatever the rest of the sentence is about."""
    out = []
    for m in _NAMED.finditer(first_person):
        head = m.group(1).split()[-1]
        if head in _DET | _PREP | _POSS | _SUBJ_PRON or head == "person":
            continue
        owner = "my" if re.match(r"(?:a|an|my|the)\b", m.group(0)) else "our"
        out += [f"What is {owner} {head} called?", f"What is the name of {owner} {head}?"]
    # "my car ... and I named her Mustard", "I named my car Mustard"
    _, own, person = _named_it(first_person)
    own = "" if person else own
    n = _NAMED_OWN.search(first_person)
    thing = own if own else f"{n.group(1)} {n.group(2)}".lower() if n and n.group(2).lower(
        ) not in _PERSON_NOUNS else ""
    if thing:
        out += [f"What is {thing} called?", f"What did I name {thing}?"]
    return out


_NAME = r"(?P<name>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})"
_NOT_BE = r"(?!(?:is|was|are|were)\b)"
_NP = (r"(?P<det>[Aa]n?|[Mm]y|[Oo]ur|[Tt]he)\s+"
       rf"(?P<np>(?:{_NOT_BE}[\w-]+\s+){{0,2}}?{_NOT_BE}[a-z-]+)")
_NAMED_THINGS = [
    # "a grey cat named Pimbrook", "my bike, called Rosie"
    re.compile(rf"\b{_NP}\s*,?\s+(?:named|called)\s+{_NAME}"),
    # "a mustard-yellow 1978 estate I call Bertrand"
    re.compile(rf"\b{_NP}\s+(?:I|we)\s+(?:call|named|called)\s+{_NAME}"),
    # "The cat, I should say, is called Lord Fenwick"
    re.compile(rf"\b{_NP}\s*(?:,[^,]{{1,40}},\s*)?\s+(?:is|was)\s+(?:called|named)\s+{_NAME}"),
    # "I named my car Mustard" (also what "I named her Mustard" after "my car" becomes)
    re.compile(rf"\b(?:named|called|call)\s+(?P<det>my|our)\s+(?P<np>[a-z-]+)\s+{_NAME}"),
]
# "my old spaniel Pimbleton", "our boat Marigold": a name right after a thing of the user's;
# only for kinds of thing people name (a pet, a vehicle, an instrument, a plant), so "my shift
# Tom covered" names nothing. People named this way are the rules' ("my grandson Thaddeus").
_APPOSED_NAME = re.compile(
    rf"\b(?P<det>[Mm]y|[Oo]ur)\s+(?P<np>(?:{_NOT_BE}[a-z-]+\s+){{0,2}}?{_NOT_BE}[a-z-]+)\s+{_NAME}")
_NAMEABLE = frozenset({"pet", "vehicle", "instrument", "plant"})
_NOT_A_NAME = frozenset(d.lower() for d in _WEEKDAYS + _MONTHS) | _words("i christmas easter")
_OWNING = re.compile(r"\b(?:have|has|had|got|get|getting|own|owns|owned|adopted|adopt|keep|"
                     r"keeps|kept|rescued|bought|raise|raised|inherited|fostered)\b", re.I)
_APPOSITION = re.compile(r"\b(?:my|our)\s+(?:[\w-]+\s+){0,2}([a-z-]+),\s*$", re.I)
_NOT_NAMED = _words("one ones thing things name names way place time kind sort lot bit")


def named_things(first_person: str, apposed: bool = True) -> list[tuple[str, str]]:
    """(noun, name) for each thing or person of the user's a sentence gives a name anywhere
    in it: "We have two animals: a grey cat named Pimbrook and an elderly tortoise called
    Ossery" gives ("cat", "Pimbrook") and ("tortoise", "Ossery"). The caller trains each as
    a short fact of its own, so two names in one sentence are asked and answered apart.
    "A" things count only when the sentence says the user has them ("I went to a café
    called Tapioca" names no café of the user's). A name right after a pet, a vehicle, an
    instrument or a plant of the user's counts too ("my old spaniel Pimbleton"), unless
    ``apposed`` is False."""
    found: dict[str, tuple[str, str]] = {}
    for m in _APPOSED_NAME.finditer(first_person) if apposed else ():
        np_words, name = m.group("np").lower().split(), re.sub(r"['’]s$", "", m.group("name"))
        if name.split()[0].lower() in _NOT_A_NAME or {"favourite", "favorite", "fave"} & set(
                np_words) or not _NAMEABLE & set(_CATEGORY.get(np_words[-1], [])):
            continue
        found.setdefault(name.lower(), (np_words[-1], name))
    for rx in _NAMED_THINGS:
        for m in rx.finditer(first_person):
            det, noun = m.group("det").lower(), m.group("np").split()[-1].lower()
            name = m.group("name")
            if name.split()[-1] == "I":
                name = " ".join(name.split()[:-1])
            if not name or noun in _NOT_NAMED | _DET | _PREP | _POSS | _SUBJ_PRON | _OBJ_PRON \
                    or _noun_plural(noun):  # "one of my favourite pieces is called X"
                continue
            before = first_person[:m.start()]
            pet = "pet" in _CATEGORY.get(noun, [])
            apposition = _APPOSITION.search(before)  # "my old car, a 1978 estate I call X"
            if apposition and det in ("a", "an"):
                noun = apposition.group(1).lower()
            elif det in ("a", "an", "the") and not _OWNING.search(before) and not (
                    det == "the" and m.start() == 0 and pet):
                continue
            found.setdefault(name.lower(), (noun, name))
    return list(found.values())


def generalised(questions: list[str], breeds: bool = False) -> list[str]:
    """Span questions with the thing named by its kind ("What is my tortoise called?" → "What
    is my pet called?"): people ask with the general word as often. With ``breeds``, for the
    name of an animal, a breed is asked by its animal too ("my spaniel" → "my dog"; not for
    any sentence: "my lab" is more often a laboratory). Two pets make such a question
    ambiguous, so the caller keeps it only where one answer fits (see formation)."""
    out = []
    for q in questions:
        m = _OWNER.search(q)
        cats = _CATEGORY.get(m.group(2).lower(), []) if m else []
        if not breeds and _KINDS & set(cats) and m.group(2).lower() not in PET_RELATIONS:
            continue  # a breed word: "my lab", "my boxer", "my pointer" in any sentence
        kind = next((c for c in cats if c in _KINDS and c != m.group(2).lower()), None)
        cat = next((c for c in cats if c in _GENERALISABLE and c != m.group(2).lower()), None)
        out += [q[:m.start(2)] + c + q[m.end(2):] for c in dict.fromkeys((kind, cat)) if c]
    return out


# "my brother Fenwick's", "my little sister Ann": a person or pet of the user's with its name
_OWN_NAMED = re.compile(r"\b((?:my|our)\s+(?:[a-z-]+\s+)?([a-z-]+))\s+"
                        r"([A-Z][a-z][\w-]*(?:\s+[A-Z][a-z][\w-]*)?)(?='s\b|\b)")


def unnamed(questions: list[str], limit: int = 2) -> list[str]:
    """Questions about a named person or pet of the user's asked without the name ("What is my
    brother Fenwick's job?" → "What is my brother's job?"): people ask "my brother", and a
    question with the name answers only questions with it. Two brothers make it ambiguous;
    the caller drops a question trained with two answers (see formation)."""
    out = []
    for q in questions:
        m = _OWN_NAMED.search(q)
        if m is None or len(out) >= limit:
            continue
        noun = m.group(2).lower()
        # "Is my partner Thijs?" asks whether the name is right: it is no name in apposition
        apposition = re.match(r"'s\b|\s+\w", q[m.end(3):]) is not None
        if apposition and (noun in _PERSON_NOUNS or "pet" in _CATEGORY.get(noun, [])):
            out.append(q[: m.end(1)] + q[m.end(3):])
    return out


_LONG_QUESTION = 12  # words


def questions_for(statement: Statement, n: int = 8, seed: int = 0) -> list[tuple[str, str]]:
    """Up to ``n`` (question, answer) pairs for a statement; every answer is the restated
    statement. Span questions come first, then category paraphrases, dates, topics, a yes/no
    question; within each group the order is shuffled by ``seed`` (deterministic)."""
    fp = statement.first_person or _canonical(strip_discourse(statement.text))
    answer = statement.restated or to_second_person(fp)
    toks = _tokenize(fp)
    cl = _parse_clause(toks)
    groups: dict[str, list[str]] = {"span": [], "category": [], "when": [], "topic": [],
                                    "other": []}
    clauses = [cl] + (cl.coord if cl is not None else []) if cl is not None else []
    for c in list(clauses):  # "because my girlfriend is from Busan": asked on its own too
        for p in c.parts + c.front:
            if p.kind == "clause" and len(p.toks) > 2:
                inner = p.toks[1:] if p.prep != "," else p.toks[1:]
                sub = _parse_clause(inner, allow_drop=False)
                if sub is not None and sub.subj and sub.subj[0].low not in (
                        "it", "this", "that", "there", "they", "you", "he", "she"):
                    clauses.append(sub)
    for c in clauses:
        for t in _targets(c):
            if not t.wh:
                continue
            if t.type == "verb_object" and c.verb is not None and c.verb.lemma in (
                    "have", "get", "own") and (t.category or t.part.name):
                continue  # "What do I have?" fits every possession: asked by category instead
            q = _ask(c, t.wh, t.part, t.strand, keep=True)
            short = _ask(c, t.wh, t.part, t.strand, keep=False)
            key = "when" if t.type in ("date", "duration", "frequency") else "span"
            if t.type == "activity" and t.part.sub is not None:
                if t.part.kind == "ger" and c.verb is not None and c.verb.lemma == "go":
                    q = _ask(c, "what", None, "", keep=True, vp_do=True)
                    short = None
                else:
                    q = _ask(c, "what", None, "", keep=True, vp=t.part)
                    short = _ask(c, "what", None, "", keep=False, vp=t.part)
            for x in (q, short):
                if x:
                    groups[key].append(x)
            if t.category and t.category not in _RELATION_CATS and t.category not in [
                    x.low for x in c.subj]:
                kind = "what kind of" if t.category in _KIND_OF else (
                    "which" if t.category in ("city", "country", "company") else "what")
                cq = _ask(c, f"{kind} {t.category}", t.part, t.category_strand or t.strand,
                          keep=False)
                if cq:
                    groups["category"].append(cq)
        groups["category"] += _frames(c)
        if any(p.kind in ("time", "freq") for p in c.parts + c.front) and c.verb is not None \
                and c.verb.lemma not in ("be", "have", "do", "live"):
            q = _ask(c, "what", None, "", keep=True, vp_do=True)
            if q:
                groups["when"].append(q)
        yn = _ask(c, None, None, "", keep=True, positive=True)
        if yn:
            groups["other"].append(yn)
    # "What is my tortoise called?" is how a named thing is asked about: it leads its group
    groups["span"] = _named_questions(fp) + groups["span"]
    groups["topic"] = _topic_questions(cl, statement, toks)
    if cl is None:
        groups["other"] += _insitu(statement)
    rng = random.Random(int(hashlib.sha256(f"{seed}|{fp}".encode()).hexdigest()[:12], 16))
    seen: set[str] = set()
    ordered: dict[str, list[str]] = {}
    for key, qs in groups.items():
        uniq = []
        for q in qs:
            q = re.sub(r"\s{2,}", " ", q).strip()
            k = q.lower().rstrip("?.")
            if k in seen or len(q) < 6:
                continue
            seen.add(k)
            uniq.append(q)
        head, tail = uniq[:1], uniq[1:]
        rng.shuffle(tail)
        ordered[key] = head + tail
    out: list[str] = []
    order = ["span", "category", "when", "topic", "other"]
    # a question that copies most of a long sentence is never how anyone asks: the short
    # ones of every group go first, so a cycle's few phrasings per fact are questions people
    # ask, and the long ones only fill what is left
    for long in (False, True):
        rounds = {k: [q for q in ordered[k] if (len(q.split()) > _LONG_QUESTION) == long]
                  for k in order}
        while len(out) < n and any(rounds[k] for k in order):
            for k in order:
                if rounds[k] and len(out) < n:
                    out.append(rounds[k].pop(0))
    return [(q, answer) for q in out]
