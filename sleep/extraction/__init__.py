"""Deterministic fact extraction and Q&A generation, grounded in the user's own words.

The bundled model (SmolLM2-135M) cannot extract facts reliably (../shared/LESSONS.md: the paper's 3B
model produced "0 fact pairs"), so this package does the dependable part with patterns:

* ``extract_facts`` (:mod:`.rules`, over the word lists of :mod:`.vocabulary` and the regex
  blocks of :mod:`.patterns`) splits a user's message into sentences and matches first-person
  statements ("I live in Lisbon", "my sister is called Mia") and statements about named third
  parties ("Andre Patandre is a music producer", "His wife is Solveig"), resolving
  he/she/his/her to the most recent compatible person. ``ExtractionContext``
  (:mod:`.context`) carries who "he" is across messages.
* ``qa_pairs`` (:mod:`.questions`) turns a fact into several question phrasings (a small model
  only retrieves a fact it saw phrased several ways) whose answers restate the fact and always
  contain its value; relation facts also get reversed questions ("Who is Mia?" -> "Mia is your
  sister.").
* ``grounded`` (:mod:`.grounding`) checks that a value is supported by what the user actually
  wrote, so answers a model invented can be dropped; ``EXTRACTION_PROMPT`` and
  ``parse_model_extraction`` (:mod:`.model_output`) are the model-based extraction's prompt
  and tolerant parser (the model call lives in the pipeline).
"""

from sleep.extraction.context import ExtractionContext
from sleep.extraction.grounding import dedupe_pairs, grounded
from sleep.extraction.model_output import EXTRACTION_PROMPT, parse_model_extraction
from sleep.extraction.questions import qa_for_facts, qa_pairs
from sleep.extraction.rules import extract_conversation, extract_facts, merge_facts
from sleep.extraction.text import normalise, split_sentences
from sleep.extraction.vocabulary import PERSON_RELATIONS, PET_RELATIONS

__all__ = [
    "EXTRACTION_PROMPT",
    "PERSON_RELATIONS",
    "PET_RELATIONS",
    "ExtractionContext",
    "dedupe_pairs",
    "extract_conversation",
    "extract_facts",
    "grounded",
    "merge_facts",
    "normalise",
    "parse_model_extraction",
    "qa_for_facts",
    "qa_pairs",
    "split_sentences",
]
