"""
The rules engine's lexicons and text banks: which words make an instruction an inquiry or a reasoning task, the
general terms and their concrete replacements, the clauses, input blocks and breadth templates the rules append.
They are tuned together with `strategies.py` (see `tests/backends/test_rules.py`): edit them with care.
"""

import re


DEPTH_CLAUSES = (
    "Go beyond the surface facts and cover the underlying principles that make this work.",
    "Discuss the deeper mechanisms involved and the conditions under which they stop holding.",
    "Address the long-term consequences and the trade-offs that experts still debate.",
    "Include the historical background and the key ideas that shaped current thinking.",
    "Point out common misconceptions and the evidence that corrects them.",
    "Consider the limitations, edge cases and exceptions that a careful expert would mention.",
)
# Evol-Instruct deepens only "inquiries about certain issues": questions and requests to describe or explain. An
# instruction is an inquiry when its first sentence is a question or opens with one of these words; else a task.
_INQUIRY_OPENERS_TEXT = """
    what why how which who whom whose when where is are can could should would do does did will explain describe
    discuss compare outline analyze analyse contrast
"""
INQUIRY_OPENERS = frozenset(_INQUIRY_OPENERS_TEXT.split())
# Cues of a request that calls for reasoning, read in the first sentence.
REASONING_CUES = (
    "calculate",
    "compute",
    "solve",
    "how many",
    "how much",
    "how long",
    "estimate",
    "plan",
    "decide",
    "prove",
    "justify",
    "derive",
    "predict",
    "determine",
    "optimize",
    "budget",
    "schedule",
    "choose",
    "convert",
    "average",
    "probability",
    "trade-offs",
    "pros and cons",
    "rank",
    "prioritize",
)
# Cues of a request that works on material (code, data, a passage), read in the first sentence: complicate_input
# gives such a request its input.
MATERIAL_CUES = (
    "code",
    "program",
    "function",
    "script",
    "sql",
    "query",
    "bug",
    "data",
    "dataset",
    "table",
    "spreadsheet",
    "figures",
    "numbers",
    "sales",
    "summarize",
    "summarise",
    "translate",
    "proofread",
    "edit",
    "paraphrase",
    "classify",
    "extract",
    "debug",
    "refactor",
    "sort",
    "parse",
    "passage",
    "paragraph",
    "text",
    "sentence",
    "sentences",
    "following",
    "given",
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
GENERAL_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(term) for term in sorted(GENERAL_TERMS, key=len, reverse=True)) + r")\b",
    flags=re.IGNORECASE,
)
# Every input block opens with this phrase, so that the engine knows one is there.
INPUT_BLOCK_OPENING = "as the input:"
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
INPUT_CUES = {
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
# New instructions that an LLM writes for in-breadth evolving. Like real ones they vary: each leaves a different
# set of operations with something to add (the comment after each), so what to do after breadth must be read.
BREADTH_TEMPLATES = (
    # a task naming a general audience: add_constraints, concretizing
    "Write a short guide to {topic} for people facing an unusual situation that most guides ignore.",
    # an inquiry: deepening
    "Why does {topic} matter so much more in some regions than in others?",
    # an inquiry naming a general place: deepening, concretizing
    "Describe a rarely discussed case involving {topic} as it affects a business in a remote area.",
    # a task on material: add_constraints, complicate_input
    "Summarize the following field notes on {topic} for a newcomer to the subject.",
    # an inquiry calling for reasoning: deepening, increase_reasoning_steps
    "How would a small research group plan a careful study of {topic} on a tight budget?",
    # a task calling for reasoning: add_constraints, increase_reasoning_steps
    "Estimate what a serious effort on {topic} would demand over its first five years.",
)
# Verbs that open instructions; they are not the topic.
_INSTRUCTION_VERBS_TEXT = """
    write describe explain give list create generate tell name make find provide suggest identify summarize summarise
    classify rewrite translate compose design develop outline draft construct produce edit convert brainstorm come
    offer share help discuss please
"""
INSTRUCTION_VERBS = frozenset(_INSTRUCTION_VERBS_TEXT.split())
