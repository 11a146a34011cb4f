"""Word lists for generated benchmark text."""

from __future__ import annotations

from functools import cache

# Common news words, most frequent first: generators draw them with Zipf weights.
_NEWS_TEXT = """
the of and to in a said on for that with was as by at from is it has have are its were would will but
not be this an their which after over more than year percent government officials minister president
company market prices economy growth bank shares investors week month people country state city police
court report reported according statement spokesman told reporters on monday tuesday wednesday thursday
friday new first last two three million billion dollars euros quarter sales profit revenue demand supply
workers union talks meeting agreement plan policy law rules regulators industry factory production
exports imports trade deficit currency inflation interest rates central election vote party leader
parliament congress senate lawmakers security military defence foreign ministry spokeswoman analysts
expected estimate forecast data showed rose fell climbed dropped percent higher lower record since during
while because however also including between under against despite amid before across about around
region capital local national global international world china united states europe japan india britain
beijing washington brussels london tokyo shipments goods steel cars technology energy oil gas power
"""
NEWS_WORDS = _NEWS_TEXT.split()


@cache
def topic_terms() -> list[str]:
    """Two forms of every taxonomy term (so generated text carries topics)."""
    from pipeline.tagging.rules import Taxonomy

    taxonomy = Taxonomy.load()
    return [form for topic in taxonomy.topics for term in topic.terms for form in term.keys[:2]]
