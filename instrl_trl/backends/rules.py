"""
The offline, deterministic rules engine: a rewriter, a reviewer and an expert that need no model.

It is the default backend and the tests' fixture. Its rules make the choice of operation matter: whether an
operation adds information depends on the instruction and on what the episode already did, as with an LLM rewriter
(a third constraint or a second input block adds nothing, breadth after evolving leaks the prompt template, a long
prompt gets a refusal). A uniform-random choice of operations (Evol-Instruct) therefore wastes many queries, and a
policy that reads the state can waste almost none.
"""

import random
import re
from collections.abc import Callable, Iterable, Mapping

from ..constraints import sample_constraint
from ..elimination import content_words
from ..operations.operation import Operation
from .base import Answer, Expert, Review, Reviewer, Rewrite, Rewriter, RewriteRequest


MAX_CONSTRAINTS = 2
LENGTH_LIMIT = 110
REFUSAL = "Sorry, I cannot make this prompt more complex without making it unreasonable to answer."
LEAKED_TEMPLATE_MARKER = "#Created Prompt#:"

DEPTH_CLAUSES = (
    "Go beyond the surface facts and cover the underlying principles that make this work.",
    "Discuss the deeper mechanisms involved and the conditions under which they stop holding.",
    "Address the long-term consequences and the trade-offs that experts still debate.",
    "Include the historical background and the key ideas that shaped current thinking.",
    "Point out common misconceptions and the evidence that corrects them.",
    "Consider the limitations, edge cases and exceptions that a careful expert would mention.",
)
# Evol-Instruct deepens only "inquiries about certain issues": questions and requests to describe or explain.
INQUIRY_CUES = (
    "what",
    "how",
    "why",
    "which",
    "describe",
    "explain",
    "discuss",
    "summarize",
    "summarise",
    "outline",
    "compare",
    "analyze",
    "analyse",
    "tell me",
    "guide",
    "tips",
    "advice",
    "history",
    "profile",
    "benefits",
    "causes",
    "features",
    "rules",
    "difference",
)
REASONING_CUES = (
    "calculate",
    "compute",
    "solve",
    "how many",
    "how much",
    "compare",
    "plan",
    "prove",
    "estimate",
    "decide",
    "why",
    "explain",
    "analyze",
    "analyse",
    "step",
    "steps",
    "reason",
    "evaluate",
    "determine",
    "derive",
    "predict",
    "justify",
    "what if",
    "cause",
    "causes",
    "difference between",
    "best way",
    "choose",
    "optimize",
    "budget",
    "schedule",
    "convert",
    "average",
    "probability",
)
REASONING_CLAUSES = (
    (
        "Work through it in numbered stages: state the assumptions, show every intermediate result, then check the "
        "final answer."
    ),
    (
        "Break the problem into smaller parts, resolve each part separately, and then combine the partial results "
        "into one conclusion."
    ),
    (
        "Lay out the chain of thinking explicitly, from the given facts to the conclusion, and verify each link "
        "before moving on."
    ),
)
# General term -> specific replacements. Each replacement adds at least two content words and contains no general
# term itself, so that concretizing always gains information and never loops on its own output.
GENERAL_TERMS = {
    "a city": ("Lisbon, the Portuguese capital", "the port city of Rotterdam", "Kyoto in early spring"),
    "a company": ("a mid-sized logistics company in Rotterdam", "a family-owned bakery chain in Lyon"),
    "people": ("first-year nursing trainees", "retired engineers living alone", "night-shift warehouse workers"),
    "a program": ("a Python 3 command-line program", "a small Rust utility for the terminal"),
    "something": ("a handmade wooden chess set", "a second-hand acoustic guitar"),
    "a product": ("a solar-powered camping lantern", "a subscription meal-kit service"),
    "a country": ("Uruguay in South America", "landlocked Mongolia", "coastal Ghana"),
    "a book": ("Mary Shelley's Frankenstein", "Orwell's Nineteen Eighty-Four"),
    "food": ("fermented Korean kimchi", "Ethiopian injera with lentil stew"),
    "a person": ("a retired marine biologist", "a newly hired hospital pharmacist"),
    "a topic": ("coral reef bleaching", "medieval Venetian trade routes"),
    "technology": ("low-cost satellite internet", "CRISPR gene editing"),
    "a business": ("a rural veterinary clinic", "an independent coffee roastery"),
    "a problem": ("chronic late deliveries in a warehouse", "rising dropout rates in evening classes"),
    "a story": ("a ghost story set aboard a lighthouse", "a fable about a stubborn glacier"),
    "a poem": ("a sonnet in iambic pentameter", "a haiku sequence about monsoon rain"),
    "an animal": ("the snow leopard", "the axolotl salamander"),
    "a game": ("a cooperative board game for four players", "a browser puzzle game with daily levels"),
    "a website": ("an online booking portal for dental clinics", "a neighbourhood tool-lending platform"),
    "an app": ("a medication-reminder mobile app for seniors", "a chat app for language exchange"),
    "a movie": ("the film Spirited Away", "Kurosawa's Seven Samurai"),
    "a song": ("a lullaby sung in Welsh", "a protest folk ballad from the 1960s"),
    "a place": ("the Atacama Desert in Chile", "Iceland's Westfjords region"),
    "a team": ("a volunteer mountain rescue crew", "a six-person remote design squad"),
    "students": ("high-school chemistry learners in Nairobi", "adult evening learners studying accounting"),
    "customers": ("elderly rural bank clients", "first-time electric-car buyers"),
    "a tool": ("a cordless torque wrench", "a spreadsheet pivot table"),
    "a device": ("a wearable glucose monitor", "a handheld barcode scanner"),
    "a plant": ("the carnivorous Venus flytrap", "drought-tolerant lavender"),
    "a sport": ("competitive rock climbing", "wheelchair basketball"),
    "a recipe": ("a vegan mushroom risotto recipe", "a gluten-free banana bread recipe"),
    "a vehicle": ("a cargo e-bike for urban deliveries", "a hydrogen fuel-cell bus"),
    "an event": ("a charity marathon in Copenhagen", "a regional science fair for teenagers"),
    "a job": ("an offshore wind-turbine technician role", "a hospital night porter position"),
    "an organization": ("a small wildlife-rescue charity", "a municipal water utility"),
    "a language": ("Icelandic as spoken in Reykjavik", "Brazilian Portuguese"),
    "a school": ("a rural primary school in Peru", "a vocational welding academy"),
    "children": ("seven-year-old twins learning to swim", "preschoolers in a bilingual kindergarten"),
    "the environment": ("mangrove wetlands in Bangladesh", "alpine meadows in the Swiss Alps"),
    "exercise": ("interval rowing workouts", "daily resistance-band training"),
    "music": ("baroque harpsichord pieces", "West African highlife"),
    "art": ("Japanese woodblock prints", "Mexican muralism"),
    "data": ("hourly smart-meter electricity readings", "anonymised hospital admission records"),
    "a system": ("a library book-lending database", "a hotel key-card access system"),
    "an algorithm": ("Dijkstra's shortest-path algorithm", "the quicksort partition scheme"),
    "a website design": ("a minimalist portfolio site for photographers", "an accessible checkout page layout"),
}
_GENERAL_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(term) for term in sorted(GENERAL_TERMS, key=len, reverse=True)) + r")\b",
    flags=re.IGNORECASE,
)
# Input blocks for complicate_input, keyed loosely by topic cue.
# Input blocks for complicate_input, keyed loosely by topic cue. They are long (80 to 100 words), as real inputs
# are, so an episode that adds one early soon runs into the length limit.
INPUT_BLOCKS = {
    "code": (
        """Use this code as the input:
```python
def checkout_total(prices, discount, tax_rate=0.21, shipping=4.95):
    subtotal = sum(prices)
    if discount > 0.5:
        discount = 0.5
    discounted = subtotal * (1 - discount)
    if discounted > 60:
        shipping = 0
    total = discounted * (1 + tax_rate) + shipping
    return round(total, 2)

basket = [19.99, 5.25, 3.10, 42.00]
print(checkout_total(basket, 0.15))
print(checkout_total([], 0.9))
print(checkout_total(basket, -0.2, tax_rate=0.07))
```""",
        """Use this code as the input:
```javascript
function groupByAuthor(books, minYear = 0) {
  const out = {};
  for (const book of books) {
    if (book.year < minYear) continue;
    (out[book.author] ||= []).push(book.title);
  }
  for (const author in out) out[author].sort();
  return out;
}

const shelf = [
  { title: "Dune", author: "Herbert", year: 1965 },
  { title: "Emma", author: "Austen", year: 1815 },
  { title: "Persuasion", author: "Austen", year: 1817 },
  { title: "Kindred", author: "Butler", year: 1979 },
];
console.log(groupByAuthor(shelf, 1800));
```""",
    ),
    "numbers": (
        """Use this table as the input:
| Month | Revenue (EUR) | Orders | Returns | Ad spend (EUR) | New buyers |
|---|---|---|---|---|---|
| January | 42,300 | 1,150 | 38 | 3,100 | 210 |
| February | 39,800 | 1,020 | 45 | 2,900 | 185 |
| March | 47,900 | 1,310 | 29 | 3,600 | 264 |
| April | 45,200 | 1,240 | 51 | 3,400 | 231 |
| May | 52,600 | 1,420 | 33 | 4,200 | 298 |
| June | 49,100 | 1,365 | 40 | 3,900 | 270 |""",
        """Use this JSON object as the input:
```json
{"region": "north", "quarter": "Q3", "stores": [
  {"city": "Leeds", "units_sold": 1840, "unit_price": 12.5, "returns": 37, "staff": 9},
  {"city": "York", "units_sold": 960, "unit_price": 13.0, "returns": 12, "staff": 5},
  {"city": "Hull", "units_sold": 1210, "unit_price": 11.75, "returns": 44, "staff": 7}],
 "marketing_spend": 4200, "currency": "GBP", "target_margin": 0.18,
 "notes": "York opened in week 3; Hull ran a clearance sale in August"}
```""",
    ),
    "text": (
        """Use this passage as the input:
"In 1854 the physician John Snow mapped cholera deaths around a public water pump on Broad Street in London.
Most victims lived close to the pump, while workers at a nearby brewery, who drank beer and water from the
brewery's own well, were largely spared. When the parish council removed the pump handle, new cases in the
district fell sharply, although the epidemic was already declining and many officials of the time still believed
that the disease spread through foul air rather than through contaminated drinking water." """,
        """Use this JSON object as the input:
```json
{"audience": "volunteers", "location": "riverside park", "date": "2024-05-18", "duration_minutes": 45,
 "expected_participants": 35, "materials": ["gloves", "bags", "grabbers", "first-aid kit", "water"],
 "weather": "light rain", "hazards": ["slippery banks", "broken glass", "nesting birds"],
 "contacts": {"organizer": "Priya", "park_ranger": "Tomas"},
 "goals": ["collect plastic", "record unusual litter", "recruit regular helpers"]}
```""",
        """Use this table as the input:
| Option | Cost (EUR) | Travel time | Departures per day | Luggage limit | Main drawback |
|---|---|---|---|---|---|
| Night train | 85 | 11 h | 1 | 2 large bags | arrives very early |
| Day train | 95 | 6 h | 4 | 2 large bags | needs one change |
| Rental car | 120 | 4.5 h | any time | unlimited | tolls and parking fees |
| Coach | 40 | 8 h | 3 | 1 bag | limited legroom |
| Flight | 70 | 1.5 h | 5 | 1 cabin bag | airport transfers |""",
    ),
}
_INPUT_CUES = {
    "code": (
        "code",
        "program",
        "function",
        "python",
        "javascript",
        "algorithm",
        "script",
        "sql",
        "sort",
        "array",
        "string",
        "class",
        "bug",
        "software",
    ),
    "numbers": (
        "number",
        "numbers",
        "price",
        "cost",
        "sales",
        "revenue",
        "percent",
        "percentage",
        "budget",
        "profit",
        "statistics",
        "data",
        "total",
        "average",
        "calculate",
        "compute",
    ),
}
# New tasks that an LLM writes for in-breadth evolving; like real ones, they often name a general audience or place.
BREADTH_TEMPLATES = (
    "Write a short guide to {topic} for people facing an unusual situation that most guides ignore.",
    "Describe a rarely discussed case involving {topic} as it affects a business in a remote area.",
    "Create a brief profile of a person who did pioneering but little-known work on {topic}.",
    "Write a set of practical tips about {topic} for students living on a remote island with limited resources.",
    "Outline the lesser-known history of {topic} in a city that textbooks usually leave out.",
)
# Verbs that open instructions; they are not the topic.
_INSTRUCTION_VERBS_TEXT = """
    write describe explain give list create generate tell name make find provide suggest identify summarize summarise
    classify rewrite translate compose design develop outline draft construct produce edit convert brainstorm come
    offer share help discuss please
"""
_INSTRUCTION_VERBS = frozenset(_INSTRUCTION_VERBS_TEXT.split())

