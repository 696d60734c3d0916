"""The PGP word list, for reading hashes aloud.

A hash compared by ear is easy to get wrong when it is read as hex digits:
"b" and "d", "8" and "a" sound alike, and nobody notices a skipped digit.
The PGP word list (Juola and Zimmermann) maps every byte to a word instead,
with two lists: bytes at even positions (0, 2, 4, ...) use a two-syllable
word, bytes at odd positions a three-syllable one. A swapped, repeated or
dropped byte therefore changes the rhythm of what is read, so the listener
hears the mistake.

The ceremony prints the config SHA-256 and the final transcript hash in both
hex and words; the custodians read the words aloud and compare.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["EVEN_WORDS", "ODD_WORDS", "hash_lines", "hex_to_words", "to_words"]

#: Two-syllable words, used for bytes at even positions (index = byte value).
EVEN_WORDS: Final[tuple[str, ...]] = (
    # 0x00 - 0x0F
    "aardvark", "absurd", "accrue", "acme", "adrift", "adult", "afflict", "ahead",
    "aimless", "Algol", "allow", "alone", "ammo", "ancient", "apple", "artist",
    # 0x10 - 0x1F
    "assume", "Athens", "atlas", "Aztec", "baboon", "backfield", "backward", "banjo",
    "beaming", "bedlamp", "beehive", "beeswax", "befriend", "Belfast", "berserk", "billiard",
    # 0x20 - 0x2F
    "bison", "blackjack", "blockade", "blowtorch", "bluebird", "bombast", "bookshelf", "brackish",
    "breadline", "breakup", "brickyard", "briefcase", "Burbank", "button", "buzzard", "cement",
    # 0x30 - 0x3F
    "chairlift", "chatter", "checkup", "chisel", "choking", "chopper", "Christmas", "clamshell",
    "classic", "classroom", "cleanup", "clockwork", "cobra", "commence", "concert", "cowbell",
    # 0x40 - 0x4F
    "crackdown", "cranky", "crowfoot", "crucial", "crumpled", "crusade", "cubic", "dashboard",
    "deadbolt", "deckhand", "dogsled", "dragnet", "drainage", "dreadful", "drifter", "dropper",
    # 0x50 - 0x5F
    "drumbeat", "drunken", "Dupont", "dwelling", "eating", "edict", "egghead", "eightball",
    "endorse", "endow", "enlist", "erase", "escape", "exceed", "eyeglass", "eyetooth",
    # 0x60 - 0x6F
    "facial", "fallout", "flagpole", "flatfoot", "flytrap", "fracture", "framework", "freedom",
    "frighten", "gazelle", "Geiger", "glitter", "glucose", "goggles", "goldfish", "gremlin",
    # 0x70 - 0x7F
    "guidance", "hamlet", "highchair", "hockey", "indoors", "indulge", "inverse", "involve",
    "island", "jawbone", "keyboard", "kickoff", "kiwi", "klaxon", "locale", "lockup",
    # 0x80 - 0x8F
    "merit", "minnow", "miser", "Mohawk", "mural", "music", "necklace", "Neptune",
    "newborn", "nightbird", "Oakland", "obtuse", "offload", "optic", "orca", "payday",
    # 0x90 - 0x9F
    "peachy", "pheasant", "physique", "playhouse", "Pluto", "preclude", "prefer", "preshrunk",
    "printer", "prowler", "pupil", "puppy", "python", "quadrant", "quiver", "quota",
    # 0xA0 - 0xAF
    "ragtime", "ratchet", "rebirth", "reform", "regain", "reindeer", "rematch", "repay",
    "retouch", "revenge", "reward", "rhythm", "ribcage", "ringbolt", "robust", "rocker",
    # 0xB0 - 0xBF
    "ruffled", "sailboat", "sawdust", "scallion", "scenic", "scorecard", "Scotland", "seabird",
    "select", "sentence", "shadow", "shamrock", "showgirl", "skullcap", "skydive", "slingshot",
    # 0xC0 - 0xCF
    "slowdown", "snapline", "snapshot", "snowcap", "snowslide", "solo", "southward", "soybean",
    "spaniel", "spearhead", "spellbind", "spheroid", "spigot", "spindle", "spyglass", "stagehand",
    # 0xD0 - 0xDF
    "stagnate", "stairway", "standard", "stapler", "steamship", "sterling", "stockman", "stopwatch",
    "stormy", "sugar", "surmount", "suspense", "sweatband", "swelter", "tactics", "talon",
    # 0xE0 - 0xEF
    "tapeworm", "tempest", "tiger", "tissue", "tonic", "topmost", "tracker", "transit",
    "trauma", "treadmill", "Trojan", "trouble", "tumor", "tunnel", "tycoon", "uncut",
    # 0xF0 - 0xFF
    "unearth", "unwind", "uproot", "upset", "upshot", "vapor", "village", "virus",
    "Vulcan", "waffle", "wallet", "watchword", "wayside", "willow", "woodlark", "Zulu",
)  # fmt: skip

#: Three-syllable words, used for bytes at odd positions (index = byte value).
ODD_WORDS: Final[tuple[str, ...]] = (
    # 0x00 - 0x0F
    "adroitness", "adviser", "aftermath", "aggregate", "alkali", "almighty", "amulet",
    "amusement", "antenna", "applicant", "Apollo", "armistice", "article", "asteroid",
    "Atlantic", "atmosphere",
    # 0x10 - 0x1F
    "autopsy", "Babylon", "backwater", "barbecue", "belowground", "bifocals", "bodyguard",
    "bookseller", "borderline", "bottomless", "Bradbury", "bravado", "Brazilian", "breakaway",
    "Burlington", "businessman",
    # 0x20 - 0x2F
    "butterfat", "Camelot", "candidate", "cannonball", "Capricorn", "caravan", "caretaker",
    "celebrate", "cellulose", "certify", "chambermaid", "Cherokee", "Chicago", "clergyman",
    "coherence", "combustion",
    # 0x30 - 0x3F
    "commando", "company", "component", "concurrent", "confidence", "conformist", "congregate",
    "consensus", "consulting", "corporate", "corrosion", "councilman", "crossover", "crucifix",
    "cumbersome", "customer",
    # 0x40 - 0x4F
    "Dakota", "decadence", "December", "decimal", "designing", "detector", "detergent",
    "determine", "dictator", "dinosaur", "direction", "disable", "disbelief", "disruptive",
    "distortion", "document",
    # 0x50 - 0x5F
    "embezzle", "enchanting", "enrollment", "enterprise", "equation", "equipment", "escapade",
    "Eskimo", "everyday", "examine", "existence", "exodus", "fascinate", "filament", "finicky",
    "forever",
    # 0x60 - 0x6F
    "fortitude", "frequency", "gadgetry", "Galveston", "getaway", "glossary", "gossamer",
    "graduate", "gravity", "guitarist", "hamburger", "Hamilton", "handiwork", "hazardous",
    "headwaters", "hemisphere",
    # 0x70 - 0x7F
    "hesitate", "hideaway", "holiness", "hurricane", "hydraulic", "impartial", "impetus",
    "inception", "indigo", "inertia", "infancy", "inferno", "informant", "insincere",
    "insurgent", "integrate",
    # 0x80 - 0x8F
    "intention", "inventive", "Istanbul", "Jamaica", "Jupiter", "leprosy", "letterhead",
    "liberty", "maritime", "matchmaker", "maverick", "Medusa", "megaton", "microscope",
    "microwave", "midsummer",
    # 0x90 - 0x9F
    "millionaire", "miracle", "misnomer", "molasses", "molecule", "Montana", "monument",
    "mosquito", "narrative", "nebula", "newsletter", "Norwegian", "October", "Ohio",
    "onlooker", "opulent",
    # 0xA0 - 0xAF
    "Orlando", "outfielder", "Pacific", "pandemic", "Pandora", "paperweight", "paragon",
    "paragraph", "paramount", "passenger", "pedigree", "Pegasus", "penetrate", "perceptive",
    "performance", "pharmacy",
    # 0xB0 - 0xBF
    "phonetic", "photograph", "pioneer", "pocketful", "politeness", "positive", "potato",
    "processor", "provincial", "proximate", "puberty", "publisher", "pyramid", "quantity",
    "racketeer", "rebellion",
    # 0xC0 - 0xCF
    "recipe", "recover", "repellent", "replica", "reproduce", "resistor", "responsive",
    "retraction", "retrieval", "retrospect", "revenue", "revival", "revolver", "sandalwood",
    "sardonic", "Saturday",
    # 0xD0 - 0xDF
    "savagery", "scavenger", "sensation", "sociable", "souvenir", "specialist", "speculate",
    "stethoscope", "stupendous", "supportive", "surrender", "suspicious", "sympathy",
    "tambourine", "telephone", "therapist",
    # 0xE0 - 0xEF
    "tobacco", "tolerance", "tomorrow", "torpedo", "tradition", "travesty", "trombonist",
    "truncated", "typewriter", "ultimate", "undaunted", "underfoot", "unicorn", "unify",
    "universe", "unravel",
    # 0xF0 - 0xFF
    "upcoming", "vacancy", "vagabond", "vertigo", "Virginia", "visitor", "vocalist",
    "voyager", "warranty", "Waterloo", "whimsical", "Wichita", "Wilmington", "Wyoming",
    "yesteryear", "Yucatan",
)  # fmt: skip

_HEX_RE: Final = re.compile(r"(?:[0-9a-fA-F]{2})*")


def to_words(data: bytes) -> list[str]:
    """Spell ``data`` as PGP words, one word per byte.

    Args:
        data: The bytes to spell, usually a digest.

    Returns:
        The words in order: the even list for bytes at positions 0, 2, 4, ...
        and the odd list for positions 1, 3, 5, ...
    """
    return [(ODD_WORDS if i % 2 else EVEN_WORDS)[byte] for i, byte in enumerate(data)]


def hex_to_words(hex: str) -> str:
    """Spell a hex string (such as a SHA-256 digest) as space-separated PGP words.

    Args:
        hex: An even number of hex digits, either case, nothing else.

    Returns:
        The words, joined by single spaces.

    Raises:
        ValueError: If ``hex`` is not an even-length string of hex digits.
    """
    if not _HEX_RE.fullmatch(hex):
        raise ValueError("expected an even number of hex digits")
    return " ".join(to_words(bytes.fromhex(hex)))


def hash_lines(digest_hex: str, *, group: int = 4) -> list[str]:
    """Lay a hex digest out for reading aloud: hex and words, ``group`` bytes a line.

    Short lines let the listener say "line 3 matches" and the reader keep
    their place; the hex on each line ties the words back to the digest.

    Args:
        digest_hex: The digest in hex.
        group: Bytes per line.

    Returns:
        Lines such as ``"e58294f2  topmost Istanbul Pluto vagabond"``.

    Raises:
        ValueError: If ``digest_hex`` is not hex or ``group`` is not positive.
    """
    if group < 1:
        raise ValueError("group must be at least 1")
    words = hex_to_words(digest_hex).split(" ") if digest_hex else []
    step = 2 * group
    return [
        f"{digest_hex[i : i + step].lower()}  {' '.join(words[i // 2 : i // 2 + group])}"
        for i in range(0, len(digest_hex), step)
    ]
