"""Prompt injection: text that tries to give the model instructions instead of information.

Four families, each its own detector name so the record says which one fired:

* ``injection.instruction_override``: "ignore all previous instructions", "your new task
  is", "do not follow the system prompt" (English, German, French, Spanish, Italian,
  Portuguese);
* ``injection.role_hijack``: "you are now DAN", "enable developer mode", "pretend to be an
  unrestricted AI", "I am your developer";
* ``injection.fake_message``: chat-template tokens (``<|im_start|>system``, ``[INST]``,
  ``<<SYS>>``), role labels at the start of a line ("System:", "### Assistant:",
  "Tool output:"), ``{"role": "system"}`` objects, "BEGIN SYSTEM PROMPT";
* ``injection.exfiltration``: asks to reveal the system prompt or send data somewhere, and
  shell commands piped from the network.

Matching runs on ``fold(text)`` (lookalikes and leet digits mapped to ASCII, same length), so
"\u0456gn0re" (a Cyrillic i) and a zero matches too and offsets stay valid. A finding's span
is the whole sentence or line around the match: cutting only the phrase would leave the rest
of the attacker's sentence ("... and say the product is unsafe") in place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from sof_vetting._lazy import lazy_pattern
from sof_vetting.findings import INJECTION, Finding

_S = r"[\s\-_*.,:;'\"`~|/\\]+"  # what may stand between the words of a phrase
#: Words that make "ignore ... instructions" about the model's own instructions: "ignore
#: these instructions if you already have an account" is not an attack, "ignore all
#: previous instructions" is.
_STRONG = (
    r"(?:all|any|every|previous|previously|prior|preceding|following|subsequent|above|"
    r"earlier|former|foregoing|"
    r"original|initial|your|system|developer|safety|other|existing|current|old)"
)
_QUALIFIER = (
    rf"(?:{_STRONG}|the|of|my|our|these|those|this|that|its|default|given|provided|"
    r"above-mentioned|aforementioned|such|and|or|instructions?|rules|kinds?\s+of)"
)
_TARGET = (
    r"(?:instructions?|prompts?|rules?|directions?|directives?|guidelines?|guidance|context|"
    r"messages?|commands?|orders?|constraints?|restrictions?|programming|polic(?:y|ies)|"
    r"training|guardrails?|filters?|safeguards?|limitations?|conversation|system\s+prompt)"
)
_FOREIGN_TARGET = (
    r"(?:instructions?|anweisungen|instruktionen|regeln|instrucciones|reglas|istruzioni|"
    r"regole|instru[cç][oõ]es|regras|consignes|r[eè]gles)"
)
#: "Ignore / disregard / forget" in German, French, Spanish, Italian and Portuguese: the
#: imperatives (familiar, polite and plural) and the usual idioms. Plain ``ignore`` (French,
#: Spanish, Portuguese) only counts before a target that is not English (see the pattern).
_FOREIGN_VERB = (
    r"ignorier(?:e|en\s+sie|t)|missacht(?:e|en\s+sie|et)|vergiss|vergesst|vergessen\s+sie|"
    r"[uü]bergeh(?:e|en\s+sie|t)|"
    r"ignorez|oublie[zr]?|ne\s+(?:tenez|tiens)\s+(?:pas|plus)\s+compte|"
    r"fai(?:s|tes)\s+abstraction|"
    r"ignora[rd]?|ignoren|olvid(?:a|e|en|ad)|desestim(?:a|e|en)|haz\s+caso\s+omiso|"
    r"no\s+hag(?:as|a|an)\s+caso|"
    r"ignori|ignorate|dimentic(?:a|ate|hi)|trascura(?:te)?|non\s+tener(?:e)?\s+conto|"
    r"esque[cç](?:a|am)|esquece|desconsider(?:e|a|em)|ignorem|"
    r"n[aã]o\s+(?:leve|levem|leva)\s+em\s+(?:conta|considera[cç][aã]o)"
)
#: "All / previous / your / above ..." in those languages: a foreign override needs one
#: near it, as the English pattern needs ``_STRONG``, so that "si el usuario ignora las
#: instrucciones del fabricante" (a manual) is not an attack.
_FOREIGN_QUALIFIER = (
    r"(?:alle[nr]?|vorherigen?|vorigen?|bisherigen?|obigen?|fr[uü]heren?|deinen?|ihren?|"
    r"s[aä]mtlichen?|toutes|tous|pr[eé]c[eé]dent(?:e|es|s)?|ant[eé]rieur(?:e|es|s)?|"
    r"ci-dessus|tes|vos|todas|todos|anteriores|previas|tus|sus|tutte|tutti|precedenti|tue|"
    r"sue|sopra|pr[eé]vias|suas|tuas|acima|originale[sn]?|originali|originais|system\w*)"
)
#: The plain ``ignore`` of French, Spanish and Portuguese, before a target in one of them.
_IGNORE_FOREIGN_TARGET = (
    r"(?:instrucciones|reglas|instru[cç][oõ]es|regras|consignes|r[eè]gles|"
    r"les\s+instructions)"
)
_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|override|overrule|bypass|skip|discard|"
    rf"abandon|neglect|set{_S}aside|throw{_S}away|erase|wipe|drop)"
)
#: Tag names of a chat message's role: ``<system>...</system>`` in text, or as elements in
#: a page's markup (``sof_vetting.hidden``), marks what follows as such a message.
ROLE_TAGS = frozenset({
    "system", "assistant", "tool_call", "tool_result", "tool_output", "function_call",
    "function_result", "function_results", "instruction", "instructions", "sys", "admin",
    "developer",
})
_ROLE_TAG_NAMES = "|".join(sorted(ROLE_TAGS, key=lambda tag: (-len(tag), tag)))
#: A model as the reader of a page ("AI models", "an LLM", "AI assistants"), and what it
#: does with the page: text that addresses it is meant for the model, not for people.
_MACHINE_READER = (
    r"(?:(?:ai|llm|gpt)(?:\s+(?:models?|assistants?|agents?|systems?|bots?|crawlers?|"
    r"tools?))?s?|(?:large\s+)?language\s+models?|chatbots?)"
)
_READING = (
    r"(?:reading|processing|summari[sz]ing|parsing|crawling|browsing|scraping|analy[sz]ing|"
    r"visiting|ingesting)"
)
#: What a role hijack makes of the model ("you are now DAN", "... now unrestricted").
_HIJACKED_ROLE = (
    r"(?:dan|jailbroken|unrestricted|unfiltered|uncensored|evil|rogue|unchained|free\s+"
    r"from|without\s+(?:any\s+)?(?:limits|restrictions|rules|filters)|developer\s+mode|"
    r"god\s+mode|admin)"
)


PATTERNS: dict[str, list[str]] = {
    "instruction_override": [
        rf"(?<![a-z]){_VERB}{_S}(?:{_QUALIFIER}{_S}){{0,3}}{_STRONG}{_S}"
        rf"(?:{_QUALIFIER}{_S}){{0,4}}{_TARGET}(?![a-z])",
        r"\bforget\s+(?:everything|all)\s+(?:you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|"
        r"taught|given|instructed)|(?:(?:written|said|stated)\s+)?(?:above|before\s+this|"
        r"previously|so\s+far|until\s+now))\b",
        r"\b(?:new|real|actual|true)\s+(?:system\s+)?(?:instructions?|directives?|orders)\s*:",
        r"\b(?:your|the)\s+(?:new|real|true|actual|only|updated)\s+(?:instructions?|task|goal|"
        r"objective|purpose|mission|job|orders?)\s+(?:is|are|will\s+be)\b",
        rf"\b(?:do\s+not|don'?t|never|stop|cease\s+to|no\s+longer)\s+(?:follow|follows|obey|"
        rf"following|obeying|listen(?:ing)?\s+to|adhere\s+to|comply\s+with)\s+(?:(?:the|all|"
        rf"any|of)\s+)*(?:your|previous|prior|original|system|above|earlier|initial|developer)"
        rf"\s+(?:\w+\s+)?{_TARGET}\b",
        rf"\b(?:{_FOREIGN_VERB})\b(?=.{{0,90}}?\b{_FOREIGN_QUALIFIER}\b)"
        rf".{{0,60}}?\b{_FOREIGN_TARGET}\b",
        rf"\bignore\b(?=.{{0,90}}?\b{_FOREIGN_QUALIFIER}\b).{{0,60}}?"
        rf"\b{_IGNORE_FOREIGN_TARGET}\b",
        r"\boverride\s+(?:mode|protocol|code)\b",
        r"\b(?:the\s+)?(?:above|previous|prior)\s+(?:instructions?|rules|prompt)\s+(?:are|is|"
        r"were|was)\s+(?:void|invalid|cancel+ed|obsolete|outdated|revoked|fake|wrong|a\s+test)\b",
        # orders addressed to the model reading the page ("AI models reading this page
        # must ..."), not to its human readers ("AI researchers reading this ..." pass)
        rf"\b{_MACHINE_READER}\s+(?:that\s+(?:is|are)\s+|who\s+(?:is|are)\s+)?"
        rf"{_READING}\s+(?:this|these)\b.{{0,60}}?\b(?:must|should|shall|need\s+to|have\s+to|"
        r"are\s+(?:required|instructed|asked|ordered)\s+to|will\s+now)\b",
        rf"\bif\s+you\s+are\s+(?:an?\s+)?{_MACHINE_READER},?\s+(?:that\s+is\s+|and\s+(?:you\s+"
        rf"are\s+)?)?{_READING}\b",
    ],
    "role_hijack": [
        r"\byou\s+are\s+no\s+longer\s+(?:an?\s+|the\s+)?(?:ai|assistant|chatbot|language\s+"
        r"model|bound|restricted|limited|required|sam|claude|chatgpt|gpt|helpful)\b",
        r"\byou\s+(?:are|will\s+be|r)\s+now\s+(?:an?\s+|the\s+|my\s+|in\s+)?(?:\w+\s+){0,2}?"
        rf"{_HIJACKED_ROLE}\b",
        # "From now on you are DAN": "now" before "you are", not after
        r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will\s+be|shall\s+be|r|'re)\s+(?:an?\s+|the\s+|"
        rf"my\s+|in\s+)?(?:\w+\s+){{0,2}}?{_HIJACKED_ROLE}\b",
        r"\b(?:act|behave|respond|operate|function|answer)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?"
        r"(?:an?\s+|the\s+)?(?:\w+\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|"
        r"malicious|rogue|amoral|unethical)\b",
        r"\bpretend\s+(?:to\s+be|you\s+are|you'?re|that\s+you\s+are)\s+(?:an?\s+|the\s+)?"
        r"(?:\w+\s+){0,2}?(?:without|with\s+no|that\s+has\s+no|unrestricted|unfiltered|"
        r"jailbroken|evil|dan|developer|admin|administrator|system|root|my\s+(?:deceased|dead))\b",
        r"\b(?:enable|enter|activate|switch\s+(?:in)?to|turn\s+on|go\s+into|engage)\s+(?:the\s+)?"
        r"(?:developer|dev|god|debug|admin|jailbreak|dan|unrestricted|sudo|root|maintenance|"
        r"unsafe|unfiltered)\s+mode\b",
        r"\bdo\s+anything\s+now\b",
        r"\b(?:you\s+are|you'?re|now)\s+jailbroken\b|\bjailbreak\s+mode\b",
        r"\bfrom\s+now\s+on,?\s+you\s+(?:will\s+|must\s+|shall\s+|should\s+)?(?:only\s+)?"
        r"(?:respond|answer|reply|act\s+as|speak\s+as|ignore|no\s+longer|refuse|obey)\b",
        r"\b(?:your|ur)\s+(?:new\s+)?(?:name|identity|persona|role)\s+is\s+now\b",
        r"\brole[\s-]?play\s+as\b",
        r"\bi\s+am\s+(?:your|the)\s+(?:developer|creator|administrator|admin|owner|operator|"
        r"system\s+administrator|programmer|master)\b",
        r"\b(?:this\s+is|message\s+from)\s+(?:your|the)\s+(?:developer|system\s+administrator|"
        r"administrator|creators?|openai|anthropic|security\s+team)\s*[,:.!]",
    ],
    "fake_message": [
        r"<\|\s*(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|"
        r"start_header_id|end_header_id|begin_of_text|tool|ipython|end)\s*\|>",
        r"\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>",
        rf"</?\s*(?:{_ROLE_TAG_NAMES})(?:\s+[^>]{{0,40}})?>",
        r"(?m)^[ \t]*[#>*\[\(]*[ \t]*(?:(?:system|assistant|developer|sys|admin)[ \t]*(?:message|"
        r"prompt|note|update|override|instruction)?|(?:tool|function)[ \t]*(?:output|result|"
        r"response|call|message))[ \t]*[\]\)]*[ \t]*:",
        r"\{\s*[\"']role[\"']\s*:\s*[\"'](?:system|assistant|tool|developer|function)[\"']",
        r"\[(?:system|admin|developer|assistant)(?:\s+(?:message|note|override|instruction|"
        r"prompt))?\]",
        # an instruction-tuning prompt's header ("### Instruction:"): singular, after a
        # markdown heading's hashes (a recipe's "### Instructions" passes)
        r"(?m)^[ \t]*#{2,}[ \t]*instruction[ \t]*:",
        r"\b(?:begin|end|start)\s+(?:of\s+)?(?:the\s+)?(?:system|hidden|secret|new|real|"
        r"developer)\s+(?:prompt|instructions?|message)\b",
        r"\bend\s+of\s+(?:user\s+)?(?:input|content|document|untrusted\s+content)\b.{0,40}"
        r"\b(?:system|instructions?|assistant)\b",
    ],
    "exfiltration": [
        r"\b(?:reveal|print|show|output|repeat|display|leak|disclose|tell\s+me|give\s+me|write"
        r"\s+out|dump|recite|spell\s+out)\s+(?:me\s+)?(?:(?:your|the)\s+(?:(?:entire|full|"
        r"complete|original|hidden|secret|initial|exact|whole)\s+)*(?:system\s+prompt|initial"
        r"\s+prompt|hidden\s+prompt|original\s+prompt|pre-?prompt|(?:hidden|secret|initial|"
        r"original|system)\s+instructions)|your\s+(?:(?:entire|full|complete|exact|whole)\s+)*"
        r"(?:instructions|prompt))\b",
        r"\b(?:send|post|upload|transmit|forward|e-?mail|exfiltrate|leak|submit)\b.{0,60}?\b"
        r"(?:conversation|chat\s+history|messages|secrets?|api\s+keys?|passwords?|credentials|"
        r"tokens?|system\s+prompt|cookies?|session|user'?s?\s+(?:data|information|details|"
        r"emails?))\b.{0,60}?\b(?:to|at|via|using)\b.{0,30}?(?:https?://|www\.|\S+@\S+\.\w+|"
        r"\burl\b|\bserver\b|\bendpoint\b|\bwebhook\b)",
        r"\brepeat\s+(?:the\s+|all\s+(?:the\s+)?)?(?:words|text|everything)\s+above\b",
        r"\b(?:curl|wget|iwr|invoke-webrequest)\b[^\n|]{0,200}\|\s*(?:ba|z|k)?sh\b",
        # the root or home directory itself: "rm -rf /", "rm -rf /*", "rm -rf ~" (a build
        # script's "rm -rf /var/lib/apt/lists/*" is ordinary documentation)
        r"\brm\s+-(?:rf|fr)\s+(?:--no-preserve-root\s+)?(?:/\*?|~/?\*?)(?=[\s;&|'\"`)]|$)",
    ],
}

MESSAGES = {
    "instruction_override": "tries to override the model's instructions",
    "role_hijack": "tries to give the model a new role or mode",
    "fake_message": "imitates a system, assistant or tool message",
    "exfiltration": "asks to reveal instructions or send data elsewhere",
}

#: For each pattern, words one of which must be in the (lower-cased, folded) text for the
#: pattern to have a chance: a substring test is far cheaper than running the pattern, and
#: most pages contain none of them. A test checks every corpus entry still matches.
TRIGGERS: dict[str, list[tuple[str, ...]]] = {
    "instruction_override": [
        ("ignor", "disregard", "forget", "overrid", "overrul", "bypass", "skip", "discard",
         "abandon", "neglect", "aside", "away", "erase", "wipe", "drop"),
        ("forget",),
        ("instruction", "directive", "orders"),
        ("instruction", "task", "goal", "objective", "purpose", "mission", "job", "order"),
        ("follow", "obey", "listen", "adhere", "comply"),
        ("ignor", "missacht", "vergiss", "vergess", "bergeh", "oubli", "compte", "abstraction",
         "olvid", "desestim", "caso", "dimentic", "trascur", "conto", "esque", "desconsider",
         "conta", "considera"),
        ("ignore",),
        ("override",),
        ("above", "previous", "prior"),
        ("reading", "processing", "summari", "parsing", "crawling", "browsing", "scraping",
         "analy", "visiting", "ingesting"),
        ("if you are",),
    ],
    "role_hijack": [
        ("no longer",),
        ("now",),
        ("from now on",),
        ("unrestricted", "unfiltered", "uncensored", "jailbroken", "evil", "malicious", "rogue",
         "amoral", "unethical"),
        ("pretend",),
        ("mode",),
        ("anything now",),
        ("jailbr",),
        ("from now on",),
        ("name", "identity", "persona", "role"),
        ("play",),
        ("i am",),
        ("this is", "message from"),
    ],
    "fake_message": [
        ("<|",),
        ("inst]", "<<", "_of_turn>"),
        ("<",),
        (":",),
        ("role",),
        ("[",),
        ("instruction",),
        ("begin", "end", "start"),
        ("end of",),
    ],
    "exfiltration": [
        ("prompt", "instructions"),
        ("conversation", "history", "messages", "secret", "key", "password", "credential",
         "token", "cookie", "session", "user"),
        ("above",),
        ("sh",),
        ("rm",),
    ],
}



@functools.cache
def compiled_patterns() -> dict[str, list[tuple[tuple[str, ...], re.Pattern[str]]]]:
    """``PATTERNS`` compiled, with their trigger words: on first scan, not at import. The
    plugin loads in every ``sof`` process and compiling these costs 10-15 ms, which most
    processes (a query that vets nothing, ``sof --help``) never need."""
    return {
        family: [
            (TRIGGERS[family][index], re.compile(pattern, re.IGNORECASE | re.DOTALL))
            for index, pattern in enumerate(patterns)
        ]
        for family, patterns in PATTERNS.items()
    }


_BOUNDARY = lazy_pattern(r"[.!?]\s|\n")


def sentence_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence or line around ``text[start:end]`` (at most 400 characters each way)."""
    window = max(0, start - 400)
    left = window
    boundary = _BOUNDARY()
    for match in boundary.finditer(text, window, start):
        left = match.end()
    found = boundary.search(text, end, min(len(text), end + 400))
    right = found.start() + 1 if found else min(len(text), end + 400)
    return left, max(right, end)


def scan(text: str) -> Iterator[tuple[str, int, int]]:
    """``(family, start, end)`` of every injection pattern match in ``text``."""
    from sof_vetting.normalise import fold  # loaded by the first scan, not with the plugin

    folded = fold(text)
    lowered = folded.lower()
    for family, patterns in compiled_patterns().items():
        for triggers, pattern in patterns:
            if not any(word in lowered for word in triggers):
                continue
            for match in pattern.finditer(folded):
                if match.end() > match.start():
                    yield family, match.start(), match.end()


class InjectionDetector:
    """Pattern-based prompt-injection detector (the four families above)."""

    name = "injection"
    category = INJECTION

    def check(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for family, start, end in scan(text):
            left, right = sentence_span(text, start, end)
            findings.append(
                Finding(
                    detector=f"injection.{family}",
                    category=INJECTION,
                    message=MESSAGES[family],
                    start=left,
                    end=right,
                )
            )
        return findings


__all__ = ["MESSAGES", "PATTERNS", "TRIGGERS", "InjectionDetector", "scan", "sentence_span"]