RuleFunction = Callable[[RewriteRequest, random.Random], Rewrite]


def count_words(text: str) -> int:
    return len(text.split())


def is_reasoning_instruction(text: str) -> bool:
    """Returns whether `text` asks for reasoning (calculation, comparison, planning, explanation, ...)."""
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(cue)}\b", lowered) for cue in REASONING_CUES)


def is_inquiry_instruction(text: str) -> bool:
    """Returns whether `text` asks about an issue (a question, or a request to describe, explain, compare, ...)."""
    lowered = text.lower()
    # only the first sentence counts as the question: appended constraints may quote one ("Any other questions?")
    first_sentence = re.split(r"(?<=[.?!])\s", lowered.strip(), maxsplit=1)[0]
    return first_sentence.endswith("?") or any(re.search(rf"\b{re.escape(cue)}\b", lowered) for cue in INQUIRY_CUES)


def find_general_term(text: str) -> re.Match | None:
    """Returns the first general term of [`GENERAL_TERMS`] in `text` (case-insensitive, on word boundaries)."""
    return _GENERAL_PATTERN.search(text)


def main_topic(text: str) -> str:
    """Returns the instruction's topic: the last run (up to 3 words) of content words in its first sentence."""
    first_sentence = re.split(r"(?<=[.?!])\s|\n", text.strip(), maxsplit=1)[0]
    words = re.findall(r"[A-Za-z][A-Za-z'-]*|\d+|[^\sA-Za-z\d]", first_sentence)
    runs, run = [], []
    for word in words:
        lowered = word.lower()
        if lowered.isalpha() and lowered not in _INSTRUCTION_VERBS and content_words(lowered):
            run.append(word)
        else:
            if run:
                runs.append(run)
            run = []
    if run:
        runs.append(run)
    return " ".join(runs[-1][-3:]).lower() if runs else "this subject"


