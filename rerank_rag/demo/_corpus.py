"""A small hand-written corpus with graded relevance labels, for ``rerank-rag demo``.

64 short passages on eight everyday topics (coffee, sleep, bicycles, honeybees,
volcanoes, bread, the Moon, Python), written for this project (Apache-2.0, like the
package). The queries are phrased so that plain word overlap is misleading: several
relevant passages use other words than the query, and some off-topic passages share the
query's words. That is the situation where a reranker earns its keep.

Labels: 2 = answers the query, 1 = related and partly useful, absent = not relevant.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Passage", "Query", "PASSAGES", "QUERIES"]


@dataclass(frozen=True)
class Passage:
    id: str
    topic: str
    text: str


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    labels: dict[str, int]  # passage id -> grade (2 answers, 1 related)


_RAW: list[tuple[str, str, str]] = [
    # coffee
    ("c1", "coffee", "Water just off the boil, around 92 to 96 degrees Celsius, extracts coffee evenly; boiling water scorches the grounds and brings out bitterness."),
    ("c2", "coffee", "A burr grinder crushes beans to a uniform size, while a blade grinder chops them unevenly, so some particles over-extract and others stay sour."),
    ("c3", "coffee", "Espresso forces hot water through finely ground coffee at about nine bars of pressure, producing a small, concentrated shot topped with crema."),
    ("c4", "coffee", "Coffee beans keep their aroma longest in an airtight, opaque container at room temperature; the freezer invites moisture and stale flavours."),
    ("c5", "coffee", "Caffeine blocks adenosine receptors in the brain, which is why a cup of coffee pushes back the feeling of drowsiness for several hours."),
    ("c6", "coffee", "Cold brew steeps coarse grounds in cool water for twelve to twenty-four hours, giving a smooth drink with less acidity than hot coffee."),
    ("c7", "coffee", "Coffee plants grow best at high altitude in the tropics; arabica prefers cooler mountain slopes, robusta tolerates heat and gives more caffeine."),
    ("c8", "coffee", "A French press uses a metal mesh filter, so the oils and fine sediment stay in the cup and the coffee tastes heavier than drip coffee."),
    # sleep
    ("s1", "sleep", "Adults generally need seven to nine hours of sleep a night; consistently getting less is linked to poorer memory and a weaker immune response."),
    ("s2", "sleep", "Blue light from phone and laptop screens suppresses melatonin, the hormone that signals to the body that it is time to rest."),
    ("s3", "sleep", "Caffeine has a half-life of roughly five to six hours, so an afternoon espresso can still be keeping you awake at bedtime."),
    ("s4", "sleep", "During deep slow-wave sleep the brain clears metabolic waste and consolidates facts learned during the day."),
    ("s5", "sleep", "A cool, dark and quiet bedroom, around 18 degrees Celsius, helps most people fall asleep faster and wake less often."),
    ("s6", "sleep", "Going to bed and getting up at the same time every day, weekends included, keeps the body clock stable and makes falling asleep easier."),
    ("s7", "sleep", "Short naps of twenty minutes improve alertness; longer naps risk waking from deep sleep and feeling groggy afterwards."),
    ("s8", "sleep", "Alcohol may make you drowsy at first, but it fragments the second half of the night and reduces restorative dream sleep."),
    # bicycles
    ("b1", "bicycle", "To fix a flat, remove the wheel, lever the tyre off the rim, find the hole in the inner tube and cover it with a patch after roughening the rubber."),
    ("b2", "bicycle", "A chain should be cleaned and lubricated every few hundred kilometres; a dry, dirty chain wears the cassette and chainrings much faster."),
    ("b3", "bicycle", "Road bike tyres are usually pumped to 5 to 7 bar, while mountain bike tyres run far lower pressure for grip on loose ground."),
    ("b4", "bicycle", "If the brakes feel spongy on a hydraulic disc system, air has probably entered the lines and the brakes need bleeding with fresh fluid."),
    ("b5", "bicycle", "Setting the saddle height so the knee is slightly bent at the bottom of the pedal stroke prevents knee pain on long rides."),
    ("b6", "bicycle", "Before patching, pump a little air into the tube and hold it near your ear or under water: escaping bubbles show exactly where the puncture is."),
    ("b7", "bicycle", "Puncture-resistant tyres have a thick belt under the tread, and tubeless setups with sealant can close small holes while you keep riding."),
    ("b8", "bicycle", "The first practical safety bicycle with a chain drive and equal-sized wheels appeared in England in the 1880s and quickly replaced the penny-farthing."),
    # honeybees
    ("h1", "bees", "A honeybee colony has one queen, a few hundred male drones and tens of thousands of female worker bees."),
    ("h2", "bees", "Worker bees perform a waggle dance whose angle and duration tell their nestmates the direction and distance of a good patch of flowers."),
    ("h3", "bees", "Bees turn nectar into honey by adding enzymes and fanning it with their wings until most of the water has evaporated."),
    ("h4", "bees", "Pesticides such as neonicotinoids, the varroa mite and the loss of wildflower meadows are major reasons for falling bee populations."),
    ("h5", "bees", "Planting lavender, clover and other flowers that bloom from spring to autumn gives pollinators food through the whole season."),
    ("h6", "bees", "A worker bee can sting only once because its barbed stinger stays in the skin of mammals, and the bee dies soon afterwards."),
    ("h7", "bees", "Honey never really spoils: its low water content and acidity stop bacteria from growing, and edible honey has been found in ancient tombs."),
    ("h8", "bees", "Roughly a third of the food crops we eat depend on animal pollination, most of it done by wild and managed bees."),
    # volcanoes
    ("v1", "volcano", "Volcanoes form where tectonic plates pull apart or where one plate sinks beneath another and melts, letting magma rise to the surface."),
    ("v2", "volcano", "Hawaii's volcanoes sit over a hotspot, a plume of hot mantle rock far from any plate boundary."),
    ("v3", "volcano", "Runny basaltic lava lets gas escape gently, while sticky, silica-rich magma traps gas until it blasts out in an explosive eruption."),
    ("v4", "volcano", "Scientists watch for small earthquakes, swelling of the ground and rising sulphur dioxide emissions to warn that an eruption may be coming."),
    ("v5", "volcano", "The 1815 eruption of Tambora threw so much ash and sulphur into the stratosphere that 1816 became the 'year without a summer' in Europe."),
    ("v6", "volcano", "Volcanic ash is made of tiny shards of rock and glass; it can stall jet engines, which is why airspace closes near erupting volcanoes."),
    ("v7", "volcano", "Soils formed from weathered volcanic rock are rich in minerals, which is why farms often crowd the slopes of active volcanoes."),
    ("v8", "volcano", "Pompeii was buried under several metres of ash and pumice when Mount Vesuvius erupted in the year 79."),
    # bread
    ("r1", "bread", "A sourdough starter is a mix of flour and water colonised by wild yeast and lactic acid bacteria; it is fed fresh flour and water every day."),
    ("r2", "bread", "Kneading develops gluten, the stretchy protein network that traps the carbon dioxide made by yeast so the loaf can rise."),
    ("r3", "bread", "If a starter smells like nail polish remover or has a grey liquid on top, it is hungry: pour off the liquid and feed it more often."),
    ("r4", "bread", "Baking bread inside a preheated covered pot traps steam, which keeps the crust soft long enough for the loaf to spring up before it hardens."),
    ("r5", "bread", "Salt slows fermentation and tightens gluten, so bakers usually add about two percent of the flour weight."),
    ("r6", "bread", "A healthy starter doubles in size within four to eight hours after feeding and is bubbly and pleasantly sour; that is when it is ready to bake with."),
    ("r7", "bread", "Bread goes stale mainly because its starch recrystallises, not because it dries out; that is why it stales faster in the fridge."),
    ("r8", "bread", "Whole wheat flour contains the bran and germ, so it absorbs more water and gives a denser loaf than white flour."),
    # moon
    ("m1", "moon", "The Moon shows phases because we see different portions of its sunlit half as it orbits the Earth about once every 29.5 days."),
    ("m2", "moon", "Ocean tides are caused mainly by the Moon's gravity pulling on the Earth's oceans, creating two bulges of water."),
    ("m3", "moon", "The Moon is slowly drifting away from the Earth at about 3.8 centimetres per year, measured with lasers bounced off mirrors left by astronauts."),
    ("m4", "moon", "In July 1969 Apollo 11 landed on the Moon, and Neil Armstrong and Buzz Aldrin walked on its surface."),
    ("m5", "moon", "The Moon always shows the same face to the Earth because it is tidally locked: it turns once on its axis for every orbit."),
    ("m6", "moon", "A lunar eclipse happens when the Earth passes between the Sun and a full Moon, and the Moon turns a coppery red in the Earth's shadow."),
    ("m7", "moon", "The leading theory says the Moon formed from debris thrown out when a Mars-sized body collided with the young Earth."),
    ("m8", "moon", "Spring tides, the largest tidal ranges, happen at new and full moon when the Sun and the Moon pull in a line."),
    # python
    ("p1", "python", "In Python, a list is mutable and can grow or shrink, while a tuple is immutable and can be used as a dictionary key."),
    ("p2", "python", "A virtual environment isolates the packages of one Python project; create it with 'python -m venv .venv' and activate it before installing."),
    ("p3", "python", "Python's global interpreter lock lets only one thread run Python bytecode at a time, so CPU-bound work should use processes instead of threads."),
    ("p4", "python", "A list comprehension such as [x * x for x in numbers if x > 0] builds a new list in a single readable expression."),
    ("p5", "python", "The 'with' statement calls a context manager's enter and exit methods, so files and locks are released even when an exception is raised."),
    ("p6", "python", "asyncio runs many network requests concurrently in one thread by switching between coroutines whenever one of them awaits I/O."),
    ("p7", "python", "Python's sorted function is stable: items that compare equal keep their original order, which allows sorting by several keys in passes."),
    ("p8", "python", "Dictionaries keep insertion order since Python 3.7, and looking up a key takes constant time on average thanks to hashing."),
]

PASSAGES: list[Passage] = [Passage(pid, topic, text) for pid, topic, text in _RAW]

QUERIES: list[Query] = [
    Query(
        "q1",
        "why can't I fall asleep at night after drinking coffee",
        {"s3": 2, "c5": 2, "s2": 1, "s6": 1, "s8": 1},
    ),
    Query(
        "q2",
        "how do I repair a punctured bicycle tyre",
        {"b1": 2, "b6": 2, "b7": 1},
    ),
    Query(
        "q3",
        "my sourdough starter smells strange, what should I do",
        {"r3": 2, "r6": 1, "r1": 1},
    ),
    Query(
        "q4",
        "what makes some volcanic eruptions explosive",
        {"v3": 2, "v1": 1, "v6": 1},
    ),
    Query(
        "q5",
        "why are bee populations declining and how can gardeners help",
        {"h4": 2, "h5": 2, "h8": 1},
    ),
    Query(
        "q6",
        "what causes high and low tides in the sea",
        {"m2": 2, "m8": 2},
    ),
    Query(
        "q7",
        "how can a python program do many things at once",
        {"p6": 2, "p3": 2},
    ),
    Query(
        "q8",
        "what water temperature should I use to make good coffee",
        {"c1": 2, "c6": 1, "c3": 1},
    ),
]