def _unchanged(request: RewriteRequest) -> Rewrite:
    return Rewrite(request.instruction, request.constraints)


def _append(request: RewriteRequest, text: str, separator: str = " ") -> str:
    return f"{request.instruction.rstrip()}{separator}{text}"


def add_constraints(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Appends a verifiable constraint that fits the ones already there (at most [`MAX_CONSTRAINTS`])."""
    if len(request.constraints) >= MAX_CONSTRAINTS:
        return _unchanged(request)
    constraint = sample_constraint(request.constraints, rng)
    if constraint is None:
        return _unchanged(request)
    return Rewrite(_append(request, constraint.description()), (*request.constraints, constraint))


def deepening(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Appends a depth clause, once per episode and only on an inquiry (see [`is_inquiry_instruction`])."""
    if request.operation.name in request.history or not is_inquiry_instruction(request.instruction):
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(DEPTH_CLAUSES)), request.constraints)


def concretizing(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Replaces the first general term (for example "a city") with a specific one (for example "Lisbon")."""
    match = find_general_term(request.instruction)
    if match is None:
        return _unchanged(request)
    replacement = rng.choice(GENERAL_TERMS[match.group(0).lower()])
    if match.group(0)[0].isupper():
        replacement = replacement[0].upper() + replacement[1:]
    instruction = request.instruction[: match.start()] + replacement + request.instruction[match.end() :]
    return Rewrite(instruction, request.constraints)


def increase_reasoning_steps(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Asks for multi-step reasoning, once per episode and only on a reasoning instruction."""
    if request.operation.name in request.history or not is_reasoning_instruction(request.instruction):
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(REASONING_CLAUSES)), request.constraints)


def complicate_input(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Appends an input block (code, table, JSON or passage) chosen by topic, once per episode."""
    if request.operation.name in request.history:
        return _unchanged(request)
    words = set(re.findall(r"[a-z]+", request.instruction.lower()))
    kind = next((kind for kind, cues in _INPUT_CUES.items() if words & set(cues)), "text")
    return Rewrite(_append(request, rng.choice(INPUT_BLOCKS[kind]), separator="\n\n"), request.constraints)


def breadth(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """
    Writes a new, rarer instruction on the same topic. On an instruction that was already evolved it imitates a known
    LLM failure, leaking the prompt's "#Created Prompt#:" marker, which the elimination rules catch.
    """
    new_instruction = rng.choice(BREADTH_TEMPLATES).format(topic=main_topic(request.instruction))
    if request.history:
        return Rewrite(f"{LEAKED_TEMPLATE_MARKER}\n{new_instruction}", request.constraints)
    return Rewrite(new_instruction, ())


def append_clause(request: RewriteRequest, rng: random.Random) -> Rewrite:
    """Generic strategy for user operations: appends one of `operation.rule_texts`, once per episode."""
    if request.operation.name in request.history:
        return _unchanged(request)
    return Rewrite(_append(request, rng.choice(request.operation.rule_texts)), request.constraints)


RULES: dict[str, RuleFunction] = {
    "add_constraints": add_constraints,
    "deepening": deepening,
    "concretizing": concretizing,
    "increase_reasoning_steps": increase_reasoning_steps,
    "complicate_input": complicate_input,
    "breadth": breadth,
    "append_clause": append_clause,
}


def rewrite_rng(request: RewriteRequest) -> random.Random:
    """The rng of one rewrite, seeded from a stable string (never `hash()`, which is salted per process)."""
    return random.Random(f"{request.seed}:{request.operation.name}:{len(request.history)}:{request.instruction}")


class RulesRewriter(Rewriter):
    r"""
    Offline rewriter that applies each operation's `rule` strategy from [`RULES`].

    Args:
        rules (`Mapping[str, Callable]` or `None`, *optional*, defaults to `None`):
            Strategy name -> function `(request, rng) -> Rewrite`. `None` uses [`RULES`].
        length_limit (`int`, *optional*, defaults to `110`):
            Above this many words, every operation returns a refusal, as LLM rewriters do on overlong prompts.
    """

    model_name = "rules"

    def __init__(self, rules: Mapping[str, RuleFunction] | None = None, length_limit: int = LENGTH_LIMIT):
        self.rules = dict(RULES if rules is None else rules)
        self.length_limit = length_limit

    def check_operations(self, operations: Iterable[Operation] | Mapping[str, Operation]) -> None:
        """Raises a `ValueError` for an operation this engine cannot apply; call it before any query."""
        if isinstance(operations, Mapping):
            operations = operations.values()
        for operation in operations:
            if operation.rule not in self.rules:
                raise ValueError(
                    f"Operation {operation.name!r} has `rule` {operation.rule!r}, which the rules engine does not "
                    f"know. Valid rule names: {', '.join(self.rules)}. Set `rule` or use an LLM rewriter."
                )
            if self.rules[operation.rule] is append_clause and not operation.rule_texts:
                raise ValueError(
                    f"Operation {operation.name!r} uses the `append_clause` rule but its `rule_texts` is empty; give "
                    "the clauses it may append."
                )

    def rewrite(self, requests: list[RewriteRequest]) -> list[Rewrite]:
        self.check_operations(request.operation for request in requests)
        rewrites = []
        for request in requests:
            if count_words(request.instruction) > self.length_limit:
                rewrites.append(Rewrite(REFUSAL, request.constraints))
            else:
                rewrites.append(self.rules[request.operation.rule](request, rewrite_rng(request)))
        return rewrites


class RulesReviewer(Reviewer):
    r"""
    Offline reviewer: "Not Equal" (information gain) when the rewrite differs from the original and adds at least
    `min_new_words` content words (lowercased alphanumeric words that are not stop words and not in the original).

    Args:
        min_new_words (`int`, *optional*, defaults to `2`):
            New content words needed for an information gain.
    """

    model_name = "rules"

    def __init__(self, min_new_words: int = 2):
        self.min_new_words = min_new_words

    def review(self, originals: list[str], rewrites: list[str]) -> list[Review]:
        if len(originals) != len(rewrites):
            raise ValueError(f"Got {len(originals)} `originals` but {len(rewrites)} `rewrites`; pass one per item.")
        reviews = []
        for original, rewrite in zip(originals, rewrites, strict=True):
            new_words = content_words(rewrite) - content_words(original)
            gain = rewrite.strip() != original.strip() and len(new_words) >= self.min_new_words
            reviews.append(Review(information_gain=gain, verdict="Not Equal" if gain else "Equal"))
        return reviews


class RulesExpert(Expert):
    """Offline expert: a short, deterministic generic answer built from each instruction's topic."""

    model_name = "rules"

    def respond(self, instructions: list[str]) -> list[Answer]:
        responses = []
        for instruction in instructions:
            topic = main_topic(instruction)
            responses.append(
                f"Here is a short answer about {topic}. The main point is to start from what is known about {topic} "
                f"and build on it carefully. A good next step is to check the details against a reliable source."
            )
        return [Answer(text) for text in responses]
